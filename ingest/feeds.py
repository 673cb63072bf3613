"""Feeds: the feeds file (TOML or YAML: url, optional source name, refresh interval, other hosts it speaks
for) and RSS/Atom parsing by feedparser into FeedItems, at most NEWSQA_FEED_MAX_ITEMS of them a document."""

import calendar
import io
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from xml.parsers import expat

import feedparser
import yaml
from courlan import normalize_url
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from newsqa.errors import UsageError

# Oddities feedparser flags but reads past: a declared encoding that was wrong, a feed served as text/plain.
_HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_ITEMS = ("item", "entry")  # RSS's and Atom's, whatever their namespace prefix
_ITEM_TAG = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)\b")  # counts every item's start tag, and maybe more


class FeedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    source: str | None = None  # the outlet's name, shown with its articles; default: the feed's own title
    refresh_minutes: float | None = Field(None, gt=0)  # default: NEWSQA_FEED_REFRESH_MINUTES
    # other sites this feed speaks for: a full-text item linking there is stored as that site's story; an item
    # linking to a site neither here nor the feed's own is stored as the feed's
    hosts: list[str] = []


class _FeedsFile(BaseModel):
    feeds: list[FeedConfig] = Field(min_length=1)


def read_feeds_file(path: Path) -> list[FeedConfig]:
    """The feeds a file lists (`[[feeds]]` tables in TOML, a `feeds:` list in YAML); UsageError naming the
    entry and field at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the feeds file ({exc.strerror})") from None
    try:
        data: Any = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else tomllib.loads(text)
        return _FeedsFile.model_validate(data).feeds
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: not valid {path.suffix.lstrip('.').upper()} ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UsageError(f"{path}: {where}: {first['msg']}") from None


def feed_configs(urls: list[str]) -> list[FeedConfig]:
    """Feeds named on the command line; UsageError for one that is not an http(s) url."""
    try:
        return [FeedConfig.model_validate({"url": url}) for url in urls]
    except ValidationError as exc:
        raise UsageError(f"--feed {exc.errors()[0]['input']!r}: not an http(s) url") from None


class BadFeed(ValueError):
    pass


@dataclass(frozen=True)
class FeedItem:
    identity: str  # the item's guid, else its link: what the feed state remembers it by
    link: str  # normalised: tracking parameters and fragment dropped
    title: str | None
    published_at: str | None  # ISO 8601, UTC
    updated: str | None  # as the feed states it; a change means the story was edited
    author: str | None
    content_html: str | None  # the item's own text (content:encoded, Atom content, else its summary)


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    items: list[FeedItem]
    errors: list[str]  # "link: reason" for each item that could not be read
    unread: int = 0  # items past the first `max_items`, left unread


def parse_feed(body: bytes, url: str, max_items: int) -> ParsedFeed:
    """RSS or Atom read from `url` (relative links are resolved against it), its first `max_items` items;
    BadFeed when the document is not a well-formed feed. Items without a link are left out; one that can't be
    read is named in `errors`."""
    body, unread = _first_items(body, max_items)
    # A stream, never the bytes themselves: feedparser opens bytes that name a file, so a body of "/dev/zero"
    # would read forever and one naming a local feed would ingest it.
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-location": url})
    if parsed.bozo and not isinstance(parsed.bozo_exception, _HARMLESS):
        raise BadFeed(f"broken feed XML ({parsed.bozo_exception})")
    if not parsed.version:
        raise BadFeed("not an RSS or Atom feed")
    items, errors = [], []
    for entry in parsed.entries:
        if not entry.get("link"):
            continue
        try:
            items.append(_item(entry, url))
        except (ValueError, OverflowError) as exc:  # e.g. a date before year 1 once in UTC
            errors.append(f"{entry.link}: unreadable feed item ({exc})")
    return ParsedFeed(parsed.feed.get("title"), items, errors, unread)


def _first_items(body: bytes, cap: int) -> tuple[bytes, int]:
    """The document cut before its item number `cap + 1` (the elements still open there closed again), and
    how many items that left out. feedparser takes about a millisecond an item and keeps every one: a feed of
    100,000 items would take minutes and hundreds of MB. Counted by expat, which keeps nothing."""
    if sum(1 for _ in _ITEM_TAG.finditer(body)) <= cap:  # a cheap count first: most feeds stop here
        return body, 0
    parser = expat.ParserCreate()
    open_tags: list[str] = []
    starts: list[int] = []  # the byte offset of each item's start tag
    cut_inside: list[str] = []  # the elements open where the cut falls
    item_depth: int | None = None  # how many elements enclose the item being read

    def start(name: str, _attributes: object) -> None:
        nonlocal item_depth
        if item_depth is None and name.rpartition(":")[2] in _ITEMS:  # an item's own parts are not items
            item_depth = len(open_tags)
            starts.append(parser.CurrentByteIndex)
            if len(starts) == cap + 1:
                cut_inside.extend(open_tags)
        open_tags.append(name)

    def end(_name: str) -> None:
        nonlocal item_depth
        open_tags.pop()
        if item_depth == len(open_tags):
            item_depth = None

    parser.StartElementHandler, parser.EndElementHandler = start, end
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        if len(starts) <= cap:  # broken among the items it would have read
            raise BadFeed(f"broken feed XML ({exc})") from None
    if len(starts) <= cap:
        return body, 0
    closing = "".join(f"</{name}>" for name in reversed(cut_inside)).encode()
    return body[: starts[cap]] + closing, len(starts) - cap


def _item(entry: Any, url: str) -> FeedItem:
    link = normalize_url(urljoin(url, entry.link), strict=True)
    contents = [c.get("value") for c in entry.get("content", [])]
    return FeedItem(
        identity=entry.get("id") or link, link=link, title=entry.get("title"),
        published_at=_iso(entry.get("published_parsed") or entry.get("updated_parsed")),
        updated=entry.get("updated"), author=entry.get("author"),
        content_html=next((c for c in contents if c), None) or entry.get("summary"),
    )


def _iso(parsed: Any) -> str | None:
    """feedparser's dates are UTC struct_times."""
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat() if parsed else None
