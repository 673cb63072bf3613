"""Clean loaded text so the same story reads (and hashes) the same whatever page it came from."""

import re
import unicodedata
from urllib.parse import unquote

# Whole lines of page furniture that scrapers and copy-paste leave anywhere in a body; the model once answered
# a question with "How relevant is this ad to you?". Each pattern must match the entire line (trailing ".:!?"
# aside) and is worded so that no sentence of news matches it.
FURNITURE = [re.compile(pattern, re.IGNORECASE) for pattern in (
    # ad slots, and the feedback form that comes with a news site's video ads
    r"advertisement|advert|skip advert(isement)?|sponsored( content)?|ad feedback|story continues below( advert.*)?",
    r"(\d+\. )?how relevant is this ad to you|video player was slow to load content .* other issues",
    r"video ad feedback .{0,200}",
    # newsletter banners: a short line about signing up that addresses the reader, or starts by asking
    r"(?=.*\b(sign up|subscribe)\b)(?=(sign up|subscribe)\b"
    r"|.*\b(sign up here|subscribe here|newsletter here|sign up now|subscribe now|your inbox|sign up for free)\b"
    r"|.*\b(our|free)( \S+){0,3} newsletter\b).{0,300}",
    # cookie banners
    r"(we|this (web)?site|our (web)?site) uses? cookies\b.{0,300}|(accept|reject|manage)( all)? cookies"
    r"|cookie (settings|preferences|policy)",
    # share, comment and navigation links
    r"(share|tweet|email|print|save)( this)?( article| story| page| post)?"
    r"|share (on|via|to) (facebook|twitter|x|whatsapp|linkedin|reddit|email)",
    r"((leave|post|add|view|show|read|load|see) )?(a |all |the )?(\d+ )?comments?( \(\d+\))?",
    r"copy link|skip to (main )?content|read more",
    # links to other stories: "Related: <headline>", and "More:<headline>" glued as only a scraped link is
    r"(related|read more|see also) ?:.{1,200}|more:\S.{0,200}",
)]
_PERCENT_ESCAPE = re.compile(r"%(?:2[0-9A-F]|3[A-F])")
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")
_TITLE_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # control characters, line and paragraph breaks


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    # Some scraped bodies arrive URL-escaped ("nation%27s"); unescape only when that is clearly the case.
    if len(_PERCENT_ESCAPE.findall(text)) >= 3:
        text = unquote(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    kept = "\n".join(line for line in lines if not is_furniture(line))
    return re.sub(r"\n{3,}", "\n\n", kept).strip("\n")


def is_furniture(line: str) -> bool:
    return any(pattern.fullmatch(line.rstrip(".:!?")) for pattern in FURNITURE)


def normalise_title(title: str) -> str:
    """One line: a headline's line breaks and control characters would let it write lines of its own
    ("Question: ...") into the prompts it is quoted in."""
    return _SPACES.sub(" ", _TITLE_BREAKS.sub(" ", unicodedata.normalize("NFC", title))).strip()
