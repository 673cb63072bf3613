"""The Slack bot end to end: signed requests through FastAPI, replies checked at a stub Slack Web API."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers import SEED_SOURCE, SEED_TITLE, AgreeingChatModel, running_uvicorn
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from newsqa.errors import DeadlineExceeded, ModelUnavailable, Overloaded
from newsqa.service.answering.answer import Answerer
from newsqa.service.answering.schemas import ChatRequest, ChatResponse, Citation, Turn
from newsqa.service.api.app import create_app
from newsqa.service.slack.app import (
    APOLOGY,
    BUSY,
    QUESTION_EVENT,
    TIMED_OUT,
    UNAVAILABLE,
    USAGE,
    build_slack_app,
    mount_slack,
    should_answer,
)
from newsqa.service.slack.format import render_answer
from newsqa.settings import Settings

SECRET = "test-signing-secret"
QUESTION = "what did the bank do?"
ANSWER = "It raised rates by half a point [1]."
QUIET_S = 0.5  # how long a test waits to be sure that no second reply comes
CITATION = Citation(
    n=1,
    article_id="a1",
    chunk_id="a1-0",
    title="Bank raises rates",
    source="example.com",
    url="https://example.com/rates",
    published_at="2024-03-01T10:00:00Z",
    quote="The central bank raised its main rate by half a point on Friday.",
)


class FakeAnswer:
    """The answer function's boundary: records requests, then cites one source or fails like the service."""

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []
        self.error: Exception | None = None  # raised instead of answering (a dead LLM, a full queue)
        self.hold = threading.Event()  # answers wait while it is clear (a slow model)
        self.hold.set()
        self._asked = threading.Condition()

    def __call__(self, request: ChatRequest) -> ChatResponse:
        with self._asked:
            self.requests.append(request)
            self._asked.notify_all()
        self.hold.wait(timeout=10)
        if self.error:
            raise self.error
        return ChatResponse(answer=ANSWER, refused=False, citations=[CITATION])

    def wait_asked(self, count: int, timeout: float = 5.0) -> bool:
        """True once `count` questions have reached the answer function."""
        with self._asked:
            return self._asked.wait_for(lambda: len(self.requests) >= count, timeout)


@pytest.fixture
def answer() -> Iterator[FakeAnswer]:
    fake = FakeAnswer()
    yield fake
    fake.hold.set()  # lets answers a test kept waiting finish


def bot_settings(slack_stub: Any, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        slack_api_url=slack_stub.api_url,
        **overrides,
    )


def slack_api(settings: Settings, answer: FakeAnswer) -> FastAPI:
    """The Slack route mounted as the service mounts it, beside an async route that needs the event loop."""
    api = FastAPI()
    mount_slack(api, build_slack_app(settings, answer))

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api


@pytest.fixture
def client(slack_stub: Any, answer: FakeAnswer) -> Iterator[TestClient]:
    with TestClient(slack_api(bot_settings(slack_stub), answer)) as c:
        yield c


