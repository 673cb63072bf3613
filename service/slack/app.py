"""Slack adapter: @mentions, DMs and /ask answered in threads by the same answer function as the HTTP API.

Acking never waits for answering: bolt's listeners only check a request and hand it to our own bounded
workers (bolt runs them before it replies, so the ack goes out as soon as they return), and the HTTP route
runs bolt's dispatch off the event loop, so a Slack request never delays another route."""

import logging
import math
import queue
import signal
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse, Respond
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from newsqa.errors import DeadlineExceeded, ModelUnavailable, NewsqaError, Overloaded, UsageError
from newsqa.service.answering.schemas import ChatRequest, ChatResponse, Turn
from newsqa.service.slack.format import escape, plain, render_answer
from newsqa.settings import Settings

log = logging.getLogger(__name__)

Answer = Callable[[ChatRequest], ChatResponse]
Post = Callable[..., Any]

QUESTION_EVENT = "newsqa_question"  # metadata on /ask parents: the bot posts them, but the user asked them
_PERSON_SUBTYPES = frozenset({"thread_broadcast", "file_share"})  # subtypes that are still a person asking
REPLIES_PAGE = 200  # conversations.replies page size; Slack advises at most 200
DISPATCH_THREADS = 4  # dispatch only checks, acks and enqueues (and calls auth.test once): a few threads do

APOLOGY = "Sorry, I couldn't answer that just now: the answering service failed. Please try again shortly."
BUSY = "Sorry, I'm answering too many questions right now. Please try again in {seconds} s."
TIMED_OUT = "Sorry, that took too long to answer, so I stopped. Please try again, or ask a shorter question."
UNAVAILABLE = "Sorry, the answering model is unavailable right now. Please try again later."
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


