"""The answer function as a bounded service, shared by the HTTP and Slack adapters: a fixed number of questions
in the service at once (answering or waiting for the model; more get 503 with Retry-After), each under a
deadline (504, its generation stopped), and a question whose asker has gone stops its model work."""

import asyncio
import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from newsqa.errors import DeadlineExceeded, ModelUnavailable, Overloaded
from newsqa.service.answering import deadline, input_limits
from newsqa.service.answering.answer import Answerer, Events
from newsqa.service.answering.schemas import ChatRequest, ChatResponse
from newsqa.settings import Settings

log = logging.getLogger(__name__)

Disconnected = Callable[[], Awaitable[bool]]
_DISCONNECT_POLL_S = 0.5
_READY_CACHE_S = 5.0
_READY_TIMEOUT_S = 5.0  # a first load of a big store takes longer: not ready until it is done
_GRACE_S = 1.0  # a thread notices its deadline between tokens; past this the response doesn't wait for it


class Admission:
    """Counts questions in the service; refuses one more than `capacity` at once."""

    def __init__(self, capacity: int, report: Callable[[int], None] | None = None) -> None:
        self.capacity = capacity
        self.report = report  # told the count at every change (a metric)
        self._in_flight = 0
        self._durations: deque[float] = deque(maxlen=20)
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def check(self) -> None:
        """Raise Overloaded when full, without taking a slot (for a stream, before its 200 is sent)."""
        if self._in_flight >= self.capacity:
            raise Overloaded(self.retry_after())

    def enter(self) -> float:
        with self._lock:
            self.check()
            self._in_flight += 1
            self._report()
        return time.monotonic()

    def leave(self, entered: float) -> None:
        with self._lock:
            self._in_flight -= 1
            self._report()
            self._durations.append(time.monotonic() - entered)

    def _report(self) -> None:
        if self.report is not None:
            self.report(self._in_flight)

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: a typical recent answer time (5 s before any)."""
        return max(1, math.ceil(statistics.median(self._durations))) if self._durations else 5


class Service:
    def __init__(self, answerer: Answerer, settings: Settings,
                 report_in_flight: Callable[[int], None] | None = None) -> None:
        self.answerer = answerer
        self.settings = settings
        self.admission = Admission(1 + settings.queue_depth, report_in_flight)
        self._ready: dict[str, bool] = {}
        self._checked_at = -math.inf
        self._probe: asyncio.Future[dict[str, bool]] | None = None

    async def readiness(self) -> dict[str, bool]:
        """The store has articles and the model answers; checked off the event loop, cached a few seconds.
        One check at a time however many probes ask: a hung model must not take a thread per probe."""
        now = time.monotonic()
        if now - self._checked_at > _READY_CACHE_S:
            if self._probe is None or self._probe.done():
                self._probe = asyncio.ensure_future(run_in_threadpool(self._check))
            try:  # shielded: a probe that gives up leaves the check running for the next one to share
                self._ready = await asyncio.wait_for(asyncio.shield(self._probe), _READY_TIMEOUT_S)
            except TimeoutError:
                self._ready = {"index": False, "model": False}
            self._checked_at = now
        return self._ready

    def _check(self) -> dict[str, bool]:
        try:
            snapshot = self.answerer.store.current()
            has_articles = not snapshot.empty and snapshot.index.count() > 0
        except Exception:  # a probe reports what it finds; the log says why
            log.exception("readiness: the store can't be read")
            has_articles = False
        return {"index": has_articles, "model": self.answerer.model_answers()}

    def answer(self, request: ChatRequest) -> ChatResponse:
        """For callers that are threads already (Slack's workers)."""
        entered = self.admission.enter()
        try:
            return self._answer(deadline.Deadline(self.settings.answer_deadline_s), request, None)
        finally:
            self.admission.leave(entered)

    async def answer_async(self, request: ChatRequest, disconnected: Disconnected,
                           events: Events | None = None) -> ChatResponse:
        """Runs the answer in a worker thread; the slot is held until that thread ends, but the response
        doesn't wait past the deadline for a generation that can't be stopped at once."""
        return await self._answer_admitted(self.admission.enter(), request, disconnected, events)

    async def _answer_admitted(self, entered: float, request: ChatRequest, disconnected: Disconnected,
                               events: Events | None) -> ChatResponse:
        stop_at = deadline.Deadline(self.settings.answer_deadline_s)
        work = asyncio.ensure_future(run_in_threadpool(self._answer, stop_at, request, events))

        def finished(done: asyncio.Future) -> None:
            self.admission.leave(entered)
            if not done.cancelled():
                done.exception()  # marks it retrieved: a thread that ended after its 504 has nobody to tell

        work.add_done_callback(finished)
        watcher = asyncio.ensure_future(_stop_when_gone(disconnected, stop_at))
        try:
            done, _ = await asyncio.wait({work}, timeout=stop_at.remaining() + _GRACE_S)
            if not done:
                raise DeadlineExceeded(stop_at.seconds)
            return work.result()
        finally:
            watcher.cancel()

    def stream(self, request: ChatRequest, disconnected: Disconnected) -> AsyncIterator[tuple[str, Any]]:
        """(event, data) pairs: the answer path's stages and draft tokens as they happen, then ("answer", the
        response); an error is raised to the caller, after the events before it. The request is checked and
        admitted here, before any event, so a 422 or 503 is the response's status rather than an event in a 200;
        the answer starts at once and frees its slot when it ends, even if the stream is never read."""
        input_limits.check(request, self.settings)
        entered = self.admission.enter()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def emit(event: str, data: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (event, data))

        work = asyncio.ensure_future(self._answer_admitted(entered, request, disconnected, emit))
        return _events(queue, work)

    def _answer(self, stop_at: deadline.Deadline, request: ChatRequest, events: Events | None) -> ChatResponse:
        with deadline.within(stop_at):
            stop_at.check()  # waited for a worker thread past the deadline already
            try:
                return self.answerer.answer(request, events)
            except ModelUnavailable:
                if not self.settings.fallback_passages:
                    raise
                log.warning("the model is unavailable: answering with passages only")
                return self.answerer.passages_only(request)


async def _stop_when_gone(disconnected: Disconnected, stop_at: deadline.Deadline) -> None:
    while not await disconnected():
        await asyncio.sleep(_DISCONNECT_POLL_S)
    stop_at.asker_gone()


async def _events(queue: asyncio.Queue[tuple[str, Any]],
                  work: asyncio.Future[Any]) -> AsyncIterator[tuple[str, Any]]:
    while not (work.done() and queue.empty()):
        getter = asyncio.ensure_future(queue.get())
        await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            yield getter.result()
        else:
            getter.cancel()
    yield "answer", work.result()