def send(
    client: TestClient | httpx.Client,
    body: str,
    *,
    form: bool = False,
    age_s: int = 0,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST to /slack/events signed the way Slack signs (v0=HMAC-SHA256 of "v0:{timestamp}:{body}")."""
    ts = str(int(time.time()) - age_s)
    signed = {
        "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }
    return client.post("/slack/events", content=body, headers={**signed, **(headers or {})})


def ask(client: TestClient | httpx.Client, slack_stub: Any, text: str) -> Any:
    body = {"command": "/ask", "text": text, "channel_id": "C1", "user_id": "U1", "team_id": "T1"}
    return send(client, urlencode({**body, "response_url": slack_stub.webhook_url, "trigger_id": "t1"}), form=True)


def event_body(event: dict[str, Any], event_id: str = "Ev1") -> str:
    return json.dumps(
        {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": event_id, "event": event}
    )


def mention(text: str, ts: str = "100.000001", **extra: str) -> dict[str, Any]:
    return {"type": "app_mention", "user": "U1", "channel": "C1", "text": text, "ts": ts, **extra}


def dm(text: str, ts: str = "300.000001", **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": "D1",
        "user": "U1",
        "text": text,
        "ts": ts,
        **extra,
    }


def block_texts(message: dict[str, Any]) -> list[str]:
    texts = []
    for block in message["blocks"]:
        texts += [block["text"]["text"]] if "text" in block else [e["text"] for e in block["elements"]]
    return texts


def shown(message: dict[str, Any]) -> str:
    """Everything a Slack user reads in a posted message's blocks."""
    return "\n".join(block_texts(message))


def assert_cited_answer(message: dict[str, Any]) -> None:
    text = shown(message)
    assert ANSWER in text
    assert "<https://example.com/rates|[1] Bank raises rates>" in text
    assert "example.com · 2024-03-01" in text
    assert ">The central bank raised its main rate by half a point on Friday." in text


def test_mention_gets_exactly_one_threaded_reply_with_sources(
    client: TestClient, slack_stub: Any, answer: FakeAnswer
) -> None:
    assert send(client, event_body(mention(f"<@{slack_stub.bot_user_id}> {QUESTION}"))).status_code == 200

    [reply] = slack_stub.wait_for("chat.postMessage")
    assert (reply["channel"], reply["thread_ts"]) == ("C1", "100.000001")
    assert_cited_answer(reply)
    assert [(r.question, r.history) for r in answer.requests] == [(QUESTION, [])]
    assert len(slack_stub.wait_for("chat.postMessage", count=2, timeout=QUIET_S)) == 1


def test_retries_and_repeated_event_ids_never_answer_twice(
    client: TestClient, slack_stub: Any, answer: FakeAnswer
) -> None:
    body = event_body(mention(f"<@{slack_stub.bot_user_id}> {QUESTION}"), event_id="Ev1")
    assert send(client, body).status_code == 200
    assert slack_stub.wait_for("chat.postMessage")

    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert send(client, body, headers=retry).status_code == 200
    assert send(client, body).status_code == 200  # same event_id, no retry header
    other = event_body(mention("<@UBOT> other?", ts="100.000009"), event_id="Ev2")
    assert send(client, other, headers=retry).status_code == 200  # a retry whose first delivery we never saw

    assert len(slack_stub.wait_for("chat.postMessage", count=2, timeout=QUIET_S)) == 1
    assert len(answer.requests) == 1


def test_forged_signature_is_rejected(client: TestClient, slack_stub: Any) -> None:
    response = send(client, event_body(mention("<@UBOT> hi")), secret="not-the-secret")
    assert response.status_code == 401
    assert slack_stub.calls_to("chat.postMessage") == []


def test_stale_timestamp_is_rejected(client: TestClient) -> None:
    assert send(client, event_body(mention("<@UBOT> hi")), age_s=6 * 60).status_code == 401


def test_url_verification_echoes_the_challenge(client: TestClient) -> None:
    response = send(client, json.dumps({"type": "url_verification", "token": "t", "challenge": "c-123"}))
    assert response.status_code == 200
    assert response.json() == {"challenge": "c-123"}


def test_ask_command_acks_then_answers_under_the_posted_question(
    client: TestClient, slack_stub: Any, answer: FakeAnswer
) -> None:
    started = time.monotonic()
    assert ask(client, slack_stub, QUESTION).status_code == 200
    assert time.monotonic() - started < 3

    question, reply = slack_stub.wait_for("chat.postMessage", count=2)
    assert question["channel"] == "C1" and "thread_ts" not in question
    assert question["text"] == f"<@U1> asked: {QUESTION}"
    assert reply["thread_ts"] == "1700000000.000001"  # the stub's ts for the question it was sent first
    assert_cited_answer(reply)
    assert answer.requests[0].question == QUESTION


def test_ask_command_in_a_channel_the_bot_cannot_post_in_answers_privately(
    client: TestClient, slack_stub: Any
) -> None:
    slack_stub.errors["chat.postMessage"] = "not_in_channel"
    assert ask(client, slack_stub, QUESTION).status_code == 200

    [private] = slack_stub.wait_for("webhook")
    assert_cited_answer(private)


def test_ask_command_without_a_question_shows_usage(client: TestClient, slack_stub: Any) -> None:
    response = ask(client, slack_stub, "  ")
    assert response.status_code == 200 and USAGE in response.text
    assert slack_stub.calls_to("chat.postMessage") == []


@pytest.mark.parametrize("asked_with", ["mention", "/ask"])
def test_follow_up_in_a_thread_carries_the_thread_as_history(
    client: TestClient, slack_stub: Any, answer: FakeAnswer, asked_with: str
) -> None:
    parent = {"user": "U1", "text": f"<@{slack_stub.bot_user_id}> {QUESTION}"}
    if asked_with == "/ask":  # the question a /ask posted: the bot wrote it, the user asked it
        parent = {
            "user": slack_stub.bot_user_id,
            "bot_id": slack_stub.bot_id,
            "text": f"<@U1> asked: {QUESTION}",
            "metadata": {"event_type": QUESTION_EVENT, "event_payload": {"question": QUESTION}},
        }
    slack_stub.threads["100.000001"] = [
        {"ts": "100.000001", **parent},
        {"ts": "100.000002", "user": slack_stub.bot_user_id, "bot_id": slack_stub.bot_id,
         "text": "It raised rates [1]."},
        {"ts": "100.000003", "user": "U1", "text": f"<@{slack_stub.bot_user_id}> and who announced it?"},
        {"ts": "100.000004", "user": "U2", "text": "a later message"},
    ]
    follow_up = mention(f"<@{slack_stub.bot_user_id}> and who announced it?", ts="100.000003", thread_ts="100.000001")
    assert send(client, event_body(follow_up)).status_code == 200

    [reply] = slack_stub.wait_for("chat.postMessage")
    assert reply["thread_ts"] == "100.000001"
    assert [(c["channel"], c["ts"]) for c in slack_stub.calls_to("conversations.replies")] == [("C1", "100.000001")]
    [request] = answer.requests
    assert request.question == "and who announced it?"
    assert request.history == [
        Turn(role="user", content=QUESTION),
        Turn(role="assistant", content="It raised rates [1]."),
    ]


def test_direct_message_gets_a_threaded_reply(client: TestClient, slack_stub: Any) -> None:
    assert send(client, event_body(dm(QUESTION))).status_code == 200

    [reply] = slack_stub.wait_for("chat.postMessage")
    assert (reply["channel"], reply["thread_ts"]) == ("D1", "300.000001")
    assert_cited_answer(reply)


def test_own_and_other_bots_messages_subtypes_and_channel_chatter_are_ignored(
    client: TestClient, slack_stub: Any, answer: FakeAnswer
) -> None:
    ignored = [
        dm("It raised rates [1].", user=slack_stub.bot_user_id, bot_id=slack_stub.bot_id),
        dm("beep", user="U9", bot_id="B9"),
        dm("edited", subtype="message_changed"),
        dm("deleted", subtype="message_deleted"),
        mention(f"<@{slack_stub.bot_user_id}> beep?", user="U9", bot_id="B9"),
        {**dm("chatter in a channel"), "channel_type": "channel", "channel": "C1"},
    ]
    for i, event in enumerate(ignored):
        assert send(client, event_body(event, event_id=f"EvIgnored{i}")).status_code == 200
    asked = dm(QUESTION, ts="300.000099")
    assert send(client, event_body(asked, event_id="EvAsk")).status_code == 200

    replies = slack_stub.wait_for("chat.postMessage", count=2, timeout=QUIET_S)
    assert [r["thread_ts"] for r in replies] == ["300.000099"]
    assert len(answer.requests) == 1


@pytest.mark.parametrize(
    ("event", "answered"),
    [
        ({"user": "U1"}, True),
        (
            {"user": "U1", "subtype": "thread_broadcast"},
            True,
        ),  # "also send to channel" is still a person asking
        ({"user": "U1", "subtype": "message_changed"}, False),
        ({"user": "UBOT"}, False),
        ({"user": "U9", "bot_id": "B9"}, False),
        ({"subtype": "message_deleted"}, False),
    ],
)
def test_should_answer_only_fresh_messages_from_people(event: dict[str, Any], answered: bool) -> None:
    assert should_answer(event, "UBOT") is answered


def test_answer_failure_posts_an_apology_and_the_bot_keeps_answering(
    client: TestClient, slack_stub: Any, answer: FakeAnswer, caplog: pytest.LogCaptureFixture
) -> None:
    answer.error = TimeoutError("LLM server did not answer")
    with caplog.at_level(logging.ERROR, logger="newsqa.service.slack.app"):
        assert send(client, event_body(mention(f"<@UBOT> {QUESTION}"))).status_code == 200
        [apology] = slack_stub.wait_for("chat.postMessage")
    assert (apology["thread_ts"], apology["text"]) == ("100.000001", APOLOGY)
    assert "LLM server did not answer" in caplog.text

    answer.error = None
    again = mention("<@UBOT> and now?", ts="100.000005")
    assert send(client, event_body(again, event_id="Ev2")).status_code == 200
    assert_cited_answer(slack_stub.wait_for("chat.postMessage", count=2)[1])


def test_bare_mention_gets_usage_without_answering(
    client: TestClient, slack_stub: Any, answer: FakeAnswer
) -> None:
    assert send(client, event_body(mention(f"<@{slack_stub.bot_user_id}>"))).status_code == 200
    [reply] = slack_stub.wait_for("chat.postMessage")
    assert (reply["thread_ts"], reply["text"]) == ("100.000001", USAGE)
    assert answer.requests == []


def test_rendering_stays_within_slack_limits() -> None:
    long = CITATION.model_copy(update={"title": "T&" * 500, "quote": "q<" * 5000})
    message = render_answer(ChatResponse(answer="&" * 4000, refused=False, citations=[long] * 80))

    assert message["text"] == "&amp;" * 599 + "…"  # cut before 3000 chars, never inside an &entity;
    assert len(message["blocks"]) == 50
    assert block_texts(message)[-1] == "…and 32 more sources"
    assert all(0 < len(text) <= 3000 for text in block_texts(message))


def test_a_refusal_says_no_answer_was_confirmed() -> None:
    refusal = "I found no answer in the indexed sources that I could confirm."
    message = render_answer(ChatResponse(answer=refusal, refused=True, citations=[CITATION]))
    assert message["text"] == refusal
    assert shown(message) == refusal  # no sources block under a refusal


def test_a_refusal_shows_the_closest_passages_unnumbered_under_it() -> None:
    refusal = "I found no answer in the indexed sources that I could confirm."
    other = CITATION.model_copy(update={"n": 2, "title": "Bank keeps rates", "url": None, "source": None})
    message = render_answer(ChatResponse(answer=refusal, refused=True, refusal_reason="not_confirmed",
                                         related=[CITATION, other]))
    assert message["text"] == refusal  # the notification says no answer; the passages are underneath
    assert block_texts(message)[1:] == [
        "*Closest passages* (none of them states an answer)",
        f"*<https://example.com/rates|Bank raises rates>*  example.com · 2024-03-01\n>{CITATION.quote}",
        f"*Bank keeps rates*  2024-03-01\n>{CITATION.quote}",
    ]


def test_the_model_down_fallback_shows_its_passages() -> None:
    not_an_answer = "The answering model is unavailable right now, so this is not an answer: these are the passages."
    fallback = ChatResponse(
        answer=not_an_answer, refused=True, refusal_reason="model_unavailable", citations=[CITATION]
    )
    message = render_answer(fallback)
    assert message["text"] == not_an_answer
    assert "<https://example.com/rates|[1] Bank raises rates>" in shown(message)


def test_the_service_answers_a_mention_from_the_indexed_seed_before_it_stops(slack_stub: Any, seed_settings) -> None:
    """Through service.api with Slack settings: the real answer path (only the LLM faked, and slow) cites the
    seed, and stopping the service lets that answer finish."""
    slack_settings = seed_settings.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-test"),
            "slack_signing_secret": SecretStr(SECRET),
            "slack_api_url": slack_stub.api_url,
        }
    )
    slow_model = AgreeingChatModel(responses=["at least 1,383 [2]"], sleep=2.0)
    service = create_app(slack_settings, Answerer.from_settings(slack_settings, chat_model=slow_model))
    with TestClient(service) as service_client:
        body = event_body(mention(f"<@{slack_stub.bot_user_id}> How many civilians were killed in coastal Syria?"))
        assert send(service_client, body).status_code == 200
        assert slack_stub.calls_to("chat.postMessage") == []  # acked; the model is still answering
    # the service stopped (lifespan shutdown) only after the answer in progress was posted
    [reply] = slack_stub.calls_to("chat.postMessage")
    text = shown(reply)
    assert reply["thread_ts"] == "100.000001"
    assert text.startswith("at least 1,383 [1]")
    assert f"[1] {SEED_TITLE}"[:60] in text.replace("&amp;", "&").replace("’", "'") and SEED_SOURCE in text
    assert "1,383 civilians" in text


