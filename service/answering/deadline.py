"""A question's deadline, seen by every model call made for it (a context variable, so the answer path needn't
carry it): waiting for the model and generating both stop when it passes or when the asker has gone."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from newsqa.errors import DeadlineExceeded

_current: ContextVar["Deadline | None"] = ContextVar("newsqa_deadline", default=None)


class AskerGone(Exception):
    """The client disconnected: nobody is waiting for this answer, so its model work stops."""


@dataclass
class Deadline:
    seconds: float
    expires: float = 0.0
    _gone: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.expires = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def asker_gone(self) -> None:
        self._gone.set()

    def over(self) -> bool:
        return self._gone.is_set() or self.remaining() == 0.0

    def check(self) -> None:
        """Raise if the work should stop: the asker left, or the time is up."""
        if self._gone.is_set():
            raise AskerGone()
        if self.remaining() == 0.0:
            raise DeadlineExceeded(self.seconds)


def current() -> Deadline | None:
    return _current.get()


@contextmanager
def within(deadline: Deadline) -> Iterator[Deadline]:
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def acquire(lock: threading.Lock) -> None:
    """Take `lock`, giving up (raising) when the current question's deadline passes while it waits."""
    deadline = current()
    if deadline is None:
        lock.acquire()
        return
    while not lock.acquire(timeout=min(0.2, max(deadline.remaining(), 0.01))):
        deadline.check()
