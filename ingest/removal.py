"""Taking articles out: by id, outlet or date (`newsqa remove`), and the retention period's expiry."""

import time
from collections.abc import Iterable
from datetime import UTC, date, datetime

from newsqa.settings import Settings
from newsqa.store.index import open_index, writer_lock
from newsqa.store.models import source_key

DAY_SECONDS = 86_400


def retention_cutoff(retention_days: int | None) -> float | None:
    """The epoch before which articles have expired; None without a retention period."""
    return None if retention_days is None else time.time() - retention_days * DAY_SECONDS


def published_before(published_ts: float | None, epoch: float | None) -> bool:
    """Undated articles have no age: they are never before anything."""
    return epoch is not None and published_ts is not None and published_ts < epoch


def remove_articles(
    settings: Settings, ids: Iterable[str] = (), source: str | None = None, before: date | None = None
) -> list[str]:
    """Remove the named articles, those of `source`, and those published before `before`; returns their ids."""
    with writer_lock(settings):
        index = open_index(settings)
        articles = index.articles()
        chosen = {i for i in ids if i in articles}
        if source:
            chosen |= {a.id for a in articles.values() if a.source == source_key(source)}
        if before:
            epoch = datetime.combine(before, datetime.min.time(), UTC).timestamp()
            chosen |= {a.id for a in articles.values() if published_before(a.published_ts, epoch)}
        if chosen:
            with index.writing():
                index.remove([articles[i] for i in sorted(chosen)])
    return sorted(chosen)
