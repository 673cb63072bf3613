"""Files → Articles. Each loader yields Articles, or LoadErrors naming the file (and line) at fault."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import trafilatura
from dateutil import parser as dateparser
from trafilatura.settings import Document

from newsqa.ingest.normalise import normalise_text, normalise_title
from newsqa.store.models import Article, source_key

TEXT_SUFFIXES = {".txt", ".md"}
JSON_SUFFIXES = {".json", ".jsonl"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED = TEXT_SUFFIXES | JSON_SUFFIXES | HTML_SUFFIXES
MIN_HTML_WORDS = 20
_SOURCE_LINE = re.compile(r"^\s*original source:\s*(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class LoadError:
    origin: str  # "path" or "path:line"
    reason: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.reason}"


class BadArticle(ValueError):
    pass


def load_paths(paths: list[Path]) -> Iterator[Article | LoadError]:
    """Files as given, folders as `article_files` lists them."""
    for path in paths:
        for file in article_files(path) if path.is_dir() else [path]:
            yield from load_path(file)


def article_files(folder: Path) -> list[Path]:
    """The article files in a folder, recursively and in a stable order: hidden files, READMEs and other
    file types (a data dir's store files, say) are not articles."""
    return sorted(
        child for child in folder.rglob("*")
        if child.is_file()
        and not any(part.startswith(".") for part in child.relative_to(folder).parts)
        and child.suffix.lower() in SUPPORTED
        and child.stem.casefold() != "readme"
    )


def load_path(path: Path) -> Iterator[Article | LoadError]:
    suffix = path.suffix.lower()
    if not path.exists():
        yield LoadError(str(path), "no such file or folder")
        return
    if suffix not in SUPPORTED:
        yield LoadError(str(path), f"unsupported file type {suffix or '(none)'!r}; expected one of "
                                   f"{', '.join(sorted(SUPPORTED))}")
        return
    try:
        text = _read_text(path)
    except BadArticle as exc:
        yield LoadError(str(path), str(exc))
        return
    if suffix in JSON_SUFFIXES:
        yield from _load_json(path, text)
        return
    try:
        yield _load_html(path, text) if suffix in HTML_SUFFIXES else _load_plain(path, text)
    except BadArticle as exc:
        yield LoadError(str(path), str(exc))


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise BadArticle("binary file, not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadArticle(f"not valid UTF-8 (byte {exc.start}); re-save the file as UTF-8") from exc
    if not text.strip():
        raise BadArticle("empty file")
    return text


def _load_plain(path: Path, text: str) -> Article:
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
    return _article(path, {"title": title, "body": "\n".join(body_lines), "source": source}, str(path))


def _load_html(path: Path, html: str) -> Article:
    doc = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False,
        date_extraction_params={"extensive_search": False},  # else a footer's "Copyright 2025" becomes the date
    )
    text = (doc.text or "").strip() if isinstance(doc, Document) else ""
    # trafilatura falls back to nav links on pages without an article
    if not isinstance(doc, Document) or len(text.split()) < MIN_HTML_WORDS:
        raise BadArticle("no article text found in the HTML")
    title = doc.title or path.stem.replace("-", " ")
    first, _, rest = text.partition("\n")
    record = {
        "title": title,
        "body": rest if first.strip() == title.strip() else text,  # the <h1> headline is not body text
        "source": doc.hostname or doc.sitename,
        "url": doc.url,
        "published_at": doc.date,
    }
    return _article(path, record, str(path))


def _load_json(path: Path, text: str) -> Iterator[Article | LoadError]:
    if path.suffix.lower() == ".jsonl":
        numbered = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        for n, line in numbered:
            origin = f"{path}:{n}"
            try:
                yield _article(path, json.loads(line), origin)
            except json.JSONDecodeError as exc:
                yield LoadError(origin, f"invalid JSON: {exc.msg} (column {exc.colno})")
            except BadArticle as exc:
                yield LoadError(origin, str(exc))
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield LoadError(f"{path}:{exc.lineno}", f"invalid JSON: {exc.msg} (column {exc.colno})")
        return
    for i, record in enumerate(data if isinstance(data, list) else [data]):
        origin = f"{path}[{i}]" if isinstance(data, list) else str(path)
        try:
            yield _article(path, record, origin)
        except BadArticle as exc:
            yield LoadError(origin, str(exc))


def _article(path: Path, record: object, origin: str) -> Article:
    if not isinstance(record, dict):
        raise BadArticle(f"expected an object with title and body, got {type(record).__name__}")
    title = normalise_title(str(record.get("title") or ""))
    body = normalise_text(str(record.get("body") or ""))
    if not title:
        raise BadArticle("article has no title")
    if not body:
        raise BadArticle(f"article {title!r} has no body text")
    return Article(
        id=str(record["id"]) if record.get("id") else None,
        title=title,
        body=body,
        source=source_key(str(record.get("source") or record.get("url") or "")),
        url=str(record["url"]) if record.get("url") else None,
        published_at=_parse_date(record.get("published_at"), origin),
        origin=origin,
    )


def _parse_date(value: object, origin: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return dateparser.parse(str(value))
    except (ValueError, OverflowError) as exc:
        raise BadArticle(f"unreadable published_at {value!r}") from exc
