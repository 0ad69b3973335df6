"""Errors a user can cause. Each carries one clear sentence meant for a person.

The CLI turns a ``UserInputError`` into exit code 2 and the GUI into a dialog;
anything else escaping from training is a bug or a runtime failure (exit 1).
"""


class UserInputError(Exception):
    """Bad input: a preset, a path, a model file, a dataset. The message is the sentence shown."""


class PresetError(UserInputError):
    """A preset value was refused. ``path`` is the dotted key path, ``line`` the YAML line (1-based)."""

    def __init__(self, path: str, reason: str, line: int | None = None, source: str | None = None):
        self.path = path
        self.reason = reason
        self.line = line
        self.source = source
        where = f"{source}: " if source else ""
        at_line = f"line {line}: " if line else ""
        key = f"{path}: " if path else ""
        super().__init__(f"{where}{at_line}{key}{reason}")


class SourceError(UserInputError):
    """A source model could not be built or loaded."""


class DataError(UserInputError):
    """A dataset could not be found or read."""


class TrainingFailed(Exception):
    """Training stopped on a condition that the user should hear about (NaN loss, out of memory)."""


class StoppedBeforeStart(Exception):
    """A stop was asked for while the run was still being set up (data loading, sources): no
    epoch ran and no run folder was made. Not a failure: the caller reports a stop."""

    def __init__(self, phase: str):
        self.phase = phase
        super().__init__(f"stopped while {phase}, before the first epoch: no epoch completed and no run folder "
                         "was made")
