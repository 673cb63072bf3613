"""One refresh of feeds (and the `--url` pages): fetch what changed, turn it into Articles, store them through
the pipeline (writer lock, all or nothing per article). A failure is reported with its url and reason and
stops nothing but its own feed or item, a bug met in one item's content included."""

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from newsqa.errors import NewsqaError
from newsqa.ingest.feed_state import FeedState
from newsqa.ingest.feeds import BadFeed, FeedConfig, FeedItem, parse_feed
from newsqa.ingest.fetch import FetchFailed, PoliteClient
from newsqa.ingest.loaders import BadArticle, LoadError
from newsqa.ingest.pages import item_article, item_text, page_article
from newsqa.ingest.pipeline import IngestSummary, ingest_items
from newsqa.settings import Settings
from newsqa.store.index import StoredArticle, open_index
from newsqa.store.models import Article, url_key

log = logging.getLogger(__name__)

@dataclass
class FeedReport:
    url: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    not_modified: bool = False  # the server answered 304 to the validators: nothing fetched, nothing written
    stopped: bool = False  # a stop was asked for before every item was seen
    unread: int = 0  # items past the first NEWSQA_FEED_MAX_ITEMS
    errors: list[str] = field(default_factory=list)  # "url: reason", the feed's own or its items'

    def line(self) -> str:
        if self.not_modified:
            return f"feed {self.url}: not modified"
        counts = f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, {self.failed} failed"
        if self.unread:
            counts += f", {self.unread} more not read (NEWSQA_FEED_MAX_ITEMS)"
        return f"feed {self.url}: {counts}{' (stopped)' if self.stopped else ''}"

    def fail(self, error: str) -> None:
        self.failed += 1
        self.errors.append(error)

    def count(self, summary: IngestSummary) -> None:
        self.new += summary.added
        self.updated += summary.updated
        self.unchanged += summary.unchanged + summary.duplicates
        self.failed += summary.failed
        self.errors += summary.errors


def refresh_feeds(feeds: list[FeedConfig], settings: Settings,
                  stop: threading.Event | None = None) -> Iterator[FeedReport]:
    """Each feed's report in turn, as soon as it is done (its failures are in it); `stop` set ends the
    round before the next feed (and, inside a feed, between items)."""
    stop = stop or threading.Event()
    state = FeedState.load(settings.data_dir)
    with PoliteClient(settings) as client:  # robots.txt and host pacing are kept for one round
        for feed in feeds:
            if stop.is_set():
                return
            yield refresh_feed(feed, client, state, settings, stop)


def refresh_feed(feed: FeedConfig, client: PoliteClient, state: FeedState, settings: Settings,
                 stop: threading.Event) -> FeedReport:
    try:
        return _refresh_feed(feed, client, state, settings, stop)
    except Exception as exc:  # a bug met in this feed fails it, not the feeds after it nor the watch
        log.exception("feed %s: failed unexpectedly", feed.url)
        report = FeedReport(str(feed.url))
        report.fail(f"{feed.url}: failed unexpectedly ({type(exc).__name__}: {exc})")
        return report


def _refresh_feed(feed: FeedConfig, client: PoliteClient, state: FeedState, settings: Settings,
                  stop: threading.Event) -> FeedReport:
    url = str(feed.url)
    report = FeedReport(url)
    try:  # the operator subscribed to this feed: robots.txt governs crawling its pages, not reading it
        fetched = client.get(url, headers=state.conditional_headers(url), obey_robots=False)
        if fetched.status == 304:
            report.not_modified = True
            return report
        parsed = parse_feed(fetched.body, fetched.url, settings.feed_max_items)
    except FetchFailed as exc:
        report.fail(str(exc))
        return report
    except BadFeed as exc:
        report.fail(f"{url}: {exc}")
        return report
    for error in parsed.errors:
        report.fail(error)
    report.unread = parsed.unread
    outlet = feed.source or parsed.title
    try:
        stored = open_index(settings, fresh=True).articles()  # fresh: another process may have removed some
        found: list[tuple[FeedItem, Article]] = []
        for item in parsed.items:
            if stop.is_set():
                report.stopped = True
                break
            if _already_stored(url, item, state, stored):
                report.unchanged += 1
                continue
            try:
                text = item_text(item, settings)
                article = (item_article(item, text, settings, url, feed.hosts, outlet) if text
                           else page_article(client.get(item.link, html_only=True), settings, item, outlet))
            except FetchFailed as exc:
                report.fail(str(exc))
                continue
            except BadArticle as exc:
                report.fail(f"{item.link}: {exc}")
                continue
            except Exception as exc:  # a bug met in this item's content: the item fails, the feed goes on
                log.exception("%s: failed unexpectedly", item.link)
                report.fail(f"{item.link}: failed unexpectedly ({type(exc).__name__}: {exc})")
                continue
            if article.key in stored and not state.edited_since(url, item.identity, item.updated):
                report.unchanged += 1  # its page names a canonical url already stored: met through another link
                state.remember_item(url, item.identity, article.key, item.updated)
                continue
            found.append((item, article))
        if found:
            report.count(ingest_items([article for _, article in found], settings, progress=False))
            stored = open_index(settings).articles()
    except NewsqaError as exc:  # the store is locked by another writer, or unavailable: this feed waits
        report.fail(f"{url}: {exc}")
        return report
    for item, article in found:
        state.remember_item(url, item.identity, article.key, item.updated)
    if not (report.failed or report.stopped):  # else the next round would get a 304 and never retry them
        state.remember_validators(url, fetched.headers)
    state.save(stored)
    return report


def _already_stored(feed_url: str, item: FeedItem, state: FeedState, stored: dict[str, StoredArticle]) -> bool:
    """Stored and not edited since: by what the feed's item became last time, or by its link (the same story
    met first through another feed)."""
    if state.edited_since(feed_url, item.identity, item.updated):
        return False
    return state.stored_as(feed_url, item.identity) in stored or url_key(item.link) in stored


def ingest_urls(urls: list[str], settings: Settings) -> IngestSummary:
    """Fetch each page (robots.txt obeyed) and store its article; an unchanged one writes nothing."""
    with PoliteClient(settings) as client:
        items = [_page_or_error(url, client, settings) for url in urls]  # fetched before the writer lock is taken
    return ingest_items(items, settings, progress=False)


def _page_or_error(url: str, client: PoliteClient, settings: Settings) -> Article | LoadError:
    try:
        return page_article(client.get(url, html_only=True), settings)
    except FetchFailed as exc:
        return LoadError(exc.url, exc.reason)
    except BadArticle as exc:
        return LoadError(url, str(exc))
