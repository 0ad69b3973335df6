"""The preset loader fuzzed with hypothesis (issue 6, item 9).

Whatever text or ``--set`` overrides arrive, ``loads_preset`` either returns an
``ExperimentConfig`` or raises ``PresetError`` (never ValueError, OverflowError,
RecursionError, KeyError, ... and never hangs), and the message names the key path
or says that the document as a whole is wrong. Five generators, 1,150 documents in
all: random YAML-like text, trees of the real keys holding values of every wrong
type, huge numbers, deep nesting and alias bombs, unknown keys, random overrides.
"""

from __future__ import annotations

import dataclasses
import typing

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sskt_engine.config import ExperimentConfig, PresetError, loads_preset
from sskt_engine.registry import METHODS

# What a PresetError without a key path says instead: the document (or the override) itself is wrong.
DOCUMENT_LEVEL = ("not valid YAML", "a preset must be a mapping", "the document is nested too deeply",
                  "the document is too large", "an override must look like", "an override needs a key")

FUZZ = dict(deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


def check(text: str, overrides: list[str] | None = None) -> None:
    """The property every generated document must satisfy."""
    try:
        cfg = loads_preset(text, source="fuzz.yaml", overrides=overrides or [])
    except PresetError as err:
        message = str(err)
        assert message.startswith("fuzz.yaml: ") or not err.source, message
        if err.path:
            assert err.path in message, message
        else:
            assert any(words in message for words in DOCUMENT_LEVEL), message
        assert err.reason and len(message) < 2000, message
        return
    assert isinstance(cfg, ExperimentConfig)


# ----------------------------------------------------------------------------- the key tree

def _sections() -> dict[str, list[str]]:
    out = {}
    for f in dataclasses.fields(ExperimentConfig):
        hint = typing.get_type_hints(ExperimentConfig)[f.name]
        args = typing.get_args(hint)
        cls = args[0] if args and dataclasses.is_dataclass(args[0]) else hint
        out[f.name] = [g.name for g in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    # each method reads its own keys: every method's are fair game under method:
    out["method"] = sorted({g.name for info in METHODS.entries() for g in dataclasses.fields(info.options)})
    return out


SECTIONS = _sections()
KEY_PATHS = [name for name, keys in SECTIONS.items() if not keys] + [
    f"{section}.{key}" if section != "sources" else f"sources[0].{key}"
    for section, keys in SECTIONS.items() for key in keys]
KNOWN_WORDS = sorted({k for keys in SECTIONS.values() for k in keys} | set(SECTIONS)
                     | {"supervised", "sskt", "kd", "dml", "maxl", "tiny_cnn", "resnet20", "demo", "cpu", "cuda:0",
                        "checkpoint", "run", "torchvision", "imagefolder", "true", "false", "null", "~", ".nan",
                        ".inf", "-.inf", "0x1F", "0o17", "1e400", "1_000", "2020-01-01", "2020-13-45"})

# up to 400 digits here (PyYAML is slow on long tokens, and yaml.safe_dump refuses ints past
# 4,300 digits); numbers of up to 6,000 digits come as text from huge_number_documents
HUGE_INTS = st.one_of(st.integers(), st.integers(min_value=2**63 - 2, max_value=2**63 + 2),
                      st.tuples(st.sampled_from([1, -1]), st.integers(19, 400)).map(lambda p: p[0] * 10**p[1]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324]))
SCALARS = st.one_of(st.none(), st.booleans(), HUGE_INTS, FLOATS, st.text(max_size=30),
                    st.sampled_from(KNOWN_WORDS), st.just("x" * 4097))
WRONG_TREES = st.recursive(SCALARS, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), kids, max_size=4)),
    max_leaves=12)


@st.composite
def key_trees(draw) -> dict:
    """A document of the real sections and keys (some misspelt, some unknown), every value
    drawn from anything YAML can hold: the shape a person's broken preset has."""
    doc: dict = {}
    for section in draw(st.lists(st.sampled_from(list(SECTIONS)), max_size=7, unique=True)):
        keys = SECTIONS[section]
        if not keys or draw(st.integers(0, 9)) == 0:
            doc[section] = draw(WRONG_TREES)
            continue
        body = {}
        for key in draw(st.lists(st.sampled_from(keys), max_size=5, unique=True)):
            body[key] = draw(WRONG_TREES)
        if draw(st.booleans()):
            body[draw(st.text(min_size=1, max_size=12))] = draw(SCALARS)  # an unknown key
        doc[section] = [body] if section == "sources" else body
    if draw(st.booleans()):
        doc[draw(st.one_of(st.text(max_size=10), st.integers(), st.booleans()))] = draw(SCALARS)
    return doc