def test_a_question_the_seed_does_not_answer_is_refused_in_slack_with_the_closest_passage(
        slack_stub: Any, seed_settings) -> None:
    slack_settings = seed_settings.model_copy(update={
        "slack_bot_token": SecretStr("xoxb-test"), "slack_signing_secret": SecretStr(SECRET),
        "slack_api_url": slack_stub.api_url})
    invents = AgreeingChatModel(responses=["Hezbollah", "none"])  # no passage says it, and nothing is chosen
    service = create_app(slack_settings, Answerer.from_settings(slack_settings, chat_model=invents))
    with TestClient(service) as service_client:
        body = event_body(mention(f"<@{slack_stub.bot_user_id}> Who said al-Rufayi had been killed?"))
        assert send(service_client, body).status_code == 200
        [reply] = slack_stub.wait_for("chat.postMessage")
    refusal, heading, passage = block_texts(reply)
    assert reply["text"] == refusal and "no answer" in refusal and "Hezbollah" not in shown(reply)
    assert heading == "*Closest passages* (none of them states an answer)"
    assert passage.replace("’", "'").startswith(f"*{SEED_TITLE}*  {SEED_SOURCE}")  # no url, no [n]
    assert "travelled to Baghdad" in passage  # the passage, cut to fit


def timed_get(http: httpx.Client, path: str) -> float:
    started = time.monotonic()
    assert http.get(path).status_code == 200
    return time.monotonic() - started


