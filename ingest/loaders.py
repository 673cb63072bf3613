"""Files → Articles. Each loader yields Articles, or LoadErrors naming the file (and line) at fault."""

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import trafilatura
from dateutil import parser as dateparser
from trafilatura.settings import Document

from newsqa.ingest.normalise import normalise_text, normalise_title
from newsqa.settings import Settings
from newsqa.store.models import Article, source_key

TEXT_SUFFIXES = {".txt", ".md"}
JSON_SUFFIXES = {".json", ".jsonl"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED = TEXT_SUFFIXES | JSON_SUFFIXES | HTML_SUFFIXES
MIN_HTML_WORDS = 20
_SOURCE_LINE = re.compile(r"^\s*original source:\s*(\S+)\s*$", re.IGNORECASE)
_FIELDS = ("id", "title", "body", "source", "url", "published_at", "site_name", "author")


@dataclass(frozen=True)
class LoadError:
    origin: str  # "path" or "path:line"
    reason: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.reason}"


class BadArticle(ValueError):
    pass


def load_paths(paths: list[Path], settings: Settings) -> Iterator[Article | LoadError]:
    """Files as given, folders as `article_files` lists them; a symlink leaving a folder is an error."""
    for path in paths:
        if not path.is_dir():
            yield from load_path(path, settings)
            continue
        files, links_out = _walk(path)
        for link in links_out:
            yield LoadError(str(link), f"symlink to {link.resolve()}, outside {path}: not followed")
        for file in files:
            yield from load_path(file, settings)


def article_files(folder: Path) -> list[Path]:
    """The article files in a folder, recursively and in a stable order: hidden files, READMEs and other
    file types (a data dir's store files, say) are not articles, and no symlink is followed out of it."""
    return _walk(folder)[0]


def _walk(folder: Path) -> tuple[list[Path], list[Path]]:
    """A folder's article files, and the symlinks in it that lead outside it (to anywhere on the machine)."""
    root = folder.resolve()
    files, links_out = [], []
    for parent, dirs, names in os.walk(folder):  # lists symlinked folders in `dirs` without entering them
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for path in (Path(parent, name) for name in dirs + names):
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                if path.is_dir() or _is_article_name(path):
                    links_out.append(path)
            elif path.is_file() and _is_article_name(path):
                files.append(path)
    return sorted(files), sorted(links_out)


def _is_article_name(path: Path) -> bool:
    return (not path.name.startswith(".") and path.suffix.lower() in SUPPORTED
            and path.stem.casefold() != "readme")


def load_path(path: Path, settings: Settings) -> Iterator[Article | LoadError]:
    suffix = path.suffix.lower()
    if not path.exists():
        yield LoadError(str(path), "no such file or folder")
        return
    if suffix not in SUPPORTED:
        yield LoadError(str(path), f"unsupported file type {suffix or '(none)'!r}; expected one of "
                                   f"{', '.join(sorted(SUPPORTED))}")
        return
    try:
        raw = _read_bytes(path, settings)
        if suffix == ".jsonl":  # decoded line by line, so a bad byte fails its line alone
            yield from _load_jsonl(path, raw, settings)
            return
        text = _decode(raw)
        if suffix == ".json":
            yield from _load_json(path, text, settings)
            return
        yield _load_html(path, text, settings) if suffix in HTML_SUFFIXES else _load_plain(path, text, settings)
    except BadArticle as exc:
        yield LoadError(str(path), str(exc))


def _read_bytes(path: Path, settings: Settings) -> bytes:
    megabytes = path.stat().st_size / 1e6
    if megabytes > settings.max_file_mb:
        raise BadArticle(f"file is {megabytes:,.1f} MB, over the {settings.max_file_mb:g} MB limit "
                         f"(NEWSQA_MAX_FILE_MB)")
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise BadArticle("binary file, not text")
    if not raw.strip():
        raise BadArticle("empty file")
    return raw


def _decode(raw: bytes, where: str = "") -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadArticle(f"not valid UTF-8 (byte {exc.start}{where}); re-save the file as UTF-8") from exc


def _load_plain(path: Path, text: str, settings: Settings) -> Article:
    """The seed's shape: headline line, body, an optional 'Original Source: <domain>' line, furniture."""
    lines = normalise_text(text).split("\n")
    title = lines[0].lstrip("# ").strip()
    source = None
    body_lines = lines[1:]
    for i in range(len(body_lines) - 1, -1, -1):
        if match := _SOURCE_LINE.match(body_lines[i]):
            source = match.group(1)
            body_lines = body_lines[:i]  # anything after the source line is page furniture
            break
    return make_article({"title": title, "body": "\n".join(body_lines), "source": source}, str(path), settings)


