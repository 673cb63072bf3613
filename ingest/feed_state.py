"""What the feed refresher remembers between runs, in one small JSON file under the data dir: each feed's
validators (ETag, Last-Modified) for conditional GETs, and which stored article each item became (its guid or
link → article key, with the item's `updated` stamp), so a stored story is skipped before its page is fetched
even when its canonical url differs from the feed's link. The store stays the authority: an item whose
article is no longer stored is fetched again."""

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
    items: dict[str, dict[str, str | None]] = field(default_factory=dict)  # identity → {"key", "updated"}

    @classmethod
    def load(cls, data_dir: Path) -> "FeedState":
        path = data_dir / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, data["validators"], data["items"])
        except FileNotFoundError:
            return cls(path)
        except (ValueError, KeyError, TypeError):  # a damaged file costs one full round, nothing more
            log.warning("%s is unreadable; every feed will be fetched in full once", path)
            return cls(path)

    def conditional_headers(self, feed_url: str) -> dict[str, str]:
        return dict(self.validators.get(feed_url, {}))

    def remember_validators(self, feed_url: str, headers: httpx.Headers) -> None:
        sent = {"If-None-Match": headers.get("etag"), "If-Modified-Since": headers.get("last-modified")}
        self.validators[feed_url] = {name: value for name, value in sent.items() if value}

    def stored_as(self, identity: str) -> str | None:
        """The article key this item was stored under, if it was."""
        known = self.items.get(identity)
        return known["key"] if known else None

    def edited_since(self, identity: str, updated: str | None) -> bool:
        """The feed dates this item later than the version that was stored: the story was edited."""
        known = self.items.get(identity)
        return known is not None and known["updated"] != updated

    def remember_item(self, identity: str, key: str, updated: str | None) -> None:
        self.items[identity] = {"key": key, "updated": updated}

    def save(self, stored: Mapping[str, object]) -> None:
        """Atomically (a reader sees the old file or the new one), keeping only items whose article is stored."""
        self.items = {i: known for i, known in self.items.items() if known["key"] in stored}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=".feeds-state", delete=False,
                                         encoding="utf-8") as tmp:
            json.dump({"validators": self.validators, "items": self.items}, tmp, indent=1)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, self.path)
