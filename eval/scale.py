"""`newsqa bench --scale`: hybrid retrieval and the lexical side's update at 10k and 100k chunks, on the
embedded store and on a Chroma server side by side.

The chunks are the dev corpus's, copied under new article ids with their vectors perturbed: embedding 100k
chunks on a laptop CPU takes most of an hour, so the embedder is timed once on the originals and reported
apart. Copies share their text, so BM25 sees each word's document frequency multiplied, not new words."""

import dataclasses
import gc
import itertools
import os
import resource
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from newsqa.errors import UsageError
from newsqa.eval.bench import read_questions
from newsqa.eval.measures import percentile
from newsqa.ingest.chunking import Chunker
from newsqa.ingest.loaders import load_paths
from newsqa.processes import chroma_server
from newsqa.service.answering.retrieval import HybridRetriever
from newsqa.service.answering.snapshot import StoreView
from newsqa.settings import Settings
from newsqa.store.embedding import get_embedder
from newsqa.store.index import Index, StoredArticle, open_index
from newsqa.store.models import Article, Chunk

SIZES = (10_000, 100_000)
NEW_ARTICLES = 10  # what a feed adds in one round
NOISE = 0.02  # per dimension, on unit vectors of 384: a copy stays near its original without coinciding
WRITE_BATCH = 2_000  # chunks per upsert


@dataclass(frozen=True)
class Corpus:
    """The originals: each article's chunks and their vectors."""

    chunks: dict[Article, list[Chunk]]
    vectors: dict[str, np.ndarray]  # chunk id → unit vector

    def copies(self, size: int, tag: str) -> Iterator[tuple[Article, list[Chunk]]]:
        """Copies of the articles under new ids (`<id>~<tag><n>`), in turn, until they hold `size` chunks."""
        made, n = 0, 0
        while made < size:
            for article, chunks in self.chunks.items():
                if made >= size:
                    return
                copy = dataclasses.replace(article, id=f"{article.id or article.key}~{tag}{n}")
                yield copy, [Chunk(copy, c.index, c.text, c.start, c.end) for c in chunks]
                made += len(chunks)
            n += 1

    def vector(self, original: Chunk, rng: np.random.Generator) -> np.ndarray:
        v = self.vectors[original.id] + rng.normal(0, NOISE, len(self.vectors[original.id]))
        return v / np.linalg.norm(v)


@dataclass(frozen=True)
class Figures:
    mode: str
    size: int
    write_s: float  # storing the chunks (vectors given)
    full_load_s: float  # a snapshot from scratch: every chunk read and BM25 built (what each update cost before)
    p50_ms: float  # hybrid retrieval, query embedding included
    p95_ms: float
    update_s: float  # the 10 new articles stored and the follower's snapshot answering from them
    refresh_s: float  # of which: the follower's incremental refresh
    # retrieval while the articles were stored and the refresh ran: this process writes them too, which a
    # server's process doesn't (the ingest is another process), so this is an upper bound
    during_p95_ms: float
    during_max_ms: float
    rss_mb: float