def test_a_slow_slack_request_never_holds_up_other_routes(slack_stub: Any, answer: FakeAnswer) -> None:
    """Real HTTP: while bolt waits on Slack (the first request's auth.test) and the model is slow, an async
    route of the same server still answers at once."""
    slack_stub.delays["auth.test"] = 2.0
    answer.hold.clear()
    api = slack_api(bot_settings(slack_stub), answer)
    with running_uvicorn(api) as url, httpx.Client(base_url=url, timeout=10) as http:
        statuses: list[int] = []
        first = threading.Thread(target=lambda: statuses.append(ask(http, slack_stub, QUESTION).status_code))
        first.start()
        assert slack_stub.wait_for("auth.test")
        assert timed_get(http, "/healthz") < 0.5
        assert first.is_alive()  # the Slack request was still being handled meanwhile
        first.join(timeout=10)
        assert statuses == [200]

        assert answer.wait_asked(1)  # now the answer is in progress
        assert timed_get(http, "/healthz") < 0.5
        answer.hold.set()
        assert_cited_answer(slack_stub.wait_for("chat.postMessage", count=2)[1])


def test_ask_is_acked_in_time_while_every_answer_worker_is_busy(slack_stub: Any, answer: FakeAnswer) -> None:
    workers = 5  # as many as bolt's own listener threads, which used to answer and so to delay acks
    answer.hold.clear()
    settings = bot_settings(slack_stub, slack_workers=workers)
    with running_uvicorn(slack_api(settings, answer)) as url, httpx.Client(base_url=url, timeout=10) as http:
        for i in range(workers):
            busy = mention(f"<@UBOT> question {i}?", ts=f"100.00001{i}")
            assert send(http, event_body(busy, event_id=f"EvBusy{i}")).status_code == 200
        assert answer.wait_asked(workers)

        started = time.monotonic()
        acked = ask(http, slack_stub, QUESTION)
        assert acked.status_code == 200 and time.monotonic() - started < 3  # Slack's limit

        answer.hold.set()
        replies = slack_stub.wait_for("chat.postMessage", count=workers + 2)
    assert f"<@U1> asked: {QUESTION}" in [r["text"] for r in replies]
    assert sum(ANSWER in shown(r) for r in replies if "blocks" in r) == workers + 1
    assert answer.requests[-1].question == QUESTION


