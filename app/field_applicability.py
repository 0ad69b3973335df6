"""Which setup fields apply to the values chosen, and what a value that reads oddly means.

A field that the chosen settings never read is hidden (Milestones under a cosine schedule, Focal
gamma under a soft cross-entropy auxiliary loss): a form of fields that do nothing teaches the
wrong thing. A dataset folder that does not exist is marked on its field as soon as it is typed
or chosen, not found only at Start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6 import QtWidgets

# (section, field) -> (the field that decides, whether it applies for that field's value)
RULES: dict[tuple[str, str], tuple[str, Callable[[Any], bool]]] = {
    ("train", "milestones"): ("schedule", lambda schedule: schedule == "multistep"),
    ("train", "gamma"): ("schedule", lambda schedule: schedule == "multistep"),
    ("method", "focal_gamma"): ("aux_loss", lambda loss: loss == "focal"),  # only where aux_loss chooses it
    ("method", "transfer_width"): ("head", lambda head: head == "transfer_module"),
    # where the target's weights start (sskt_engine/target_init.py): scratch reads none of these
    ("target", "weights"): ("init", lambda init: init == "torchvision"),
    ("target", "path"): ("init", lambda init: init in ("checkpoint", "run")),
    ("target", "checkpoint"): ("init", lambda init: init == "run"),
    ("target", "frozen_stages"): ("init", lambda init: init != "scratch"),
    # the input normalisation of pretrained weights trained another way (e.g. Kinetics files)
    ("target", "mean"): ("init", lambda init: init != "scratch"),
    ("target", "std"): ("init", lambda init: init != "scratch"),
}
# value -> what it means, shown under the field while it has that value
VALUE_NOTES: dict[tuple[str, str], dict[Any, str]] = {
    ("data", "val_split"): {0.0: "0: no images are held out; validation uses the dataset's own test split."},
}


def _form_of(panel: Any, section: str) -> Any:
    form = panel.forms.get(section)
    return form._form() if hasattr(form, "_form") else form  # the method form: the chosen method's keys


def apply_field_visibility(panel: Any) -> None:
    """Show each ruled field only where the value deciding it makes it apply (or while it holds a
    problem: a field the preset got wrong is never hidden from the person who must fix it)."""
    for (section, name), (decider, applies) in RULES.items():
        form = _form_of(panel, section)
        if form is None or name not in getattr(form, "_rows", {}):
            continue
        if decider not in form.editors:  # nothing decides here (MAXL always uses its focal gamma)
            form.layout_.setRowVisible(form._rows[name], True)
            continue
        value = panel.document.get((section, decider))
        if value is None:
            value = form.editors[decider].desc.get("default")
        wrong = bool(form.editors[name].error_label.text())
        form.layout_.setRowVisible(form._rows[name], bool(applies(value)) or wrong)


def field_hidden(panel: Any, section: str, name: str) -> bool:
    form = _form_of(panel, section)
    return form is not None and name in form._rows and not form.layout_.isRowVisible(form._rows[name])


def show_value_notes(panel: Any) -> None:
    """A line under a field whose value means something not obvious (validation split 0)."""
    for (section, name), notes in VALUE_NOTES.items():
        form = _form_of(panel, section)
        if form is None or name not in form.editors:
            continue
        editor = form.editors[name]
        note = getattr(editor, "value_note", None)
        if note is None:
            note = editor.value_note = QtWidgets.QLabel()
            note.setObjectName("fieldDescription")
            note.setWordWrap(True)
            editor.layout().addWidget(note)
        value = editor.value()
        text = next((t for v, t in notes.items() if isinstance(value, (int, float)) and value == v), "")
        note.setText(text)
        note.setVisible(bool(text))


def missing_root(root: Any, preset_dir: Path | None) -> bool:
    """Whether a dataset root is named but is nowhere: not as given (from the working folder)
    and not beside the preset."""
    if not isinstance(root, str) or not root.strip():
        return False
    path = Path(root.strip()).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path] + ([preset_dir / path] if preset_dir else [])
    return not any(candidate.exists() for candidate in candidates)


def mark_missing_root(panel: Any, errors: dict[str, str]) -> None:
    """Mark a dataset folder that does not exist on its field (the preset's own problems first)."""
    form = panel.forms.get("data")
    if form is None or "root" not in form.editors or "data.root" in errors:
        return
    if not form.layout_.isRowVisible(form._rows["root"]) or panel.document.get(("data", "download")):
        return
    root = panel.document.get(("data", "root"))
    preset = getattr(panel.document, "path", None)
    if missing_root(root, Path(preset).parent if preset else None):
        form.editors["root"].set_error(f"{str(root).strip()} does not exist: choose the dataset folder with …")
