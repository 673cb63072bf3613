"""Failures a user can act on. Adapters turn exactly these into a plain message (HTTP 503, exit 1);
any other exception is a bug and surfaces as one (HTTP 500 with a request id, a traceback in the log)."""


class NewsqaError(Exception):
    """Base class; `str(error)` is the message shown to the user, so it names no internals."""

    exit_code = 1  # what the CLI exits with; the HTTP API answers 503


class ModelUnavailable(NewsqaError):
    """The answering model could not be loaded or did not answer."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("the answering model is unavailable" + (f": {detail}" if detail else ""))


class StoreUnavailable(NewsqaError):
    """The article store could not be opened or read."""


class StoreLocked(NewsqaError):
    """Another process is writing to the same data dir."""

    exit_code = 2


class UsageError(NewsqaError):
    """A command was asked for something it can't do: a missing file, a malformed input, a bad option."""

    exit_code = 2
