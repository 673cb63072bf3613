"""Hybrid retrieval: dense (Chroma) and BM25 (bm25s) candidates, fused by reciprocal rank."""

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, time

import bm25s
import numpy as np

from ingest.index import Index, StoredChunk
from service.lexical import Idf, terms
from service.schemas import Filters

RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the weight of the very top ranks


@dataclass
class Passage:
    chunk: StoredChunk
    score: float  # fused RRF score: only comparable within one query

    @property
    def article_id(self) -> str:
        return self.chunk.metadata["article_id"]

    @property
    def chunk_id(self) -> str:
        return self.chunk.id

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def title(self) -> str:
        return self.chunk.metadata["title"]


def _day_bounds(filters: Filters) -> tuple[float | None, float | None]:
    """Inclusive epoch bounds, in UTC like the stored published_ts."""
    since = datetime.combine(filters.since, time.min, UTC).timestamp() if filters.since else None
    until = datetime.combine(filters.until, time.max, UTC).timestamp() if filters.until else None
    return since, until


def chroma_where(filters: Filters) -> dict | None:
    clauses = []
    since, until = _day_bounds(filters)
    if filters.sources:
        clauses.append({"source": {"$in": [s.casefold().removeprefix("www.") for s in filters.sources]}})
    if since is not None:
        clauses.append({"published_ts": {"$gte": int(since)}})
    if until is not None:
        clauses.append({"published_ts": {"$lte": int(until)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def matches(meta: dict, filters: Filters) -> bool:
    """The same filter as chroma_where, for the BM25 side."""
    if filters.sources and meta.get("source") not in {s.casefold().removeprefix("www.") for s in filters.sources}:
        return False
    ts = meta.get("published_ts")
    since, until = _day_bounds(filters)
    if since is not None and (ts is None or ts < since):
        return False
    if until is not None and (ts is None or ts > until):
        return False
    return True


class LexicalIndex:
    """BM25 over every stored chunk (headline + text), rebuilt when the store's generation changes."""

    def __init__(self, chunks: list[StoredChunk]):
        self.chunks = chunks
        tokens = [terms(f"{c.metadata['title']}\n{c.text}") for c in chunks]
        self.idf = Idf(tokens)
        self.bm25 = bm25s.BM25()
        if chunks:
            self.bm25.index([t or ["_empty_"] for t in tokens], show_progress=False)

    def search(self, query_terms: list[str], k: int, filters: Filters) -> list[StoredChunk]:
        if not self.chunks or not query_terms:
            return []
        mask = np.array([matches(c.metadata, filters) for c in self.chunks], dtype=np.float32)
        k = min(k, int(mask.sum()))
        if k == 0:
            return []
        ids, scores = self.bm25.retrieve([query_terms], k=k, weight_mask=mask, show_progress=False, n_threads=1)
        return [self.chunks[i] for i, s in zip(ids[0], scores[0], strict=True) if s > 0]


class HybridRetriever:
    def __init__(self, index: Index, embedder, candidates: int):
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        self._lexical: LexicalIndex | None = None
        self._generation: str | None = None
        self._lock = threading.Lock()

    def lexical(self) -> LexicalIndex:
        generation = self.index.generation()
        with self._lock:
            if self._lexical is None or generation != self._generation:
                self._lexical = LexicalIndex(list(self.index.all_chunks()))
                self._generation = generation
            return self._lexical

    def search(self, question: str, filters: Filters | None = None, k: int = 5) -> list[Passage]:
        filters = filters or Filters()
        vector = self.embedder.embed_query(question)
        dense = self.index.query(vector, self.candidates, chroma_where(filters))
        lexical = self.lexical().search(terms(question), self.candidates, filters)
        fused: dict[str, Passage] = {}
        for rank, chunk in enumerate(dense):
            fused[chunk.id] = Passage(chunk, 1.0 / (RRF_K + rank + 1))
        for rank, chunk in enumerate(lexical):
            passage = fused.setdefault(chunk.id, Passage(chunk, 0.0))
            passage.score += 1.0 / (RRF_K + rank + 1)
        return sorted(fused.values(), key=lambda p: p.score, reverse=True)[:k]