def _load_html(path: Path, html: str, settings: Settings) -> Article:
    record = extract_html(html)
    # A file says nothing trustworthy about where it came from: the page's own name for itself (or its
    # canonical url) would let it pass a source filter as any outlet, so it is kept as site_name only.
    return make_article({**record, "title": record["title"] or path.stem.replace("-", " ")}, str(path), settings)


def extract_html(html: str | bytes) -> dict[str, str | None]:
    """A page's main text and its metadata (title, canonical url, date, author, the site's name for itself),
    by trafilatura; bytes are decoded as the page declares. `source` is left to the caller to vouch for."""
    doc = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False,
        date_extraction_params={"extensive_search": False},  # else a footer's "Copyright 2025" becomes the date
    )
    text = (doc.text or "").strip() if isinstance(doc, Document) else ""
    # trafilatura falls back to nav links on pages without an article
    if not isinstance(doc, Document) or len(text.split()) < MIN_HTML_WORDS:
        raise BadArticle("no article text found in the HTML")
    first, _, rest = text.partition("\n")
    return {
        "title": doc.title,
        "body": rest if doc.title and first.strip() == doc.title.strip() else text,  # the <h1> is not body text
        "source": None,
        "site_name": doc.sitename or doc.hostname,
        "url": doc.url,
        "published_at": doc.date,
        "author": doc.author,
    }


def _load_jsonl(path: Path, raw: bytes, settings: Settings) -> Iterator[Article | LoadError]:
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        origin = f"{path}:{n}"
        try:
            yield _json_article(_parse_json(_decode(line, " of the line")), origin, settings)
        except BadArticle as exc:
            yield LoadError(origin, str(exc))


def _load_json(path: Path, text: str, settings: Settings) -> Iterator[Article | LoadError]:
    try:
        data = _parse_json(text)
    except BadArticle as exc:
        at = exc.__cause__.lineno if isinstance(exc.__cause__, json.JSONDecodeError) else None
        yield LoadError(f"{path}:{at}" if at else str(path), str(exc))
        return
    for i, record in enumerate(data if isinstance(data, list) else [data]):
        origin = f"{path}[{i}]" if isinstance(data, list) else str(path)
        try:
            yield _json_article(record, origin, settings)
        except BadArticle as exc:
            yield LoadError(origin, str(exc))


def _parse_json(text: str) -> object:
    """json.loads, with each way a record can fail to parse as a BadArticle rather than an aborted ingest."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadArticle(f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise BadArticle(f"invalid JSON: {str(exc).partition(':')[0]}") from exc
    except RecursionError as exc:
        raise BadArticle("invalid JSON: nested too deeply") from exc


def _json_article(record: object, origin: str, settings: Settings) -> Article:
    if not isinstance(record, dict):
        raise BadArticle(f"expected an object with title and body, got {type(record).__name__}")
    # A record's outlet is the one it names, else its url's: the feed is the operator's own data.
    return make_article({**record, "source": record.get("source") or record.get("url")}, origin, settings)


def make_article(record: Mapping[str, object], origin: str, settings: Settings) -> Article:
    """An Article from a record of `_FIELDS`, checked (size, title, body, date) and normalised; else BadArticle."""
    # Every field as text, "" when absent (a feed may give numbers), and the whole measured before the work
    # that takes time in proportion to it: a 100 MB body without spaces would be chunked letter by letter.
    field = {name: str(record.get(name) or "") for name in _FIELDS}
    size = sum(map(len, field.values()))
    if size > settings.max_record_chars:
        raise BadArticle(f"article is {size:,} characters, over the {settings.max_record_chars:,}-character "
                         f"limit (NEWSQA_MAX_RECORD_CHARS)")
    title, body = normalise_title(field["title"]), normalise_text(field["body"])
    if not title:
        raise BadArticle("article has no title")
    if not body:
        raise BadArticle(f"article {title!r} has no body text")
    return Article(
        id=field["id"] or None,
        title=title,
        body=body,
        source=source_key(field["source"]),
        url=field["url"] or None,
        published_at=_parse_date(field["published_at"]),
        origin=origin,
        site_name=field["site_name"] or None,
        author=field["author"] or None,
    )


def _parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = dateparser.parse(value)
        if parsed.tzinfo:  # stored in UTC: year 1 at +14:00 falls before the calendar starts
            parsed.astimezone(UTC)
        return parsed
    except (ValueError, OverflowError) as exc:
        raise BadArticle(f"unreadable published_at {value!r} ({exc})") from exc
