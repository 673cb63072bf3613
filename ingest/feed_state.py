"""What the feed refresher remembers between runs, in one small JSON file under the data dir: each feed's
validators (ETag, Last-Modified) for conditional GETs, and which stored article each item became (per feed, its
guid or link → article key, with the item's `updated` stamp), so a stored story is skipped before its page is
fetched even when its canonical url differs from the feed's link. The store stays the authority: an item whose
article is no longer stored is fetched again.

A guid is only unique within its feed: another feed may use the same one, by chance or to shadow a story, so
items are remembered per feed url. Files written before that hold their items unscoped ("items"); each such
record is claimed by the first feed that lists its guid, as the feed that wrote it most likely is (feeds are
refreshed in the order they are listed), then kept under that feed."""

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger(__name__)
STATE_FILE = "feeds-state.json"


@dataclass
class FeedState:
    path: Path
    validators: dict[str, dict[str, str]] = field(default_factory=dict)  # feed url → request headers to send
    # feed url → identity → {"key", "updated"}
    feed_items: dict[str, dict[str, dict[str, str | None]]] = field(default_factory=dict)
    unclaimed: dict[str, dict[str, str | None]] = field(default_factory=dict)  # identity → record, from old files

    @classmethod
    def load(cls, data_dir: Path) -> "FeedState":
        path = data_dir / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, data["validators"], data.get("feed_items", {}), data.get("items", {}))
        except FileNotFoundError:
            return cls(path)
        except (ValueError, KeyError, TypeError, AttributeError):  # a damaged file costs one full round
            log.warning("%s is unreadable; every feed will be fetched in full once", path)
            return cls(path)

    def conditional_headers(self, feed_url: str) -> dict[str, str]:
        return dict(self.validators.get(feed_url, {}))

    def remember_validators(self, feed_url: str, headers: httpx.Headers) -> None:
        sent = {"If-None-Match": headers.get("etag"), "If-Modified-Since": headers.get("last-modified")}
        self.validators[feed_url] = {name: value for name, value in sent.items() if value}

    def stored_as(self, feed_url: str, identity: str) -> str | None:
        """The article key this feed's item was stored under, if it was."""
        known = self._known(feed_url, identity)
        return known["key"] if known else None

    def edited_since(self, feed_url: str, identity: str, updated: str | None) -> bool:
        """The feed dates this item later than the version that was stored: the story was edited."""
        known = self._known(feed_url, identity)
        return known is not None and known["updated"] != updated

    def remember_item(self, feed_url: str, identity: str, key: str, updated: str | None) -> None:
        self.feed_items.setdefault(feed_url, {})[identity] = {"key": key, "updated": updated}

    def _known(self, feed_url: str, identity: str) -> dict[str, str | None] | None:
        items = self.feed_items.setdefault(feed_url, {})
        if identity not in items and identity in self.unclaimed:
            items[identity] = self.unclaimed.pop(identity)
        return items.get(identity)

    def save(self, stored: Mapping[str, object]) -> None:
        """Atomically (a reader sees the old file or the new one), keeping only items whose article is stored."""
        self.feed_items = {feed: kept for feed, items in self.feed_items.items()
                           if (kept := {i: known for i, known in items.items() if known["key"] in stored})}
        self.unclaimed = {i: known for i, known in self.unclaimed.items() if known["key"] in stored}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=".feeds-state", delete=False,
                                         encoding="utf-8") as tmp:
            json.dump({"validators": self.validators, "feed_items": self.feed_items, "items": self.unclaimed}, tmp,
                      indent=1)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, self.path)
