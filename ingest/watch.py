"""`newsqa watch`: refresh each feed on its own schedule, in the foreground, until Ctrl-C or SIGTERM, which
stop it between items (what was fetched by then is stored whole, nothing is half-stored)."""

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from newsqa.ingest.feeds import FeedConfig
from newsqa.ingest.refresh import FeedReport, refresh_feeds
from newsqa.settings import Settings

log = logging.getLogger(__name__)


def watch(feeds: list[FeedConfig], settings: Settings, stop: threading.Event) -> None:
    """Rounds of the feeds that are due, one log line per feed per round, until `stop` is set."""
    due = [0.0] * len(feeds)  # monotonic time of each feed's next refresh
    while not stop.is_set():
        ready = [i for i, when in enumerate(due) if when <= time.monotonic()]
        # reports come in feed order; a stop ends them early
        for i, report in zip(ready, refresh_feeds([feeds[i] for i in ready], settings, stop), strict=False):
            log_report(report)
            due[i] = time.monotonic() + 60 * (feeds[i].refresh_minutes or settings.feed_refresh_minutes)
        stop.wait(max(0.0, min(due) - time.monotonic()))
    log.info("watch stopped")


def log_report(report: FeedReport) -> None:
    for error in report.errors:
        log.warning("failed %s", error)
    (log.warning if report.failed else log.info)(report.line())


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` instead of interrupting whatever is running (a store write included)."""

    def request_stop(signum: int, frame: object) -> None:
        log.info("%s received: stopping after the current item", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
