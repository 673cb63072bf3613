"""The write path: load → normalise → chunk → embed → upsert, idempotent and with a progress bar."""

import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from newsqa.ingest.chunking import Chunker
from newsqa.ingest.counters import count_ingest
from newsqa.ingest.loaders import LoadError, load_paths
from newsqa.ingest.removal import published_before, retention_cutoff
from newsqa.settings import Settings
from newsqa.store.check import adopt_legacy, find_problems, repair
from newsqa.store.embedding import Embedder, get_embedder
from newsqa.store.index import Index, StoredArticle, open_index, writer_lock
from newsqa.store.models import Article, Chunk

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # the same article met twice in this batch (e.g. under two file names)
    failed: int = 0
    expired: int = 0  # removed as older than the retention period
    chunks_written: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"articles: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.duplicates} duplicate, {self.failed} failed{f', {self.expired} expired' if self.expired else ''}; "
            f"{self.chunks_written} chunks written "
            f"in {self.seconds:.1f}s"
        )


def ingest_paths(paths: list[Path], settings: Settings, progress: bool = True) -> IngestSummary:
    return ingest_items(load_paths(paths, settings), settings, progress)


def ingest_items(items: Iterable[Article | LoadError], settings: Settings, progress: bool = True) -> IngestSummary:
    started = time.perf_counter()
    summary = IngestSummary()
    with writer_lock(settings):
        index = open_index(settings)
        adopt_legacy(index)
        if index.write_interrupted() and (problems := find_problems(index)):
            log.warning("an earlier write was interrupted: %s; repairing", problems.summary())
            repair(index, problems)
        records = index.articles()
        cutoff = retention_cutoff(settings.retention_days)
        expired = {a.id for a in records.values() if published_before(a.published_ts, cutoff)}
        changed = _changed(items, records, cutoff, expired, summary, progress)
        cut = _cut(changed, settings, summary) if changed else {}  # only now load the model
        summary.expired = len(expired)
        withdrawn: set[str] = set()
        if cut or expired & records.keys():
            with index.writing():
                if cut:
                    withdrawn = _embed_and_store(index, get_embedder(settings), cut, settings, progress)
                index.remove([records[key] for key in sorted(expired & records.keys())])
            summary.chunks_written = sum(len(chunks) for chunks in cut.values())
        for article in cut:
            if article.key in withdrawn:
                summary.failed += 1
                summary.errors.append(f"{article.origin}: another writer removed or replaced it while it was "
                                      "stored; ingest it again")
            elif article.key in records:
                summary.updated += 1
            else:
                summary.added += 1
    summary.seconds = time.perf_counter() - started
    count_ingest(summary.added, summary.updated, summary.unchanged, summary.duplicates, summary.failed,
                 summary.expired, summary.chunks_written)
    return summary


def _changed(items: Iterable[Article | LoadError], records: dict[str, StoredArticle], cutoff: float | None,
             expired: set[str], summary: IngestSummary, progress: bool) -> list[Article]:
    """The articles to write: new or edited, and not past the retention period (those join `expired`)."""
    pending: dict[str, Article | None] = {}
    for item in tqdm(items, desc="loading", unit=" articles", disable=not progress):
        if isinstance(item, LoadError):
            summary.failed += 1
            summary.errors.append(str(item))
            log.warning("skipped %s", item)
            continue
        utc = item.published_utc
        if published_before(utc.timestamp() if utc else None, cutoff):
            expired.add(item.key)
            continue
        if item.key in pending:  # met twice in one batch: the later version wins
            summary.duplicates += 1
            log.info("%s: same article as one met before in this batch", item.origin)
        record = records.get(item.key)
        unchanged = record is not None and record.content_hash == item.content_hash
        pending[item.key] = None if unchanged else item  # None: seen, nothing to write
    summary.unchanged = sum(1 for a in pending.values() if a is None)
    return [a for a in pending.values() if a is not None]


def _cut(articles: list[Article], settings: Settings, summary: IngestSummary) -> dict[Article, list[Chunk]]:
    """Each article's chunks; an article that can't be cut fails alone, named in the summary."""
    chunker, cut = Chunker(settings), {}
    for article in articles:
        try:
            cut[article] = chunker.chunks(article)
        except ValueError as exc:
            summary.failed += 1
            summary.errors.append(f"{article.origin}: could not be cut into chunks ({exc})")
            log.warning("skipped %s: %s", article.origin, exc)
    return cut


def _embed_and_store(index: Index, embedder: Embedder, cut: dict[Article, list[Chunk]], settings: Settings,
                     progress: bool) -> set[str]:
    """Embed batch i+1 while Chroma stores batch i: the store's time hides behind the model's.

    An article is recorded complete in the batch that stores its last chunk, and only then are its older
    versions deleted: a kill at any point leaves each article whole in one version, plus debris readers skip.
    Returns the keys of articles another writer's delete left incomplete meanwhile (withdrawn: see
    `Index.settle`)."""
    chunks = [c for article_chunks in cut.values() for c in article_chunks]
    withdrawn: set[str] = set()

    def store(part: list[Chunk], vectors: list[Sequence[float]]) -> None:
        index.upsert(part, [c.text for c in part], vectors)
        finished = [StoredArticle.of(c.article, len(cut[c.article])) for c in part
                    if c.index == len(cut[c.article]) - 1]
        if finished:
            index.record(finished)
            withdrawn.update(index.delete_stale(finished))

    with ThreadPoolExecutor(max_workers=1) as writer, tqdm(
        total=len(chunks), desc="embedding", unit=" chunks", disable=not progress
    ) as bar:
        pending = None
        for i in range(0, len(chunks), settings.store_batch_size):
            part = chunks[i : i + settings.store_batch_size]
            vectors = embedder.encode([c.headed_text for c in part]).tolist()
            if pending:
                pending.result()
            pending = writer.submit(store, part, vectors)
            bar.update(len(part))
        if pending:
            pending.result()
    return withdrawn
