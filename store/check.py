"""`newsqa check`: what a killed writer can leave behind, found by one scan and put right.

On a Chroma server other writers may be part-way through their own writes meanwhile: their unrecorded chunks
look like debris, so a chunk is stray only when its writer is not alive once the scan is over and the records
as read then still don't count it; an article is incomplete only when a count of its chunks says so again."""

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from newsqa.store.index import Index, StoredArticle, StoredChunk
from newsqa.store.models import ChunkMeta

log = logging.getLogger(__name__)


@dataclass
class Problems:
    stray_chunks: list[StoredChunk] = field(default_factory=list)  # of no complete version: debris, stale versions
    incomplete: list[StoredArticle] = field(default_factory=list)  # records naming chunks that are missing
    dead_writers: list[str] = field(default_factory=list)  # leases of writers that died part-way

    def __bool__(self) -> bool:
        return bool(self.stray_chunks or self.incomplete or self.dead_writers)

    def summary(self) -> str:
        if not self:
            return "the store is consistent"
        return (f"{len(self.stray_chunks)} stray chunks (unfinished or stale versions), "
                f"{len(self.incomplete)} articles with missing chunks, "
                f"{len(self.dead_writers)} interrupted writers")


def find_problems(index: Index) -> Problems:
    articles = index.articles()
    versions = {a.id: a.content_hash for a in articles.values()}
    present: Counter[str] = Counter()
    unrecorded: list[StoredChunk] = []
    for chunk in index.all_chunks(with_text=False):
        if chunk.counts_in(versions):
            present[chunk.meta.article_id] += 1
        else:
            unrecorded.append(chunk)
    now = time.time()
    writers = index.writers()  # read after the scan: a writer whose chunks it saw was registered before them
    alive = {w.writer for w in writers if w.alive(now)}
    recorded = index.articles()  # read after the leases: what writers that finished meanwhile recorded
    latest = {a.id: a.content_hash for a in recorded.values()}
    return Problems(
        stray_chunks=[c for c in unrecorded if c.meta.writer not in alive and not c.counts_in(latest)],
        incomplete=[a for _, a in sorted(articles.items())
                    if present[a.id] < a.chunks and recorded.get(a.id) == a and index.chunks_of(a) < a.chunks],
        dead_writers=sorted({w.writer for w in writers} - alive),
    )


def repair(index: Index, problems: Problems) -> None:
    """Stray chunks go; an incomplete article goes whole, so the next ingest of it stores it afresh."""
    with index.writing():
        index.remove(problems.incomplete)
        index.delete_chunks(problems.stray_chunks)
        index.end_leases(problems.dead_writers)
    log.info("repaired: %s", problems.summary())


def adopt_legacy(index: Index) -> int:
    """A store written before article records existed has chunks and no records: record each article's
    version from its chunks, so an upgrade loses nothing. Returns how many articles were adopted."""
    if not index.legacy():
        return 0
    versions: dict[str, dict[str, list[ChunkMeta]]] = {}
    for chunk in index.all_chunks(with_text=False):
        versions.setdefault(chunk.meta.article_id, {}).setdefault(chunk.meta.content_hash, []).append(chunk.meta)
    adopted = []
    for article_id, by_hash in versions.items():
        metas = max(by_hash.values(), key=len)  # an old edit's leftovers lose to the whole version
        first = metas[0]
        adopted.append(StoredArticle(article_id, first.content_hash, len(metas), first.title, first.source,
                                     first.published_ts))
    with index.writing():
        index.record(adopted)
    log.warning("adopted %d articles stored before article records existed", len(adopted))
    return len(adopted)
