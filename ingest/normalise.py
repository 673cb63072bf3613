"""Clean loaded text so the same story reads (and hashes) the same whatever page it came from."""

import re
import unicodedata
from urllib.parse import unquote

# Page furniture that scrapers and copy-paste leave at the edges of an article.
FURNITURE = {
    "post comment", "comments", "leave a comment", "share", "share this article", "advertisement",
    "skip to content", "read more", "subscribe", "sign up", "print", "email",
}
_PERCENT_ESCAPE = re.compile(r"%(?:2[0-9A-F]|3[A-F])")
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    # Some scraped bodies arrive URL-escaped ("nation%27s"); unescape only when that is clearly the case.
    if len(_PERCENT_ESCAPE.findall(text)) >= 3:
        text = unquote(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    while lines and (not lines[-1] or lines[-1].casefold().rstrip(".:!") in FURNITURE):
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def normalise_title(title: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFC", title)).strip()
