"""Slack mrkdwn in and out: a message's text to a plain question, an answer to chat.postMessage blocks."""

import html
import re
from typing import Any
from urllib.parse import urlsplit

from newsqa.service.answering.schemas import ChatResponse, Citation

SECTION_LIMIT = 3_000  # Slack: section / context text; the message's `text` (40k) is this same string
BLOCK_LIMIT = 50  # Slack: blocks per message
TITLE_LIMIT = 200
QUOTE_LIMIT = 500  # keeps each source block compact
_LINK_SCHEMES = frozenset({"http", "https"})  # anything else (javascript:, slack:, mailto:) is shown as text


def render_answer(response: ChatResponse) -> dict[str, Any]:
    """chat.postMessage arguments: the answer with its [n] markers, then one compact block per source (under a
    refusal, per passage nearest the question)."""
    # A refusal's wording comes from the answer path (prompts/refusal.txt), so every adapter says the same.
    text = _fit(escape(response.answer), SECTION_LIMIT - 2)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if response.standalone_question:  # shows how a follow-up was understood
        blocks.append(_context(f"Searched for: {_fit(escape(response.standalone_question), QUOTE_LIMIT)}"))
    # A refusal cites nothing, except the model-down fallback, whose passages are the whole message; other
    # refusals show the passages nearest the question, unnumbered (no [n] in the answer points at them)
    if not response.refused or response.refusal_reason == "model_unavailable":
        sources = [_source_block(c) for c in response.citations]
    elif response.related:
        sources = [_context("*Closest passages* (none of them states an answer)")]
        sources += [_source_block(c, numbered=False) for c in response.related]
    else:
        sources = []
    room = BLOCK_LIMIT - len(blocks)
    if len(sources) > room:
        sources = sources[: room - 1] + [_context(f"…and {len(sources) - room + 1} more sources")]
    return {"text": text, "blocks": blocks + sources, "unfurl_links": False, "unfurl_media": False}


def plain(text: str, bot_user_id: str | None) -> str:
    """Slack text to a plain question: drop our <@BOT> mention and undo Slack's &amp; &lt; &gt; escaping."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    return " ".join(html.unescape(text).split())


def escape(text: str) -> str:
    """Slack mrkdwn treats & < > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: str) -> str:
    """`<url|label>` for an http(s) URL, else the label alone. In the URL & < > are escaped and | (which
    would end it) percent-encoded, so an ingested URL can't inject <!channel>, a mention or formatting."""
    if not url or _scheme(url) not in _LINK_SCHEMES or not url.isprintable() or " " in url:
        return label
    return f"<{escape(url).replace('|', '%7C')}|{label}>"


def _scheme(url: str) -> str | None:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:  # "http://[x": a malformed stored url is shown as text, not a failed answer
        return None


def _fit(text: str, limit: int) -> str:
    """Cut escaped text to `limit` chars with an ellipsis, never in the middle of an &entity;."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: max(limit - 1, 0)]) + "…"


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def _source_block(c: Citation, numbered: bool = True) -> dict[str, Any]:
    title = f"[{c.n}] {c.title}" if numbered else c.title
    head = f"*{link(c.url, _fit(escape(title), TITLE_LIMIT))}*"
    date = (c.published_at or "")[:10]  # ISO timestamp -> its date
    meta = " · ".join(escape(part) for part in (c.source, date) if part)
    line = f"{head}  {meta}".rstrip()
    quote = _fit(escape(" ".join(c.quote.split())), min(QUOTE_LIMIT, SECTION_LIMIT - len(line) - 2))
    return _context(f"{line}\n>{quote}")
