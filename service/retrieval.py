"""Hybrid retrieval: dense (Chroma) and BM25 (service/bm25.py) candidates, fused by reciprocal rank."""

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np

from newsqa.service.bm25 import Bm25, Frequencies
from newsqa.service.lexical import Idf, terms
from newsqa.service.schemas import Filters
from newsqa.store.embedding import Embedder
from newsqa.store.index import Index, StoredChunk
from newsqa.store.models import ChunkMeta

RECENCY_BOOST = 1.25  # about 15 fused ranks' worth: the time a question names outweighs a slightly better match
RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the weight of the very top ranks


@dataclass
class Passage:
    chunk: StoredChunk
    score: float  # fused RRF score: only comparable within one query

    @property
    def meta(self) -> ChunkMeta:
        return self.chunk.meta

    @property
    def article_id(self) -> str:
        return self.chunk.meta.article_id

    @property
    def chunk_id(self) -> str:
        return self.chunk.id

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def title(self) -> str:
        return self.chunk.meta.title

    @property
    def headed_text(self) -> str:
        return self.chunk.headed_text


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


class HybridRetriever:
    def __init__(self, embedder: Embedder, candidates: int):
        self.embedder = embedder
        self.candidates = candidates

    def search(self, question: str, snapshot: Snapshot, filters: Filters | None = None, k: int = 5,
               prefer: tuple[date, date] | None = None) -> list[Passage]:
        """The k best passages, dense and BM25 fused by rank; those published within `prefer` (the time the
        question names) count `RECENCY_BOOST` times as much, so a distractor from another week ranks lower."""
        scope = Scope.of(filters or Filters())
        vector = self.embedder.embed_query(question)
        nearest = snapshot.index.query(vector, self.candidates, scope.where())
        dense = [c for c in nearest if c.counts_in(snapshot.versions)]  # debris and other versions don't count
        sparse = snapshot.lexical.search(terms(question), self.candidates, scope)
        fused: dict[str, Passage] = {}
        for rank, chunk in enumerate(dense):
            fused[chunk.id] = Passage(chunk, 1.0 / (RRF_K + rank + 1))
        for rank, chunk in enumerate(sparse):
            passage = fused.setdefault(chunk.id, Passage(chunk, 0.0))
            passage.score += 1.0 / (RRF_K + rank + 1)
        if prefer:
            preferred = Scope.of(Filters(since=prefer[0], until=prefer[1]))
            for passage in fused.values():
                if preferred.admits(passage.meta):  # undated passages are not admitted by a date window
                    passage.score *= RECENCY_BOOST
        return sorted(fused.values(), key=lambda p: p.score, reverse=True)[:k]
