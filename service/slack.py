"""Slack adapter: @mentions, DMs and /ask answered in threads by the same answer function as the HTTP API."""

import html
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import FastAPI, Request, Response
from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse, Respond
from slack_bolt.adapter.fastapi import SlackRequestHandler
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from newsqa.errors import UsageError
from newsqa.service.schemas import ChatRequest, ChatResponse, Citation, Turn
from newsqa.settings import Settings

log = logging.getLogger(__name__)

Answer = Callable[[ChatRequest], ChatResponse]
Post = Callable[..., Any]

SECTION_LIMIT = 3_000  # Slack: section / context text; the message's `text` (40k) is this same string
BLOCK_LIMIT = 50  # Slack: blocks per message
TITLE_LIMIT = 200
QUOTE_LIMIT = 500  # keeps each source block compact
QUESTION_EVENT = "newsqa_question"  # metadata on /ask parents: the bot posts them, but the user asked them
_PERSON_SUBTYPES = frozenset({"thread_broadcast", "file_share"})  # subtypes that are still a person asking

APOLOGY = "Sorry, I couldn't answer that just now: the answering service failed. Please try again shortly."
USAGE = "Ask me about the news: mention me with a question, DM me, or use `/ask <question>`."


class SeenEvents:
    """Bounded TTL set of event ids, so a redelivered event is answered at most once per process."""

    def __init__(self, ttl_s: float = 3600.0, max_size: int = 10_000) -> None:
        self._ttl_s, self._max_size = ttl_s, max_size
        self._seen: OrderedDict[str, float] = OrderedDict()  # insertion order == time order
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            while self._seen and (
                len(self._seen) >= self._max_size or next(iter(self._seen.values())) < now - self._ttl_s
            ):
                self._seen.popitem(last=False)
            if event_id in self._seen:
                return False
            self._seen[event_id] = now
            return True