@pytest.mark.parametrize(
    ("error", "told"),
    [
        (Overloaded(retry_after=7), BUSY.format(seconds=7)),
        (DeadlineExceeded(60), TIMED_OUT),
        (ModelUnavailable(), UNAVAILABLE),
    ],
)
def test_a_failed_answer_gets_an_apology_that_says_why(
    client: TestClient, slack_stub: Any, answer: FakeAnswer, error: Exception, told: str
) -> None:
    answer.error = error
    assert send(client, event_body(mention(f"<@UBOT> {QUESTION}"))).status_code == 200
    [apology] = slack_stub.wait_for("chat.postMessage")
    assert (apology["thread_ts"], apology["text"]) == ("100.000001", told)


def test_a_full_backlog_tells_the_asker_to_come_back_at_once(slack_stub: Any, answer: FakeAnswer) -> None:
    answer.hold.clear()
    settings = bot_settings(slack_stub, slack_workers=1, slack_backlog=1, answer_deadline_s=45)
    with TestClient(slack_api(settings, answer)) as client:
        assert send(client, event_body(mention("<@UBOT> q0?", ts="100.000000"), "Ev0")).status_code == 200
        assert answer.wait_asked(1)  # answering: off the backlog before the next arrives, however busy the machine
        assert send(client, event_body(mention("<@UBOT> q1?", ts="100.000001"), "Ev1")).status_code == 200  # waiting
        assert send(client, event_body(mention("<@UBOT> one more?", ts="100.000009"), "Ev9")).status_code == 200
        [busy] = slack_stub.wait_for("chat.postMessage")
        acked = ask(client, slack_stub, QUESTION)

    assert (busy["thread_ts"], busy["text"]) == ("100.000009", BUSY.format(seconds=45))
    assert acked.status_code == 200 and BUSY.format(seconds=45) in acked.text
    assert len(answer.requests) == 1