def _dump(tree) -> str:
    return yaml.safe_dump(tree, allow_unicode=True, default_flow_style=None, sort_keys=False)


# ----------------------------------------------------------------------------- generators

YAMLISH = st.lists(st.one_of(
    st.sampled_from(KNOWN_WORDS),
    st.sampled_from([":", ": ", "\n", "\n  ", "\n    ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!int ",
                     "!!float ", "!!bool ", "!!timestamp ", "!!binary ", "!!python/object:os.system ", "!!set ",
                     "? ", "|", ">", "#", "'", '"', "---", "...", "\t", "<<: *a", "%YAML 1.1\n", "\\x00", "\x00"]),
    st.text(max_size=6)), max_size=40).map("".join)


@settings(max_examples=350, **FUZZ)
@given(st.one_of(YAMLISH, st.text(max_size=300)))
@example("train: {lr: 1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000}")
@example("name: 2020-13-45")
@example("train:\n  lr: !!int abc")
@example("name: !!timestamp abc")
@example("name: !!bool maybe")
@example("a: !!int ")
@example('name: "\\0"')
@example("train: {epochs: " + "9" * 5000 + "}")
def test_random_yaml_text(text):
    check(text)


@settings(max_examples=400, **FUZZ)
@given(key_trees())
def test_trees_of_wrong_types_huge_numbers_and_unknown_keys(tree):
    check(_dump(tree))


@st.composite
def nested(draw) -> str:
    depth = draw(st.integers(1, 200))
    opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]))
    inner = draw(st.sampled_from(["1", "x", "", "[]", "{}"]))
    where = draw(st.sampled_from(["", "train: ", "sources: ", "train:\n  milestones: "]))
    if opener == "- ":  # block sequences nest by indentation
        return where + "\n" + "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + (inner or "1")
    return where + opener * depth + inner + closer * depth


@st.composite
def alias_bombs(draw) -> str:
    """Billion laughs: every level lists the previous one ``width`` times."""
    levels, width = draw(st.integers(2, 9)), draw(st.integers(2, 10))
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    where = draw(st.sampled_from(["train: {milestones: *A}", "sources: *A", "name: *A", "extra: *A"]))
    return "\n".join(lines + [where.replace("A", f"a{levels - 1}")])


@st.composite
def huge_number_documents(draw) -> str:
    """Numbers of up to 6,000 digits as text, where PyYAML itself refuses to build them."""
    digits = draw(st.integers(1, 6000))
    number = draw(st.sampled_from(["1", "-9", "0x", "0o", "0b", "1."])) + "7" * digits + draw(
        st.sampled_from(["", "e400", ".5", "e-99999"]))
    key = draw(st.sampled_from(KEY_PATHS + ["schema_version", "unknown"]))
    return "\n".join(f"{'  ' * i}{part}:" for i, part in enumerate(key.replace("[0]", "").split("."))) + " " + number


@settings(max_examples=150, **FUZZ)
@given(st.one_of(nested(), alias_bombs(), huge_number_documents(),
                 st.sampled_from(["a: &a [*a]", "train: &t {x: *t}", "&r [*r, *r]"])))
def test_deep_nesting_recursive_aliases_and_alias_bombs(text):
    check(text)


OVERRIDE_KEYS = st.one_of(st.sampled_from(KEY_PATHS), st.text(max_size=20),
                          st.sampled_from(["", ".", "..", "[0]", "sources[0]", "sources[9].kind", "train[0]",
                                           "a.²", "train.٣", "sources[-1]", "name.x", "train.lr.x"]))
OVERRIDE_VALUES = st.one_of(YAMLISH, SCALARS.map(lambda v: _dump(v).strip()), st.text(max_size=40),
                            st.integers(1, 2500).map(lambda n: "[" * n),
                            st.sampled_from(["[[1]]", "{a: b}", "&a [*a]"]))
BASE = "name: fuzz\nmethod: {name: supervised}\ntrain: {epochs: 2}\n"


@settings(max_examples=250, **FUZZ)
@given(st.lists(st.one_of(st.tuples(OVERRIDE_KEYS, OVERRIDE_VALUES).map("=".join), st.text(max_size=20)),
                min_size=1, max_size=4),
       st.one_of(st.just(BASE), key_trees().map(_dump)))
def test_random_set_overrides(overrides, text):
    check(text, overrides)


def test_a_good_document_survives_the_property():
    """The property accepts good input too (the generators above are not all refusals)."""
    cfg = loads_preset(BASE, overrides=["train.lr=0.01", "data.labels_per_class=4"])
    assert cfg.train.lr == 0.01 and cfg.data.labels_per_class == 4
    check(BASE, ["train.lr=0.01"])