def should_answer(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """The one gate: only new messages written by a person (not us, other bots, edits, joins, deletes)."""
    return (
        not event.get("bot_id")
        and event.get("user") not in (None, bot_user_id)
        and event.get("subtype") in (None, *_PERSON_SUBTYPES)
    )


def render_answer(response: ChatResponse) -> dict[str, Any]:
    """chat.postMessage arguments: the answer with its [n] markers, then one compact block per source."""
    # A refusal's wording comes from the answer path (prompts/refusal.txt), so every adapter says the same.
    text = _fit(_escape(response.answer), SECTION_LIMIT)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if response.standalone_question:  # shows how a follow-up was understood
        blocks.append(_context(f"Searched for: {_fit(_escape(response.standalone_question), QUOTE_LIMIT)}"))
    sources = [] if response.refused else [_source_block(c) for c in response.citations]
    room = BLOCK_LIMIT - len(blocks)
    if len(sources) > room:
        sources = sources[: room - 1] + [_context(f"…and {len(sources) - room + 1} more sources")]
    return {"text": text, "blocks": blocks + sources, "unfurl_links": False, "unfurl_media": False}


def build_slack_app(settings: Settings, answer: Answer) -> App:
    """The bolt app: requests are acked at once and answered afterwards in bolt's worker threads."""
    if not (settings.slack_bot_token and settings.slack_signing_secret):
        raise UsageError("the Slack bot needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET")
    bolt = App(
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        client=WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url),
        token_verification_enabled=False,  # auth.test waits for the first request, so the API boots offline
    )
    seen = SeenEvents()

    @bolt.middleware
    def drop_redeliveries(body: dict[str, Any], request: BoltRequest, next: Callable[[], None]) -> Any:
        # Slack retries when it got no 200 within 3 s. We ack at once, so a retry almost surely means the
        # first delivery got in (to another worker, or before a restart): a missed retry beats a double post.
        event_id = body.get("event_id")
        if request.headers.get("x-slack-retry-num") or (event_id and not seen.first_time(event_id)):
            return BoltResponse(status=200, body="")
        return next()

    @bolt.event("app_mention")
    def on_mention(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        _answer_message(event, context, client, answer, settings)

    @bolt.event("message")
    def on_message(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        if event.get("channel_type") == "im":  # channel messages reach us as app_mention: don't answer twice
            _answer_message(event, context, client, answer, settings)

    @bolt.command("/ask")
    def on_ask(
        ack: Ack, command: dict[str, Any], context: BoltContext, client: WebClient, respond: Respond
    ) -> None:
        question = _plain(command.get("text", ""), context.bot_user_id)
        if not question:
            ack(USAGE)
            return
        ack()  # within Slack's 3 s; the question is then posted and answered in its thread
        try:
            parent = client.chat_postMessage(
                channel=command["channel_id"],
                text=f"<@{command['user_id']}> asked: {_escape(question)}",
                metadata={"event_type": QUESTION_EVENT, "event_payload": {"question": question}},
            )
            post: Post = partial(client.chat_postMessage, channel=parent["channel"], thread_ts=parent["ts"])
        except SlackApiError as e:  # e.g. a private channel the bot isn't in: answer the asker privately
            log.info("/ask: cannot post in %s (%s), replying via response_url", command["channel_id"], e)
            post = respond
        _answer_into(post, answer, lambda: ChatRequest(question=question[: settings.max_question_chars]))

    return bolt


def mount_slack(api: FastAPI, bolt: App) -> None:
    """Serve Events API and /ask at POST /slack/events; bolt checks signatures (forged or stale: 401)."""
    handler = SlackRequestHandler(bolt)

    @api.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)


def run_socket_mode(settings: Settings, answer: Answer) -> None:
    """Serve Slack over an outbound websocket (no public URL needed); blocks until interrupted."""
    if not settings.slack_app_token:
        raise UsageError("Socket Mode needs SLACK_APP_TOKEN (an xapp- token with connections:write)")
    SocketModeHandler(build_slack_app(settings, answer), settings.slack_app_token.get_secret_value()).start()


def _answer_message(
    event: dict[str, Any], context: BoltContext, client: WebClient, answer: Answer, settings: Settings
) -> None:
    if not should_answer(event, context.bot_user_id):
        return
    channel, ts = event["channel"], event["ts"]
    post = partial(client.chat_postMessage, channel=channel, thread_ts=event.get("thread_ts") or ts)
    question = _plain(event.get("text", ""), context.bot_user_id)
    if not question:
        post(text=USAGE)
        return

    def request() -> ChatRequest:
        in_thread = "thread_ts" in event
        history = (
            _thread_history(client, context, channel, event["thread_ts"], ts, settings.history_turns)
            if in_thread else []
        )
        return ChatRequest(question=question[: settings.max_question_chars], history=history)

    _answer_into(post, answer, request)


def _answer_into(post: Post, answer: Answer, request: Callable[[], ChatRequest]) -> None:
    """Post the rendered answer; on any failure (LLM down, timeout, Slack error) log it and apologise."""
    try:
        post(**render_answer(answer(request())))
    except Exception:
        log.exception("answering a Slack question failed")
        post(text=APOLOGY)


def _thread_history(
    client: WebClient, context: BoltContext, channel: str, thread_ts: str, until_ts: str, keep: int
) -> list[Turn]:
    """The last `keep` turns of the thread before `until_ts`: ours are the assistant's, the rest the user's."""
    page = client.conversations_replies(channel=channel, ts=thread_ts, limit=200, include_all_metadata=True)
    turns = []
    for message in page["messages"]:
        if message["ts"] == until_ts:
            break
        mine = message.get("user") == context.bot_user_id or (
            context.bot_id is not None and message.get("bot_id") == context.bot_id
        )
        metadata = message.get("metadata") or {}
        if mine and metadata.get("event_type") == QUESTION_EVENT:
            turns.append(Turn(role="user", content=metadata["event_payload"]["question"]))
        elif content := _plain(message.get("text", ""), context.bot_user_id):
            turns.append(Turn(role="assistant" if mine else "user", content=content))
    return turns[-keep:] if keep else []  # only what the answer path uses


def _plain(text: str, bot_user_id: str | None) -> str:
    """Slack text to a plain question: drop our <@BOT> mention and undo Slack's &amp; &lt; &gt; escaping."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    return " ".join(html.unescape(text).split())


def _escape(text: str) -> str:
    """Slack mrkdwn treats & < > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(text: str, limit: int) -> str:
    """Cut escaped text to `limit` chars with an ellipsis, never in the middle of an &entity;."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: max(limit - 1, 0)]) + "…"


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def _source_block(c: Citation) -> dict[str, Any]:
    label = _fit(_escape(f"[{c.n}] {c.title}"), TITLE_LIMIT)
    head = f"*<{c.url}|{label}>*" if c.url else f"*{label}*"
    date = (c.published_at or "")[:10]  # ISO timestamp -> its date
    meta = " · ".join(_escape(part) for part in (c.source, date) if part)
    line = f"{head}  {meta}".rstrip()
    quote = _fit(_escape(" ".join(c.quote.split())), min(QUOTE_LIMIT, SECTION_LIMIT - len(line) - 2))
    return _context(f"{line}\n>{quote}")