@pytest.mark.parametrize(
    ("url", "link"),
    [
        (
            "https://evil.example/a?x=1&y=<!channel>|*pwned*",
            "<https://evil.example/a?x=1&amp;y=&lt;!channel&gt;%7C*pwned*|[1] Bank raises rates>",
        ),
        ("javascript:alert(1)", None),
        ("https://evil.example/a b|<!here>", None),
        ("http://[x", None),  # urlsplit can't read it: shown as text, the answer still posted
    ],
)
def test_a_hostile_citation_url_cannot_inject_mentions_or_links(url: str, link: str | None) -> None:
    hostile = CITATION.model_copy(update={"url": url})
    text = shown(render_answer(ChatResponse(answer=ANSWER, refused=False, citations=[hostile])))
    assert "<!" not in text and "|*pwned*" not in text
    if link:
        assert f"*{link}*" in text and text.count("<") == 1  # the one link, its URL escaped
    else:  # not a web address: the title as plain text, no link at all
        assert "*[1] Bank raises rates*" in text and "<" not in text


def test_a_thread_longer_than_a_page_keeps_its_latest_turns(slack_stub: Any, answer: FakeAnswer) -> None:
    slack_stub.replies_page_size = 3
    bot = {"user": slack_stub.bot_user_id, "bot_id": slack_stub.bot_id}
    thread = [
        {"ts": f"100.00000{i}", **(bot if i % 2 else {"user": "U1"}), "text": f"turn {i} " + "x" * 50}
        for i in range(8)
    ]
    question = {"ts": "100.000008", "user": "U1", "text": "<@UBOT> and then?"}
    slack_stub.threads["100.000000"] = [*thread, question, {"ts": "100.000009", "user": "U2", "text": "later"}]
    settings = bot_settings(slack_stub, history_turns=4, max_turn_chars=10)
    with TestClient(slack_api(settings, answer)) as client:
        follow_up = mention("<@UBOT> and then?", ts="100.000008", thread_ts="100.000000")
        assert send(client, event_body(follow_up)).status_code == 200
        assert slack_stub.wait_for("chat.postMessage")

    [request] = answer.requests
    assert request.history == [
        Turn(role="user", content="turn 4 xxx"),
        Turn(role="assistant", content="turn 5 xxx"),
        Turn(role="user", content="turn 6 xxx"),
        Turn(role="assistant", content="turn 7 xxx"),
    ]
    pages = slack_stub.calls_to("conversations.replies")
    assert [p.get("cursor") for p in pages] == [None, "3", "6"]  # no page after the question's