class AnswerWorkers:
    """`workers` threads answering from a backlog of at most `backlog` jobs. The threads are daemons, so an
    answer still running after the shutdown grace period can't hold the process up."""

    def __init__(self, workers: int, backlog: int) -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=backlog)
        self._unfinished = 0  # queued or running
        self._changed = threading.Condition()
        self._closed = False
        for i in range(workers):
            threading.Thread(target=self._work, daemon=True, name=f"slack-answer-{i}").start()

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue `job`; False when the backlog is full or the workers are closing."""
        with self._changed:
            if self._closed:
                return False
            try:
                self._jobs.put_nowait(job)
            except queue.Full:
                return False
            self._unfinished += 1
            return True

    def close(self, grace_s: float) -> int:
        """Take no more jobs; wait up to `grace_s` for those taken. Returns how many did not finish."""
        with self._changed:
            self._closed = True
            self._changed.wait_for(lambda: self._unfinished == 0, grace_s)
            return self._unfinished

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # a job handles its own failures; this is one posting its apology failing
                log.exception("a Slack answer job failed")
            finally:
                with self._changed:
                    self._unfinished -= 1
                    self._changed.notify_all()


@dataclass(frozen=True)
class SlackBot:
    app: App
    workers: AnswerWorkers

    def close(self, grace_s: float) -> None:
        """Stop taking questions; let those taken finish within `grace_s`."""
        if unfinished := self.workers.close(grace_s):
            log.warning("shutting down with %d Slack questions unanswered at the end of the grace period", unfinished)


def should_answer(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """The one gate: only new messages written by a person (not us, other bots, edits, joins, deletes)."""
    return (
        not event.get("bot_id")
        and event.get("user") not in (None, bot_user_id)
        and event.get("subtype") in (None, *_PERSON_SUBTYPES)
    )


def apology(error: Exception) -> str:
    """What the asker is told when answering failed: what they can do about it, never internals."""
    if isinstance(error, Overloaded):
        return BUSY.format(seconds=error.retry_after)
    if isinstance(error, DeadlineExceeded):
        return TIMED_OUT
    if isinstance(error, ModelUnavailable):
        return UNAVAILABLE
    return APOLOGY


def build_slack_app(settings: Settings, answer: Answer) -> SlackBot:
    """The bolt app and the workers its listeners hand questions to."""
    if not (settings.slack_bot_token and settings.slack_signing_secret):
        raise UsageError("the Slack bot needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET")
    bolt = App(
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        client=WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url),
        token_verification_enabled=False,  # auth.test waits for the first request, so the API boots offline
        process_before_response=True,  # our listeners only enqueue: run them first, no busy-wait for ack()
    )
    workers = AnswerWorkers(settings.slack_workers, settings.slack_backlog)
    # A full backlog drains within one answer deadline: every waiting question is answered or timed out by then.
    busy = apology(Overloaded(retry_after=math.ceil(settings.answer_deadline_s)))
    seen = SeenEvents()

    @bolt.middleware
    def drop_redeliveries(body: dict[str, Any], request: BoltRequest, next: Callable[[], None]) -> Any:
        # Slack retries when it got no 200 within 3 s. We ack at once, so a retry almost surely means the
        # first delivery got in (to another worker, or before a restart): a missed retry beats a double post.
        event_id = body.get("event_id")
        if request.headers.get("x-slack-retry-num") or (event_id and not seen.first_time(event_id)):
            return BoltResponse(status=200, body="")
        return next()

    def enqueue_message(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        if not should_answer(event, context.bot_user_id):
            return
        thread_ts = event.get("thread_ts") or event["ts"]
        post = partial(client.chat_postMessage, channel=event["channel"], thread_ts=thread_ts)
        if not workers.submit(partial(_answer_message, event, context, client, post, answer, settings)):
            post(text=busy)

    @bolt.event("app_mention")
    def on_mention(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        enqueue_message(event, context, client)

    @bolt.event("message")
    def on_message(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        if event.get("channel_type") == "im":  # channel messages reach us as app_mention: don't answer twice
            enqueue_message(event, context, client)

    @bolt.command("/ask")
    def on_ask(ack: Ack, command: dict[str, Any], context: BoltContext, client: WebClient, respond: Respond) -> None:
        question = plain(command.get("text", ""), context.bot_user_id)
        if not question:
            ack(USAGE)
        elif workers.submit(partial(_answer_command, question, command, client, respond, answer, settings)):
            ack()  # the question is then posted and answered in its thread
        else:
            ack(busy)  # shown to the asker only

    return SlackBot(bolt, workers)


def mount_slack(api: FastAPI, bot: SlackBot) -> None:
    """Serve Events API and /ask at POST /slack/events; bolt checks signatures (forged or stale: 401)."""
    dispatchers = anyio.CapacityLimiter(DISPATCH_THREADS)  # its own threads: busy API routes can't delay an ack

    @api.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        bolt_request = to_bolt_request(request, await request.body())
        bolt_response = await anyio.to_thread.run_sync(bot.app.dispatch, bolt_request, limiter=dispatchers)
        return to_starlette_response(bolt_response)


def run_socket_mode(settings: Settings, answer: Answer) -> None:
    """Serve Slack over an outbound websocket (no public URL needed) until SIGTERM or Ctrl-C; then take no
    more events and let the answers in progress finish within `shutdown_grace_s`."""
    if not settings.slack_app_token:
        raise UsageError("Socket Mode needs SLACK_APP_TOKEN (an xapp- token with connections:write)")
    bot = build_slack_app(settings, answer)
    handler = SocketModeHandler(bot.app, settings.slack_app_token.get_secret_value())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    handler.connect()
    log.info("Slack bot connected over Socket Mode")
    stop.wait()
    grace_ends = time.monotonic() + settings.shutdown_grace_s  # answers keep running while the socket closes
    log.info("stopping: no new Slack events; finishing answers in progress")
    handler.close()
    bot.close(max(grace_ends - time.monotonic(), 0))


def _answer_command(
    question: str, command: dict[str, Any], client: WebClient, respond: Respond, answer: Answer, settings: Settings
) -> None:
    try:
        parent = client.chat_postMessage(
            channel=command["channel_id"],
            text=f"<@{command['user_id']}> asked: {escape(question)}",
            metadata={"event_type": QUESTION_EVENT, "event_payload": {"question": question}},
        )
        post: Post = partial(client.chat_postMessage, channel=parent["channel"], thread_ts=parent["ts"])
    except SlackApiError as e:  # e.g. a private channel the bot isn't in: answer the asker privately
        log.info("/ask: cannot post in %s (%s), replying via response_url", command["channel_id"], e)
        post = respond
    _answer_into(post, answer, lambda: ChatRequest(question=question[: settings.max_question_chars]))


def _answer_message(
    event: dict[str, Any], context: BoltContext, client: WebClient, post: Post, answer: Answer, settings: Settings
) -> None:
    question = plain(event.get("text", ""), context.bot_user_id)
    if not question:
        post(text=USAGE)
        return

    def request() -> ChatRequest:
        history = (
            _thread_history(client, context, event["channel"], event["thread_ts"], event["ts"], settings)
            if "thread_ts" in event
            else []
        )
        return ChatRequest(question=question[: settings.max_question_chars], history=history)

    _answer_into(post, answer, request)


def _answer_into(post: Post, answer: Answer, request: Callable[[], ChatRequest]) -> None:
    """Post the rendered answer; on any failure (busy, timeout, model down, Slack error) log it and apologise."""
    try:
        post(**render_answer(answer(request())))
    except NewsqaError as e:  # the service said what went wrong: no traceback needed
        log.warning("a Slack question was not answered: %s", e)
        post(text=apology(e))
    except Exception as e:
        log.exception("answering a Slack question failed")
        post(text=apology(e))


def _thread_history(
    client: WebClient, context: BoltContext, channel: str, thread_ts: str, until_ts: str, settings: Settings
) -> list[Turn]:
    """The latest `history_turns` turns of the thread before `until_ts`, each cut to `max_turn_chars`: ours
    are the assistant's, the rest the user's. Pages run oldest first, so all pages up to `until_ts` are read."""
    if not settings.history_turns:
        return []
    turns: deque[Turn] = deque(maxlen=settings.history_turns)
    pages = client.conversations_replies(channel=channel, ts=thread_ts, limit=REPLIES_PAGE, include_all_metadata=True)
    for page in pages:  # slack_sdk follows response_metadata.next_cursor
        for message in page["messages"]:
            if message["ts"] == until_ts:
                return list(turns)
            if turn := _turn(message, context, settings.max_turn_chars):
                turns.append(turn)
    return list(turns)


def _turn(message: dict[str, Any], context: BoltContext, max_chars: int) -> Turn | None:
    mine = message.get("user") == context.bot_user_id or (
        context.bot_id is not None and message.get("bot_id") == context.bot_id
    )
    metadata = message.get("metadata") or {}
    if mine and metadata.get("event_type") == QUESTION_EVENT:
        return Turn(role="user", content=metadata["event_payload"]["question"][:max_chars])
    if content := plain(message.get("text", ""), context.bot_user_id):
        return Turn(role="assistant" if mine else "user", content=content[:max_chars])
    return None
