"""BM25 that takes new documents without re-indexing the old ones: immutable segments (a term × document
matrix each) with a live mask, scored at query time from the statistics of all live documents. Lucene's
scheme; bm25s's formula and constants, which the whole index was rebuilt with before (per store generation:
20 s at 100k chunks, against a few ms for the 10 articles a feed adds)."""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

K1, B = 1.5, 0.75  # bm25s's defaults
MAX_SEGMENTS = 8  # more, and the small ones are merged: each costs a few array operations per query term


class Vocabulary:
    """Term → id, only ever growing, shared by every index derived from the first: ids stay valid."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def add(self, terms: Sequence[str]) -> list[int]:
        return [self.ids.setdefault(t, len(self.ids)) for t in terms]


@dataclass(frozen=True)
class Segment:
    postings: sp.csr_matrix  # terms × documents, term frequencies; as many rows as the vocabulary had then
    lengths: np.ndarray  # terms per document

    @classmethod
    def of(cls, documents: Sequence[Sequence[str]], vocabulary: Vocabulary) -> "Segment":
        rows = [vocabulary.add(doc) for doc in documents]
        lengths = np.array([len(r) for r in rows], dtype=np.float32)
        terms = np.fromiter((t for r in rows for t in r), dtype=np.int64, count=int(lengths.sum()))
        docs = np.repeat(np.arange(len(rows)), lengths.astype(np.int64))
        postings = sp.csr_matrix((np.ones(len(terms), dtype=np.float32), (terms, docs)),
                                 shape=(len(vocabulary.ids), len(rows)))
        postings.sum_duplicates()
        return cls(postings, lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def frequencies(self, documents: np.ndarray, terms: int) -> np.ndarray:
        """How many of these documents hold each term id (below `terms`)."""
        present = self.postings[:, documents]
        counts = np.diff(present.indptr).astype(np.int64) if present.nnz else np.zeros(present.shape[0], np.int64)
        return np.pad(counts, (0, terms - len(counts)))

    def widened(self, terms: int) -> sp.csr_matrix:
        """The postings with rows for `terms` term ids (terms added since have no postings here)."""
        indptr = np.pad(self.postings.indptr, (0, terms - self.postings.shape[0]), mode="edge")
        return sp.csr_matrix((self.postings.data, self.postings.indices, indptr), shape=(terms, len(self)))


@dataclass(frozen=True)
class Bm25:
    """One generation's BM25: its segments and which of their documents are live (positions count across the
    segments in order). `updated` derives the next generation's, sharing what did not change."""

    vocabulary: Vocabulary
    segments: tuple[Segment, ...]
    live: tuple[np.ndarray, ...]  # bool per document of each segment
    df: np.ndarray  # live documents holding each term id

    @classmethod
    def of(cls, documents: Sequence[Sequence[str]]) -> "Bm25":
        return cls(Vocabulary(), (), (), np.zeros(0, np.int64)).updated(documents, np.zeros(0, np.int64))

    @property
    def size(self) -> int:
        """Documents live."""
        return int(sum(int(live.sum()) for live in self.live))

    def updated(self, added: Sequence[Sequence[str]], removed: np.ndarray) -> "Bm25":
        """Documents `removed` (positions) leave, `added` come in as a new segment at the end."""
        segments, live, df = list(self.segments), list(self.live), self.df
        offset = 0
        for i, segment in enumerate(self.segments):
            mine = removed[(removed >= offset) & (removed < offset + len(segment))] - offset
            if len(mine):
                live[i] = live[i].copy()
                mine = mine[live[i][mine]]
                live[i][mine] = False
                df = df - segment.frequencies(mine, len(df))
            offset += len(segment)
        if len(added):
            segments.append(Segment.of(added, self.vocabulary))
            live.append(np.ones(len(added), dtype=bool))
            terms = len(self.vocabulary.ids)
            df = np.pad(df, (0, terms - len(df))) + segments[-1].frequencies(np.arange(len(added)), terms)
        return Bm25(self.vocabulary, tuple(segments), tuple(live), df)

    def merged(self) -> tuple["Bm25", np.ndarray | None]:
        """Once there are too many segments, those after the largest (all, if that leaves one) become one, their
        dead documents dropped. Also, when it merged, the old positions of the documents kept, in their new order,
        for the caller's own per-document lists."""
        if len(self.segments) <= MAX_SEGMENTS:
            return self, None
        first = max(range(len(self.segments)), key=lambda i: len(self.segments[i])) + 1
        first = first if len(self.segments) - first >= 2 else 0
        terms = len(self.vocabulary.ids)
        kept = [np.flatnonzero(live) if i >= first else np.arange(len(live)) for i, live in enumerate(self.live)]
        tail = range(first, len(self.segments))
        postings = sp.hstack([self.segments[i].widened(terms)[:, kept[i]] for i in tail], format="csr")
        merged = Segment(postings, np.concatenate([self.segments[i].lengths[kept[i]] for i in tail]))
        starts = np.cumsum([0, *(len(s) for s in self.segments)])
        positions = np.concatenate([start + keep for start, keep in zip(starts, kept, strict=False)])
        return (Bm25(self.vocabulary, (*self.segments[:first], merged),
                     (*self.live[:first], np.ones(len(merged), dtype=bool)), self.df), positions)

    def top(self, query: Sequence[str], k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The k best-scoring live documents (position, score) with a score above 0, best first; `mask`
        (bool per position) restricts them further."""
        n = self.size
        known = len(self.df)  # the shared vocabulary may hold terms a later generation added: not this one's
        ids = [i for i in (self.vocabulary.ids.get(t) for t in query) if i is not None and i < known]
        if not n or not ids:
            return []
        average = sum(float(s.lengths[live].sum()) for s, live in zip(self.segments, self.live, strict=True)) / n
        idf = {i: np.log(1 + (n - self.df[i] + 0.5) / (self.df[i] + 0.5)) for i in set(ids)}
        scores = np.concatenate(list(self._scores(ids, idf, average)))
        if mask is not None:
            scores[~mask] = 0.0
        k = min(k, int(np.count_nonzero(scores)))
        if k == 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(p), float(scores[p])) for p in best]

    def _scores(self, ids: list[int], idf: Mapping[int, float], average: float) -> Iterator[np.ndarray]:
        for segment, live in zip(self.segments, self.live, strict=True):
            scores = np.zeros(len(segment), dtype=np.float32)
            indptr, indices, data = segment.postings.indptr, segment.postings.indices, segment.postings.data
            for term in ids:
                if term >= len(indptr) - 1:
                    continue  # a term first seen after this segment was built
                docs = indices[indptr[term]:indptr[term + 1]]
                tf = data[indptr[term]:indptr[term + 1]]
                norm = K1 * (1 - B + B * segment.lengths[docs] / average)
                scores[docs] += idf[term] * tf / (tf + norm)
            scores[~live] = 0.0
            yield scores


class Frequencies(Mapping[str, int]):
    """Live documents per term, by the term itself: what `Idf` reads."""

    def __init__(self, bm25: Bm25) -> None:
        self._ids, self._df = bm25.vocabulary.ids, bm25.df

    def __getitem__(self, term: str) -> int:
        i = self._ids[term]
        if i >= len(self._df):  # added to the shared vocabulary by a later generation
            raise KeyError(term)
        return int(self._df[i])

    def __iter__(self) -> Iterator[str]:
        return (t for t, i in list(self._ids.items()) if i < len(self._df) and self._df[i])

    def __len__(self) -> int:
        return int(np.count_nonzero(self._df))
