"""The write path: load → normalise → chunk → embed → upsert, idempotent and with a progress bar."""

import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from newsqa.ingest.chunking import Chunker
from newsqa.ingest.loaders import LoadError, load_paths
from newsqa.settings import Settings
from newsqa.store.embedding import Embedder, get_embedder
from newsqa.store.index import Index, open_index, writer_lock
from newsqa.store.models import Article, Chunk

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # the same article met twice in this batch (e.g. under two file names)
    failed: int = 0
    chunks_written: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"articles: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.duplicates} duplicate, {self.failed} failed; {self.chunks_written} chunks written "
            f"in {self.seconds:.1f}s"
        )


def ingest_paths(paths: list[Path], settings: Settings, progress: bool = True) -> IngestSummary:
    return ingest_items(load_paths(paths, settings), settings, progress)


def ingest_items(items: Iterable[Article | LoadError], settings: Settings, progress: bool = True) -> IngestSummary:
    started = time.perf_counter()
    summary = IngestSummary()
    with writer_lock(settings.data_dir):
        index = open_index(settings)
        stored = index.article_hashes()
        pending: dict[str, Article | None] = {}
        for item in tqdm(items, desc="loading", unit=" articles", disable=not progress):
            if isinstance(item, LoadError):
                summary.failed += 1
                summary.errors.append(str(item))
                log.warning("skipped %s", item)
            else:
                if item.key in pending:  # met twice in one batch: the later version wins
                    summary.duplicates += 1
                    log.info("%s: same article as one met before in this batch", item.origin)
                unchanged = stored.get(item.key) == item.content_hash
                pending[item.key] = None if unchanged else item  # None: seen, nothing to write
        summary.unchanged = sum(1 for a in pending.values() if a is None)
        changed = [a for a in pending.values() if a is not None]
        cut = _cut(changed, settings, summary) if changed else {}  # only now load the model
        summary.added = sum(1 for a in cut if a.key not in stored)
        summary.updated = len(cut) - summary.added
        if cut:
            chunks = [c for article_chunks in cut.values() for c in article_chunks]
            _embed_and_store(index, get_embedder(settings), chunks, progress)
            for article in cut:
                if article.key in stored:
                    index.delete_stale(article.key, article.content_hash)
            index.bump_generation()
            summary.chunks_written = len(chunks)
    summary.seconds = time.perf_counter() - started
    return summary


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


def _embed_and_store(index: Index, embedder: Embedder, chunks: list[Chunk], progress: bool) -> None:
    """Embed batch i+1 while Chroma stores batch i: the store's time hides behind the model's."""
    batch = 256
    with ThreadPoolExecutor(max_workers=1) as writer, tqdm(
        total=len(chunks), desc="embedding", unit=" chunks", disable=not progress
    ) as bar:
        pending = None
        for i in range(0, len(chunks), batch):
            part = chunks[i : i + batch]
            vectors = embedder.encode([c.headed_text for c in part])
            if pending:
                pending.result()
            pending = writer.submit(index.upsert, part, [c.text for c in part], vectors.tolist())
            bar.update(len(part))
        if pending:
            pending.result()
