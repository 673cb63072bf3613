"""Hybrid retrieval: dense (Chroma) and BM25 (service/answering/bm25.py) candidates, fused by reciprocal rank."""

from dataclasses import dataclass
from datetime import date

from newsqa.service.answering.lexical import terms
from newsqa.service.answering.schemas import Filters
from newsqa.service.answering.snapshot import Scope, Snapshot
from newsqa.store.embedding import Embedder
from newsqa.store.index import StoredChunk
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
