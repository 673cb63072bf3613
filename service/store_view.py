"""What the answer path searches: the store's latest complete generation, switched to off the request path."""

import logging
import threading

from newsqa.service.retrieval import Snapshot
from newsqa.settings import Settings
from newsqa.store.index import open_index

log = logging.getLogger(__name__)


class StoreView:
    """Follows the store as other processes write it: `current()` never waits for a rebuild once the first
    snapshot exists; `follow()` loads each new generation in the background and swaps it in whole."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._current: Snapshot | None = None
        self._loading = threading.Lock()
        self._stopped = threading.Event()

    def current(self) -> Snapshot:
        snapshot = self._current
        if snapshot is None:
            with self._loading:  # only the very first question waits, and only for the first load
                if self._current is None:
                    self._current = self._load()
                snapshot = self._current
        return snapshot

    def refresh(self) -> bool:
        """Switch to the store's newest generation if it changed; True when it did."""
        current = self.current()
        if current.index.generation() == current.generation:
            return False
        with self._loading:
            self._current = self._load(current)
        log.info("now answering from store generation %s", self._current.generation)
        return True

    def follow(self) -> None:
        """Refresh every `store_poll_seconds` in a daemon thread, until `close()`."""

        def loop() -> None:
            while not self._stopped.wait(self.settings.store_poll_seconds):
                try:
                    self.refresh()
                except Exception:  # the store may be mid-restart; keep serving what we have and try again
                    log.exception("reading the store's new generation failed; still answering from the last one")

        threading.Thread(target=loop, daemon=True, name="store-follower").start()

    def close(self) -> None:
        self._stopped.set()

    def _load(self, previous: Snapshot | None = None) -> Snapshot:
        # a fresh client: an embedded one opened before another process wrote never sees the new vectors
        return Snapshot.load(open_index(self.settings, fresh=True), previous)
