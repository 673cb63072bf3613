"""Web pages and feed items → Articles, through the HTML loader's extraction and checks.

An article from the web is known by its canonical url (the same story reached through two feeds is one
article) and its source is that url's outlet, so it passes a source filter as the site it was fetched from.
A page's self-declared canonical url is trusted only on the host it was fetched from: any page may claim to
be another outlet's story. Likewise a full-text feed item, for which no page is fetched, is its link's outlet
only when the feed speaks for that host (its own, or one the feeds file lists); else it is the feed's."""

from collections.abc import Collection

from courlan import normalize_url

from newsqa.ingest.feeds import FeedItem
from newsqa.ingest.fetch import Fetched
from newsqa.ingest.loaders import extract_html, make_article
from newsqa.settings import Settings
from newsqa.store.models import Article, source_key


def page_article(page: Fetched, settings: Settings, item: FeedItem | None = None,
                 outlet: str | None = None) -> Article:
    """The article on a fetched page; what the feed item says (title, date, author) wins over what the page's
    markup suggests. BadArticle when the page holds no article."""
    record = extract_html(page.body)
    claimed = record["url"]
    url = normalize_url(claimed if claimed and source_key(claimed) == source_key(page.url) else page.url,
                        strict=True)
    return make_article({
        **record,
        "title": (item and item.title) or record["title"],
        "published_at": (item and item.published_at) or record["published_at"],
        "author": (item and item.author) or record["author"],
        "site_name": outlet or record["site_name"],
        "url": url,
        "source": url,
    }, url, settings)


def item_text(item: FeedItem, settings: Settings) -> str | None:
    """The item's own text when it is the whole story (long enough to stand without its page), else None."""
    if not item.content_html:
        return None
    try:
        text = extract_html(f"<html><body><article>{item.content_html}</article></body></html>")["body"] or ""
    except ValueError:  # too short to be an article
        return None
    return text if len(text.split()) >= settings.feed_full_text_words else None


def item_article(item: FeedItem, text: str, settings: Settings, feed_url: str, hosts: Collection[str],
                 outlet: str | None = None) -> Article:
    """An article from a feed item that carries its full text: no page fetched. `hosts`: the other sites the
    feed speaks for."""
    vouched = {source_key(feed_url), *map(source_key, hosts)}
    return make_article({
        "title": item.title, "body": text, "published_at": item.published_at, "author": item.author,
        "site_name": outlet, "url": item.link, "source": item.link if source_key(item.link) in vouched else feed_url,
    }, item.link, settings)
