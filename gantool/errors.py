"""User-facing errors: the CLI prints them as one line, with no traceback."""


class GantoolError(Exception):
    """An error the user can fix; the message says what was wrong and what is allowed."""

    exit_code = 1  # the CLI's exit status; 2 for "a required component is not installed"

    def __init__(self, message: str, note: str | None = None) -> None:
        self.note = note
        super().__init__(message if note is None else f"{message} Note: {note}")


class DataError(GantoolError):
    """A dataset file is missing, truncated or not in IDX layout."""


class CheckpointError(GantoolError):
    """A checkpoint is missing, corrupt or from an incompatible schema."""


class TrainingDiverged(GantoolError):
    """A loss became NaN/inf; the last good checkpoint is kept."""


class SpecError(GantoolError, ValueError):
    """A model spec (from a checkpoint, ONNX metadata or code) has a field of the wrong type or range."""


class MetadataError(GantoolError, ValueError):
    """A generator file's gantool metadata is missing, malformed, or disagrees with its own graph."""
