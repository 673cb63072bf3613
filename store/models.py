"""The records both pipelines share: an Article as loaded, its Chunks, and the metadata stored with each."""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

# An article key used as is: short, and only characters that read plainly in ids, logs and reports.
_PLAIN_KEY = re.compile(r"[\w.:@/+-]{1,128}")


def source_key(source: str | None) -> str | None:
    """An outlet as stored and filtered on: 'https://www.newarab.com/x' and 'www.newarab.com' are 'newarab.com'."""
    if not source:
        return None
    source = re.sub(r"^[a-z]+://", "", source.strip().casefold()).split("/")[0]
    return source.removeprefix("www.") or None


def headed(title: str, text: str) -> str:
    """A passage with its headline: how it is embedded and how its words are counted."""
    return f"{title}\n{text}"


def dateline(source: str | None, published_at: str | None) -> str:
    """'newarab.com, 2025-03-14': whichever of the two is known."""
    return ", ".join(x for x in (source, published_at) if x)


@dataclass(frozen=True)
class Article:
    title: str
    body: str
    source: str | None = None
    url: str | None = None
    published_at: datetime | None = None
    id: str | None = None  # given by the input; otherwise derived, see `key`
    origin: str = ""  # file (and line) it came from, for messages
    site_name: str | None = None  # the name a web page gives itself: shown, never trusted as its source
    author: str | None = None

    @property
    def key(self) -> str:
        """Stable identity across re-ingests, within the article's source: "usatoday.com:123" for a given id,
        else a hash of the source with the url, else with the headline.

        Scoping by source keeps two feeds that both number an item "123", or a page that claims another
        outlet's url, from replacing each other. Keying on the headline (not the file name) stores the same
        story once under any file name, and lets an edited body replace the old version.
        """
        if self.id:
            scoped = f"{self.source}:{self.id}" if self.source else self.id
            return scoped if _PLAIN_KEY.fullmatch(scoped) else "i_" + _digest(scoped)
        return _located_key(self.source, self.url or self.title.casefold())

    @property
    def content_hash(self) -> str:
        parts = [self.title, self.body, self.source or "", self.url or "", self.published_iso or ""]
        # optional fields join only when present, so articles without them keep their hash
        parts += [self.site_name] if self.site_name else []
        parts += [f"author:{self.author}"] if self.author else []
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
        utc = self.published_utc
        return utc.date().isoformat() if utc else None


def url_key(url: str) -> str:
    """The key of an article known by its url, its source being the url's outlet (as `Article.key` computes
    it): lets a feed skip a stored story before fetching its page."""
    return _located_key(source_key(url), url)


def _located_key(source: str | None, locator: str) -> str:
    return "a_" + _digest(f"{source or ''}\n{locator}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Chunk:
    article: Article
    index: int
    text: str  # body text only; the headline is added by `headed`
    start: int  # character span in the article body
    end: int

    @property
    def id(self) -> str:
        return f"{self.article.key}:{self.article.content_hash[:12]}:{self.index}"

    @property
    def headed_text(self) -> str:
        """What is embedded: the text with its headline."""
        return headed(self.article.title, self.text)


@dataclass(frozen=True)
class ChunkMeta:
    """What the store keeps beside each chunk's text and vector."""

    article_id: str
    content_hash: str
    title: str
    chunk_index: int
    start: int
    end: int
    source: str | None = None
    url: str | None = None
    published_at: str | None = None  # ISO date (UTC)
    published_ts: int | None = None  # UTC epoch seconds, for date-range filters
    site_name: str | None = None
    author: str | None = None
    writer: str | None = None  # the write lease it was stored under: a repair spares a live writer's chunks

    @classmethod
    def of(cls, chunk: Chunk, writer: str | None = None) -> "ChunkMeta":
        article = chunk.article
        utc = article.published_utc
        return cls(
            article_id=article.key, content_hash=article.content_hash, title=article.title,
            chunk_index=chunk.index, start=chunk.start, end=chunk.end, source=article.source, url=article.url,
            published_at=article.published_iso, published_ts=int(utc.timestamp()) if utc else None,
            site_name=article.site_name, author=article.author, writer=writer,
        )

    @classmethod
    def from_store(cls, meta: Mapping[str, object]) -> "ChunkMeta":
        return cls(**{name: meta.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def to_store(self) -> dict[str, str | int]:
        """Chroma rejects None values: absent fields are left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def dateline(self) -> str:
        return dateline(self.source, self.published_at)
