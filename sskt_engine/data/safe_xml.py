"""Read a small XML file (a Pascal VOC annotation) without trusting it.

A hostile annotation can declare entities that expand without bound ("billion laughs") or that
name other files (external entities). Annotations never need a DTD, so any document type
declaration or entity declaration is refused outright, as defusedxml does, and an entity
reference that was not declared is an error of the parser. The tree is built from expat's
events by ``ElementTree.TreeBuilder`` (the C ``XMLParser`` hides the expat handlers that would
let us refuse), and files over 1 MiB are not read at all.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from xml.parsers import expat

from ..errors import DataError

MAX_XML_BYTES = 1024 * 1024  # a VOC annotation is about 1 KiB


class _Refused(Exception):
    pass


def _refuse(*_args: object) -> None:
    raise _Refused()


def parse_xml_file(path: str | os.PathLike, what: str = "annotation file") -> ET.Element:
    """The root element of ``path``; a ``DataError`` naming the file if it is missing, too
    large, not well-formed, or declares a DTD or entities."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_XML_BYTES + 1)
    except OSError as exc:
        raise DataError(f"{what} {path} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if len(data) > MAX_XML_BYTES:
        raise DataError(f"{what} {path} is larger than {MAX_XML_BYTES // 1024} KiB, so it is not read.")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        return builder.close()
    except _Refused:
        raise DataError(f"{what} {path} declares a DTD or entities, which are refused (they can expand without "
                        "bound or read other files).") from None
    except (expat.ExpatError, AssertionError) as exc:  # TreeBuilder asserts on an unclosed tree
        reason = expat.ErrorString(exc.code) if isinstance(exc, expat.ExpatError) else "incomplete document"
        raise DataError(f"{what} {path} is not well-formed XML ({reason}).") from None
