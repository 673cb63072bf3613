"""The two records of the write path: an Article as loaded, and the Chunks it is cut into."""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class Article:
    title: str
    body: str
    source: str | None = None
    url: str | None = None
    published_at: datetime | None = None
    id: str | None = None  # given by the input; otherwise derived, see `key`
    origin: str = ""  # file (and line) it came from, for messages

    @property
    def key(self) -> str:
        """Stable identity across re-ingests: the given id, else the url, else source + headline.

        Keying on the headline (not the file name) stores the same story once under any file name,
        and lets an edited body replace the old version instead of sitting beside it.
        """
        if self.id:
            return self.id
        basis = self.url or f"{self.source or ''}\n{self.title.casefold()}"
        return "a_" + hashlib.sha256(basis.encode()).hexdigest()[:16]

    @property
    def content_hash(self) -> str:
        parts = [self.title, self.body, self.source or "", self.url or "", self.published_iso or ""]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    @property
    def published_utc(self) -> datetime | None:
        """Naive dates are taken as UTC; zoned ones converted, so the date and its epoch agree."""
        if self.published_at is None:
            return None
        if self.published_at.tzinfo is None:
            return self.published_at.replace(tzinfo=UTC)
        return self.published_at.astimezone(UTC)

    @property
    def published_iso(self) -> str | None:
        return self.published_utc.date().isoformat() if self.published_at else None


@dataclass(frozen=True)
class Chunk:
    article: Article
    index: int
    text: str  # body text only; the headline is prefixed at embedding time
    start: int  # character span in the article body
    end: int
    metadata: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.article.key}:{self.article.content_hash[:12]}:{self.index}"
