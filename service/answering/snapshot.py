"""What the answer path searches: the store's latest complete generation (its chunks, their BM25 index), and
the view that switches to the next one off the request path; a request's filters as a test on those chunks."""

import logging
import threading
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import numpy as np

from newsqa.service.answering.bm25 import Bm25, Frequencies
from newsqa.service.answering.lexical import Idf, terms
from newsqa.service.answering.schemas import Filters
from newsqa.settings import Settings
from newsqa.store.index import Index, StoredChunk, open_index
from newsqa.store.models import ChunkMeta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scope:
    """A request's filters resolved once: sources as ingest stores them, dates as inclusive UTC epochs."""

    sources: frozenset[str] | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def of(cls, filters: Filters) -> "Scope":
        return cls(
            sources=frozenset(filters.sources) if filters.sources else None,
            since=datetime.combine(filters.since, time.min, UTC).timestamp() if filters.since else None,
            until=datetime.combine(filters.until, time.max, UTC).timestamp() if filters.until else None,
        )

    @property
    def unrestricted(self) -> bool:
        return self == Scope()

    def where(self) -> dict[str, Any] | None:
        """The scope as a Chroma metadata filter, for the dense side."""
        clauses: list[dict[str, Any]] = []
        if self.sources is not None:
            clauses.append({"source": {"$in": sorted(self.sources)}})
        if self.since is not None:
            clauses.append({"published_ts": {"$gte": int(self.since)}})
        if self.until is not None:
            clauses.append({"published_ts": {"$lte": int(self.until)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def admits(self, meta: ChunkMeta) -> bool:
        """The same test as `where`, for the BM25 side."""
        if self.sources is not None and meta.source not in self.sources:
            return False
        ts = meta.published_ts
        if self.since is not None and (ts is None or ts < self.since):
            return False
        return self.until is None or (ts is not None and ts <= self.until)


class LexicalIndex:
    """BM25 over a snapshot's chunks (headline + text); the next generation's is derived from it, not rebuilt."""

    def __init__(self, positions: list[StoredChunk], bm25: Bm25):
        self._positions = positions  # the chunk at each BM25 position, removed ones included until a merge
        self.bm25 = bm25
        self.idf = Idf(Frequencies(bm25), bm25.size)

    @classmethod
    def of(cls, chunks: list[StoredChunk]) -> "LexicalIndex":
        return cls(list(chunks), Bm25.of([terms(c.headed_text) for c in chunks]))

    @property
    def chunks(self) -> list[StoredChunk]:
        """The chunks it searches."""
        live = np.concatenate(self.bm25.live) if self.bm25.live else np.zeros(0, dtype=bool)
        return [c for c, alive in zip(self._positions, live, strict=True) if alive]

    def updated(self, added: list[StoredChunk], gone: AbstractSet[str]) -> "LexicalIndex":
        """Articles `gone` (removed, or replaced by a version among `added`) leave; the `added` chunks come in."""
        removed = np.array([i for i, c in enumerate(self._positions) if c.meta.article_id in gone], dtype=np.int64)
        grown = self.bm25.updated([terms(c.headed_text) for c in added], removed)
        positions = self._positions + added
        bm25, kept = grown.merged()
        return LexicalIndex(positions if kept is None else [positions[i] for i in kept], bm25)

    def search(self, query_terms: list[str], k: int, scope: Scope) -> list[StoredChunk]:
        if not query_terms:
            return []
        mask = None  # an unfiltered question skips a pass over every chunk
        if not scope.unrestricted:
            mask = np.array([scope.admits(c.meta) for c in self._positions], dtype=bool)
        return [self._positions[p] for p, _ in self.bm25.top(query_terms, k, mask)]


@dataclass(frozen=True)
class Snapshot:
    """The store as one generation left it, complete articles only: the dense and BM25 sides agree on which
    version of each article exists, even while a writer is part-way through the next generation."""

    generation: str
    index: Index
    versions: dict[str, str]  # article id → the content hash of its complete version
    lexical: LexicalIndex

    @classmethod
    def load(cls, index: Index, previous: "Snapshot | None" = None) -> "Snapshot":
        """The store's current generation; given the `previous` one, only the articles that changed since are
        read and indexed."""
        generation = index.generation()  # read first: a write that lands meanwhile makes the next one differ
        versions = {a.id: a.content_hash for a in index.articles().values()}
        if previous is None:
            return cls(generation, index, versions,
                       LexicalIndex.of([c for c in index.all_chunks() if c.counts_in(versions)]))
        changed = sorted(a for a, version in versions.items() if previous.versions.get(a) != version)
        gone = {a for a, version in previous.versions.items() if versions.get(a) != version}
        added = [c for c in index.chunks_of_articles(changed) if c.counts_in(versions)]
        return cls(generation, index, versions, previous.lexical.updated(added, gone))

    @property
    def empty(self) -> bool:
        return not self.versions


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
