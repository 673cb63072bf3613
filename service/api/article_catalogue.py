"""The articles one store snapshot holds, for browsing: headlines, outlets and dates, and each article's text
rebuilt from its chunks (they overlap; the overlap is written once)."""

import threading
from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, Field

from newsqa.service.answering.schemas import Filters
from newsqa.service.answering.snapshot import Scope, Snapshot
from newsqa.store.index import StoredChunk
from newsqa.store.models import ChunkMeta

MAX_PAGE = 100  # articles per page a client may ask for


class ArticleQuery(Filters):
    """`GET /v1/articles` parameters: the chat's filters, a headline search and a page."""

    q: str | None = Field(None, max_length=200, description="Words the headline must contain (any case, any order).")
    offset: int = Field(0, ge=0, description="Articles to skip, newest first.")
    limit: int | None = Field(None, ge=1, le=MAX_PAGE, description="Articles per page (default: the server's).")


class ArticleSummary(BaseModel):
    id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None = Field(description="ISO date (UTC).")
    site_name: str | None = Field(description="The name the page gave itself, when it was HTML.")


class ArticleChunk(BaseModel):
    id: str = Field(description="The id a citation's chunk_id names.")
    index: int
    start: int = Field(description="Where this chunk starts in the article's text.")
    end: int = Field(description="Where it ends (exclusive); consecutive chunks overlap.")


class ArticleDetail(ArticleSummary):
    text: str = Field(description="The body, rebuilt from the stored chunks; blank lines between paragraphs.")
    chunks: list[ArticleChunk]


class ArticlePage(BaseModel):
    items: list[ArticleSummary]
    total: int = Field(description="Articles matching the query, across all pages.")
    offset: int
    limit: int


class SourceSummary(BaseModel):
    source: str
    articles: int
    first_published: str | None = Field(description="Date of its oldest dated article.")
    last_published: str | None = Field(description="Date of its newest dated article.")


class Catalogue:
    """Built once per snapshot from the chunks it answers from: browsing shows what questions are answered from."""

    def __init__(self, chunks: Iterable[StoredChunk]):
        self._chunks: dict[str, list[StoredChunk]] = defaultdict(list)
        for chunk in chunks:
            self._chunks[chunk.meta.article_id].append(chunk)
        for parts in self._chunks.values():
            parts.sort(key=lambda c: c.meta.chunk_index)
        metas = [parts[0].meta for parts in self._chunks.values()]
        # newest first; undated articles last, then by headline so pages are stable
        self._newest_first = sorted(
            metas, key=lambda m: (m.published_ts is None, -(m.published_ts or 0), m.title.casefold(), m.article_id)
        )

    def page(self, query: ArticleQuery, default_limit: int) -> ArticlePage:
        scope = Scope.of(query)
        words = (query.q or "").casefold().split()
        matching = [m for m in self._newest_first
                    if scope.admits(m) and all(w in m.title.casefold() for w in words)]
        limit = query.limit or default_limit
        items = [_summary(m) for m in matching[query.offset : query.offset + limit]]
        return ArticlePage(items=items, total=len(matching), offset=query.offset, limit=limit)

    def article(self, article_id: str) -> ArticleDetail | None:
        parts = self._chunks.get(article_id)
        if not parts:
            return None
        text, spans = _rebuild(parts)
        chunks = [ArticleChunk(id=c.id, index=c.meta.chunk_index, start=start, end=start + len(c.text))
                  for c, start in zip(parts, spans, strict=True)]
        return ArticleDetail(**_summary(parts[0].meta).model_dump(), text=text, chunks=chunks)

    def sources(self) -> list[SourceSummary]:
        outlets: dict[str, list[ChunkMeta]] = defaultdict(list)
        for meta in self._newest_first:
            if meta.source:
                outlets[meta.source].append(meta)
        summaries = []
        for source, metas in sorted(outlets.items()):
            dates = [m.published_at for m in metas if m.published_at]
            summaries.append(SourceSummary(source=source, articles=len(metas), first_published=min(dates, default=None),
                                           last_published=max(dates, default=None)))
        return summaries


def _summary(meta: ChunkMeta) -> ArticleSummary:
    return ArticleSummary(id=meta.article_id, title=meta.title, source=meta.source, url=meta.url,
                          published_at=meta.published_at, site_name=meta.site_name)


def _rebuild(parts: list[StoredChunk]) -> tuple[str, list[int]]:
    """The body from its chunks in order, and where each chunk starts in it.

    A chunk's text is verbatim from the body at meta.start; the next one starts later and may overlap it, so
    only what it adds is appended. The whitespace between chunks was stripped at ingest: a gap of two or more
    characters was a paragraph break (the splitter tries those first), a single one a space."""
    text, spans = "", []
    last: tuple[int, int, int] | None = None  # the chunk reaching furthest so far: its body start, end, text start
    for chunk in parts:
        start, end = chunk.meta.start, chunk.meta.end
        if last is None:
            text, span = chunk.text, 0
        elif start < last[1]:  # overlap: this chunk starts inside that one, and adds only what lies beyond it
            span = last[2] + start - last[0]
            text += chunk.text[last[1] - start :]
        else:
            text += " " if start - last[1] == 1 else "\n\n"
            span = len(text)
            text += chunk.text
        spans.append(span)
        if last is None or end > last[1]:
            last = (start, end, span)
    return text, spans


class Catalogues:
    """The catalogue of the store view's current snapshot, rebuilt only when the snapshot changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._for: tuple[Snapshot, Catalogue] | None = None

    def of(self, snapshot: Snapshot) -> Catalogue:
        with self._lock:
            if self._for is None or self._for[0] is not snapshot:
                self._for = (snapshot, Catalogue(snapshot.lexical.chunks))
            return self._for[1]