def _rss_mb() -> float:
    """Resident memory of this process now (Linux), else its peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _store(index: Index, corpus: Corpus, articles: Sequence[tuple[Article, list[Chunk]]],
           rng: np.random.Generator) -> None:
    originals = {a.id or a.key: chunks for a, chunks in corpus.chunks.items()}
    with index.writing():
        pending: list[tuple[Chunk, np.ndarray]] = []
        for article, chunks in articles:
            source = originals[str(article.id).rsplit("~", 1)[0]]
            pending += [(c, corpus.vector(o, rng)) for c, o in zip(chunks, source, strict=True)]
            if len(pending) >= WRITE_BATCH:
                _upsert(index, pending)
                pending = []
        _upsert(index, pending)
        index.record([StoredArticle.of(article, len(chunks)) for article, chunks in articles])


def _upsert(index: Index, pending: list[tuple[Chunk, np.ndarray]]) -> None:
    if pending:
        index.upsert([c for c, _ in pending], [c.text for c, _ in pending], [v.tolist() for _, v in pending])


def _timed_searches(retriever: HybridRetriever, store: StoreView, questions: list[str], k: int) -> list[float]:
    times = []
    for question in questions:
        started = time.perf_counter()
        retriever.search(question, store.current(), k=k)
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure(settings: Settings, mode: str, corpus: Corpus, size: int, questions: list[str]) -> Figures:
    rng = np.random.default_rng(size)
    index = open_index(settings)
    started = time.perf_counter()
    _store(index, corpus, list(corpus.copies(size, "")), rng)
    write_s = time.perf_counter() - started

    store = StoreView(settings)
    started = time.perf_counter()
    store.current()
    full_load_s = time.perf_counter() - started
    retriever = HybridRetriever(get_embedder(settings), settings.candidates)
    _timed_searches(retriever, store, questions[:5], settings.top_k)  # warm caches, as a running server has
    searches = _timed_searches(retriever, store, questions * 2, settings.top_k)

    new = _new_articles(corpus, rng)
    during: list[float] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            during.extend(_timed_searches(retriever, store, questions[:1], settings.top_k))

    asker = threading.Thread(target=keep_asking, daemon=True)
    asker.start()
    started = time.perf_counter()
    _store(index, corpus, new, rng)
    refresh_started = time.perf_counter()
    assert store.refresh(), "the store's generation did not change"
    update_s, refresh_s = time.perf_counter() - started, time.perf_counter() - refresh_started
    stop.set()
    asker.join()
    visible = store.current().versions
    if not all(article.key in visible for article, _ in new):
        raise AssertionError("the new articles are not in the refreshed snapshot")
    rss = _rss_mb()
    store.close()
    return Figures(mode, size, write_s, full_load_s, _p(searches, 50), _p(searches, 95), update_s, refresh_s,
                   _p(during, 95), max(during, default=0.0), rss)


def _new_articles(corpus: Corpus, rng: np.random.Generator) -> list[tuple[Article, list[Chunk]]]:
    return list(itertools.islice(corpus.copies(10**9, "new"), NEW_ARTICLES))


def _p(values: list[float], q: float) -> float:
    return percentile(values, q) or 0.0


def run_scale_bench(settings: Settings, articles: Path, questions: Path, out: TextIO,
                    sizes: Sequence[int] = SIZES, server: bool = True) -> list[Figures]:
    asked = read_questions(questions)
    loaded = [a for a in load_paths([articles], settings) if isinstance(a, Article)]
    chunker = Chunker(settings)
    chunks = {a: chunker.chunks(a) for a in loaded}
    originals = [c for cs in chunks.values() for c in cs]
    if not originals:
        raise UsageError(f"no articles could be read from {articles}")
    embedder = get_embedder(settings)
    started = time.perf_counter()
    vectors = embedder.encode([c.headed_text for c in originals])
    rate = len(originals) / (time.perf_counter() - started)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores; "
          f"embedder threads: {settings.embed_threads or 'one per core'} (NEWSQA_EMBED_THREADS)", file=out)
    print(f"embedding (apart): {len(originals)} chunks of {len(loaded)} articles at {rate:.0f} chunks/s; "
          f"100k chunks would take {100_000 / rate / 60:.0f} min, so copies reuse these vectors, perturbed", file=out)
    corpus = Corpus(chunks, {c.id: v for c, v in zip(originals, vectors, strict=True)})
    new_chunks = sum(len(cs) for _, cs in _new_articles(corpus, np.random.default_rng(0)))
    print(f"{NEW_ARTICLES} new articles = {new_chunks} chunks; embedding them adds ~{new_chunks / rate:.1f} s "
          "to their update time below", file=out)

    figures = []
    with tempfile.TemporaryDirectory(prefix="newsqa-scale-") as tmp:
        for size in sizes:
            modes: list[tuple[str, AbstractContextManager[int | None]]] = [("embedded", nullcontext(None))]
            if server:
                modes.append(("server", chroma_server(Path(tmp) / f"server-{size}")))
            for mode, context in modes:
                with context as port:
                    local = settings.model_copy(update={  # its own plain loopback server: no token, no TLS
                        "data_dir": Path(tmp) / f"{mode}-{size}", "chroma_host": "127.0.0.1" if port else None,
                        "chroma_port": port or settings.chroma_port, "chroma_token": None, "chroma_tls": False})
                    figures.append(measure(local, mode, corpus, size, asked))
                    print(_row(figures[-1]), file=out, flush=True)
                gc.collect()
    print(_table(figures), file=out)
    return figures


def _row(f: Figures) -> str:
    return (f"{f.size:>7} {f.mode:8}: stored in {f.write_s:.0f} s; snapshot from scratch {f.full_load_s:.1f} s; "
            f"retrieval p50 {f.p50_ms:.0f} ms, p95 {f.p95_ms:.0f} ms; {NEW_ARTICLES} new articles answered from "
            f"after {f.update_s:.2f} s (refresh {f.refresh_s:.2f} s; retrieval meanwhile p95 "
            f"{f.during_p95_ms:.0f} ms, max {f.during_max_ms:.0f} ms); RSS {f.rss_mb:.0f} MB")


def _table(figures: list[Figures]) -> str:
    lines = ["", "chunks  | mode     | hybrid p50 / p95 ms | +10 articles visible s (refresh) | snapshot from "
             "scratch s | retrieval during refresh p95 / max ms | RSS MB",
             "------- | -------- | ------------------- | -------------------------------- | ----------------"
             "------- | ------------------------------------- | ------"]
    for f in figures:
        lines.append(f"{f.size:>7} | {f.mode:8} | {f.p50_ms:8.0f} / {f.p95_ms:<8.0f} | {f.update_s:21.2f} "
                     f"({f.refresh_s:.2f}) | {f.full_load_s:23.1f} | {f.during_p95_ms:17.0f} / "
                     f"{f.during_max_ms:<17.0f} | {f.rss_mb:6.0f}")
    lines.append("targets (embedded, 100k): hybrid p50 <= 25 ms; 10 new articles visible within 5 s, requests "
                 "not stalled")
    return "\n".join(lines)
