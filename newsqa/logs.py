"""Logging for every newsqa process: each line carries the request id (text or JSON); questions at DEBUG only."""

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from newsqa.settings import Settings

request_id: ContextVar[str] = ContextVar("newsqa_request_id", default="-")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # a client's X-Request-ID is echoed only when it is this tame
_NOISY = ("httpx", "httpx2", "sentence_transformers", "transformers", "chromadb")


def new_request_id(sent: str | None) -> str:
    return sent if sent and _CLIENT_ID.fullmatch(sent) else uuid.uuid4().hex[:16]


def _stamp_request_id() -> None:
    """Every log record of this process carries `request_id`, whichever handler formats it."""
    make_record = logging.getLogRecordFactory()

    def with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.request_id = request_id.get()
        return record

    logging.setLogRecordFactory(with_request_id)


_stamp_request_id()


def configure_logging(settings: Settings) -> None:
    """Root logging for this process; uvicorn's own lines come through it too (serve passes log_config=None)."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