SOCKET_MODE_BOT = Path(__file__).parent / "fixtures" / "socket_mode_bot.py"


@pytest.mark.parametrize(("answer_s", "grace_s", "answered"), [(5.0, 20, True), (60.0, 1, False)])
def test_sigterm_stops_socket_mode_letting_answers_in_progress_finish_within_the_grace_period(
    slack_stub: Any, socket_mode_stub: Any, answer_s: float, grace_s: int, answered: bool
) -> None:
    env = {
        **os.environ,  # PYTHONPATH too, so the child imports this code
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_APP_TOKEN": "xapp-test",
        "NEWSQA_SLACK_API_URL": slack_stub.api_url,
        "NEWSQA_SHUTDOWN_GRACE_S": str(grace_s),
    }
    bot = subprocess.Popen(
        [sys.executable, str(SOCKET_MODE_BOT), str(answer_s)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert socket_mode_stub.connected.wait(timeout=20)
        event = json.loads(event_body(mention(f"<@UBOT> {QUESTION}")))
        socket_mode_stub.send({"envelope_id": "env-1", "type": "events_api", "payload": event})
        assert socket_mode_stub.received.get(timeout=5)["envelope_id"] == "env-1"  # acked
        assert bot.stdout is not None and bot.stdout.readline().strip() == "answering"

        bot.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert bot.wait(timeout=grace_s + 10) == 0
        took = time.monotonic() - stopping
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()

    assert socket_mode_stub.closed.is_set()  # it hung up
    replies = [r["text"] for r in slack_stub.calls_to("chat.postMessage")]
    if answered:  # the answer in progress was posted before the process ended
        assert replies == [f"answered: {QUESTION}"] and took < grace_s
    else:  # a stuck answer doesn't hold the process past the grace period
        assert replies == [] and took < grace_s + 5  # closing the websocket takes a few seconds
