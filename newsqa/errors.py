"""Failures a user can act on. Adapters turn exactly these into a plain message (HTTP `status`, CLI
`exit_code`); any other exception is a bug and surfaces as one (HTTP 500 with a request id, a traceback in the
log)."""


class NewsqaError(Exception):
    """Base class; `str(error)` is the message shown to the user, so it names no internals."""

    exit_code = 1  # what the CLI exits with
    status = 503  # what the HTTP API answers


class ModelUnavailable(NewsqaError):
    """The answering model could not be loaded or did not answer."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("the answering model is unavailable" + (f": {detail}" if detail else ""))


class EmbedderUnavailable(NewsqaError):
    """The embeddings server (NEWSQA_EMBEDDING_BASE_URL) did not answer, or answered with an error."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the embeddings server is unavailable: {detail}")


class Overloaded(NewsqaError):
    """More questions are waiting for the model than the queue holds; try again after `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many questions are waiting for the model; try again shortly")
        self.retry_after = retry_after


class DeadlineExceeded(NewsqaError):
    """The answer took longer than its deadline (queueing included); its generation was stopped."""

    status = 504

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s; try again or ask a shorter question")


class InvalidRequest(NewsqaError):
    """A request the service won't run: `loc` names the field, as FastAPI's own validation errors do."""

    status = 422
    exit_code = 2

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {message}")
        self.loc, self.message = loc, message


class ArticleNotFound(NewsqaError):
    """No complete article in the store has this id (never stored, removed, or replaced under another id)."""

    status = 404

    def __init__(self, article_id: str) -> None:
        super().__init__(f"no article with id {article_id!r}")


class StoreUnavailable(NewsqaError):
    """The article store could not be opened or read."""


class StoreLocked(NewsqaError):
    """Another process is writing to the same data dir."""

    exit_code = 2


class UsageError(NewsqaError):
    """A command was asked for something it can't do: a missing file, a malformed input, a bad option."""

    exit_code = 2
    status = 400


class InvalidSettings(NewsqaError):
    """A setting's value is refused at start-up; the message names its variable and what it may be."""

    exit_code = 2

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid settings: {detail}")


class IndexSettingsDiffer(NewsqaError):
    """The store was built with other values of the settings that define what it holds than this process has:
    chunks cut or embedded otherwise would not compare with the stored ones."""

    exit_code = 2
