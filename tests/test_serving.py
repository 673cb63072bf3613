"""Issue 10: a service a team can expose. Real uvicorn on 127.0.0.1 where concurrency matters; the chat model
is a slow fake that, like the local model, stops between tokens once its question's deadline has passed."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers import AgreeingChatModel, make_settings, running_uvicorn
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from newsqa.service.answering import deadline
from newsqa.service.answering.answer import Answerer
from newsqa.service.api.app import create_app
from newsqa.settings import Settings

WHO = "Who killed al-Rufayi?"
WHO_ANSWER = "Iraqi intelligence"


class SlowModel(AgreeingChatModel):
    """Takes `seconds` per reply, checking its question's deadline every 20 ms as the local model does per token."""

    seconds: float = 0.0

    def _call(self, *args, **kwargs) -> str:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            if (current := deadline.current()) is not None:
                current.check()
            time.sleep(0.02)
        return super()._call(*args, **kwargs)


def seed_with(seed_settings: Settings, **overrides) -> Settings:
    return make_settings(seed_settings.data_dir, **overrides)


def answerer(settings: Settings, seconds: float = 0.0) -> Answerer:
    return Answerer.from_settings(settings, chat_model=SlowModel(responses=[WHO_ANSWER], seconds=seconds))


@contextmanager
def client(settings: Settings, seconds: float = 0.0) -> Iterator[TestClient]:
    with TestClient(create_app(settings, answerer(settings, seconds))) as test_client:
        yield test_client


@contextmanager
def live(settings: Settings, seconds: float = 0.0) -> Iterator[tuple[str, object]]:
    """(base URL, app) of a real uvicorn on a free port."""

    app = create_app(settings, answerer(settings, seconds))
    with running_uvicorn(app) as url:
        yield url, app


def in_flight(app) -> int:
    return app.state.service.admission.in_flight


def wait_until(condition, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.02)


# --- bounded model work ---------------------------------------------------------------------------------

def test_past_the_queue_depth_a_question_is_a_503_with_retry_after_and_health_still_answers(seed_settings):
    with live(seed_with(seed_settings, queue_depth=0), seconds=2.0) as (url, app):
        first: list[httpx.Response] = []
        worker = threading.Thread(target=lambda: first.append(httpx.post(f"{url}/v1/chat", json={"question": WHO},
                                                                           timeout=30)))
        worker.start()
        wait_until(lambda: in_flight(app) == 1)
        with httpx.Client(base_url=url, timeout=30) as http:
            second = http.post("/v1/chat", json={"question": WHO})
            started = time.perf_counter()
            health = http.get("/healthz")
            health_ms = (time.perf_counter() - started) * 1000
        worker.join()
    assert second.status_code == 503 and int(second.headers["Retry-After"]) >= 1
    assert "try again" in second.json()["detail"]
    assert health.status_code == 200 and health_ms < 100
    assert first[0].status_code == 200 and WHO_ANSWER in first[0].json()["answer"]


def test_past_the_deadline_a_question_is_a_504_and_its_generation_stops(seed_settings):
    with live(seed_with(seed_settings, answer_deadline_s=0.5), seconds=30.0) as (url, app):
        started = time.perf_counter()
        response = httpx.post(f"{url}/v1/chat", json={"question": WHO}, timeout=30)
        took = time.perf_counter() - started
        wait_until(lambda: in_flight(app) == 0, timeout_s=2.0)  # the model stopped: the slot is free again
    assert response.status_code == 504 and took < 3
    assert response.json()["detail"] == "no answer within 0.5 s; try again or ask a shorter question"


def test_with_a_model_server_a_504_stops_the_questions_model_calls_and_frees_its_slot(seed_settings, openai_stub):
    """Each call to the server may take only the time the question has left, and none starts after that."""

    settings = seed_with(seed_settings, llm_provider="openai", llm_base_url=f"{openai_stub.url}/v1",
                         answer_deadline_s=1.0, queue_depth=0)
    openai_stub.answers[WHO] = WHO_ANSWER
    openai_stub.delay = 6.0  # a server that takes longer than the question may
    app = create_app(settings, Answerer.from_settings(settings))
    with running_uvicorn(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        late = http.post("/v1/chat", json={"question": WHO})
        wait_until(lambda: in_flight(app) == 0, timeout_s=3.0)
        calls = len(openai_stub.requests)
        openai_stub.delay = 0.0
        next_question = http.post("/v1/chat", json={"question": WHO})
    assert late.status_code == 504 and calls == 1
    assert next_question.status_code == 200 and WHO_ANSWER in next_question.json()["answer"]


def test_a_client_that_disconnects_frees_its_slot(seed_settings):
    with live(seed_with(seed_settings, queue_depth=0), seconds=60.0) as (url, app):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/chat", json={"question": WHO}, timeout=0.5)
        wait_until(lambda: in_flight(app) == 0, timeout_s=5.0)


# --- input limits -----------------------------------------------------------------------------------------

LIMITS = {"max_question_chars": 40, "max_turn_chars": 30, "max_history_turns": 2, "max_choices": 3,
          "max_choice_chars": 10, "max_sources": 1}


@pytest.mark.parametrize(("body", "loc"), [
    ({"question": "x" * 41}, ["body", "question"]),
    ({"question": WHO, "history": [{"role": "user", "content": "hi"}] * 3}, ["body", "history"]),
    ({"question": WHO, "history": [{"role": "user", "content": "y" * 31}]}, ["body", "history", 0, "content"]),
    ({"question": WHO, "choices": ["a", "b", "c", "d"]}, ["body", "choices"]),
    ({"question": WHO, "choices": ["a", "b" * 11]}, ["body", "choices", 1]),
    ({"question": WHO, "filters": {"sources": ["a.com", "b.com"]}}, ["body", "filters", "sources"]),
])
def test_a_field_over_its_limit_is_a_422_naming_it(seed_settings, body, loc):
    with client(seed_with(seed_settings, **LIMITS)) as test_client:
        response = test_client.post("/v1/chat", json=body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == loc and "at most" in error["msg"]


def test_a_body_over_the_limit_is_a_413_whether_or_not_it_declares_its_length(seed_settings):
    big = json.dumps({"question": WHO, "history": [{"role": "user", "content": "z" * 3000}]}).encode()
    with client(seed_with(seed_settings, max_body_kb=2)) as test_client:
        declared = test_client.post("/v1/chat", content=big, headers={"content-type": "application/json"})
        streamed = test_client.post("/v1/chat", content=iter([big[:1000], big[1000:]]),
                                    headers={"content-type": "application/json"})
        fine = test_client.post("/v1/chat", json={"question": WHO})
    assert declared.status_code == 413 and streamed.status_code == 413
    assert "larger than 2 KB" in declared.json()["detail"]
    assert fine.status_code == 200


def test_long_history_is_trimmed_oldest_first_to_fit_the_models_context(seed_settings, openai_stub):
    settings = seed_with(seed_settings, llm_provider="openai", llm_base_url=f"{openai_stub.url}/v1", llm_ctx=1200,
                         max_question_chars=300)  # a 2000-character question would not fit: refused at start-up
    openai_stub.replies.extend(["Who killed al-Rufayi?", WHO_ANSWER])
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "w" * 1900}
               for i in range(6)]
    history[-1]["content"] = "latest turn about al-Rufayi"
    with TestClient(create_app(settings, Answerer.from_settings(settings))) as test_client:
        response = test_client.post("/v1/chat", json={"question": "who killed him?", "history": history})
    assert response.status_code == 200
    rewrite = openai_stub.requests[0]["messages"]
    sent = sum(len(m["content"].encode()) for m in rewrite)
    assert sent <= settings.llm_ctx - settings.llm_max_tokens  # bytes bound tokens from above
    assert "latest turn about al-Rufayi" in rewrite[-1]["content"] and "turn 0" not in rewrite[-1]["content"]


# --- keys, rate limits, CORS ------------------------------------------------------------------------------

def test_with_api_keys_set_every_route_but_health_and_slack_needs_one(seed_settings):
    with client(seed_with(seed_settings, api_keys="k-one,k-two")) as test_client:
        without = test_client.post("/v1/chat", json={"question": WHO})
        wrong = test_client.post("/v1/chat", json={"question": WHO}, headers={"X-API-Key": "k-three"})
        bearer = test_client.post("/v1/chat", json={"question": WHO}, headers={"Authorization": "Bearer k-two"})
        header = test_client.post("/v1/chat", json={"question": WHO}, headers={"X-API-Key": "k-one"})
        docs, schema, metrics = (test_client.get(p) for p in ("/docs", "/openapi.json", "/metrics"))
        health, ready = test_client.get("/healthz"), test_client.get("/readyz")
    assert without.status_code == wrong.status_code == 401 and "API key" in without.json()["detail"]
    assert docs.status_code == schema.status_code == metrics.status_code == 401
    assert bearer.status_code == header.status_code == 200
    assert health.status_code == 200 and ready.status_code in (200, 503)


def test_past_the_rate_limit_a_caller_gets_429_with_retry_after_and_others_are_unaffected(seed_settings):
    with client(seed_with(seed_settings, api_keys="alice,bob", rate_limit="2/minute")) as test_client:
        alice = [test_client.post("/v1/chat", json={"question": WHO}, headers={"X-API-Key": "alice"})
                 for _ in range(3)]
        bob = test_client.post("/v1/chat", json={"question": WHO}, headers={"X-API-Key": "bob"})
        health = [test_client.get("/healthz") for _ in range(5)]
    assert [r.status_code for r in alice] == [200, 200, 429]
    assert 1 <= int(alice[2].headers["Retry-After"]) <= 60
    assert bob.status_code == 200 and all(h.status_code == 200 for h in health)


def statuses(url: str, headers: list[dict[str, str]]) -> list[int]:
    """The status of GET /openapi.json (guarded, and cheap) with each of `headers` in turn, over real HTTP."""
    with httpx.Client(base_url=url, timeout=30) as http:
        return [http.get("/openapi.json", headers=h).status_code for h in headers]


def test_without_keys_a_made_up_key_per_request_does_not_dodge_the_rate_limit(seed_settings):
    with live(seed_with(seed_settings, rate_limit="2/minute")) as (url, _):
        assert statuses(url, [{"X-API-Key": f"random-{n}"} for n in range(3)]) == [200, 200, 429]


def test_with_keys_a_client_guessing_them_is_throttled_and_a_keyed_caller_is_not(seed_settings):
    with live(seed_with(seed_settings, api_keys="alice", rate_limit="2/minute")) as (url, _):
        guesses = statuses(url, [{"X-API-Key": f"guess-{n}"} for n in range(3)] + [{}])
        alice = statuses(url, [{"X-API-Key": "alice"}])
    assert guesses == [401, 401, 429, 429] and alice == [200]


def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(seed_settings):
    def via(*hops: str) -> dict[str, str]:
        return {"X-Forwarded-For": ", ".join(hops)}

    with live(seed_with(seed_settings, rate_limit="2/minute")) as (url, _):  # no proxy trusted: header ignored
        untrusted = statuses(url, [via("203.0.113.1"), via("203.0.113.2"), via("203.0.113.3")])
    with live(seed_with(seed_settings, rate_limit="2/minute", trusted_proxies="10.0.0.0/8,127.0.0.1")) as (url, _):
        # each client behind the proxy is its own caller; what a client writes left of the proxies' entries is
        # not believed, and a chain of trusted proxies is walked from the right
        one = statuses(url, [via("203.0.113.5"), via("198.51.100.9, 203.0.113.5", "10.1.2.3"), via("203.0.113.5")])
        other = statuses(url, [via("203.0.113.6")])
    assert untrusted == [200, 200, 429]
    assert one == [200, 200, 429] and other == [200]


def test_cors_is_off_unless_origins_are_configured(seed_settings):
    preflight = {"Origin": "https://desk.example", "Access-Control-Request-Method": "POST"}
    with client(seed_settings) as test_client:
        closed = test_client.options("/v1/chat", headers=preflight)
    with client(seed_with(seed_settings, cors_origins="https://desk.example")) as test_client:
        opened = test_client.options("/v1/chat", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    assert opened.headers["access-control-allow-origin"] == "https://desk.example"


# --- request ids, metrics, streaming ----------------------------------------------------------------------

def test_a_request_id_is_echoed_when_tame_and_made_up_otherwise(seed_settings):
    with client(seed_settings) as test_client:
        echoed = test_client.get("/healthz", headers={"X-Request-ID": "desk-42.a"})
        replaced = test_client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert echoed.headers["X-Request-ID"] == "desk-42.a"
    assert "<" not in replaced.headers["X-Request-ID"] and len(replaced.headers["X-Request-ID"]) == 16


def test_metrics_count_answers_tokens_and_stage_latency(seed_settings):
    with client(seed_settings) as test_client:
        assert test_client.post("/v1/chat", json={"question": WHO}).status_code == 200
        metrics = test_client.get("/metrics").text
    assert 'newsqa_answers_total{outcome="answered"}' in metrics
    assert 'newsqa_stage_seconds_count{stage="retrieve"}' in metrics
    assert "newsqa_questions_in_flight 0.0" in metrics
    assert 'http_requests_total{handler="/v1/chat"' in metrics


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and name:
            events.append((name, json.loads(line.split(":", 1)[1])))
    return events


def test_the_stream_reports_stages_then_the_same_answer_as_chat_then_done(seed_settings, openai_stub):
    settings = seed_with(seed_settings, llm_provider="openai", llm_base_url=f"{openai_stub.url}/v1")
    openai_stub.replies.extend([WHO_ANSWER, "Yes", WHO_ANSWER, "Yes"])  # each answer, then the verifier's verdict
    with TestClient(create_app(settings, Answerer.from_settings(settings))) as test_client:
        plain = test_client.post("/v1/chat", json={"question": WHO}).json()
        with test_client.stream("POST", "/v1/chat/stream", json={"question": WHO}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
    names = [name for name, _ in events]
    stages = [data["stage"] for name, data in events if name == "stage"]
    assert stages[:3] == ["retrieving", "retrieving", "generating"] and "verifying" in stages
    assert names.index("token") > names.index("stage") and names[-2:] == ["answer", "done"]
    assert "".join(d["text"] for n, d in events if n == "token") == WHO_ANSWER
    answer = dict(events[-2][1])
    for body in (answer, plain):
        body.pop("timings")
    assert answer == plain


def test_a_stream_for_an_invalid_request_is_a_422_before_any_event(seed_settings):
    with client(seed_with(seed_settings, max_question_chars=10)) as test_client:
        with test_client.stream("POST", "/v1/chat/stream", json={"question": WHO}) as response:
            response.read()
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "question"]


def test_a_stream_past_the_queue_depth_is_a_503_with_retry_after_before_any_event(seed_settings):
    with live(seed_with(seed_settings, queue_depth=0), seconds=2.0) as (url, app):
        first = threading.Thread(target=httpx.post, args=(f"{url}/v1/chat",),
                                 kwargs={"json": {"question": WHO}, "timeout": 30})
        first.start()
        wait_until(lambda: in_flight(app) == 1)
        with httpx.stream("POST", f"{url}/v1/chat/stream", json={"question": WHO}, timeout=30) as response:
            response.read()
        first.join()
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
    assert "try again" in response.json()["detail"]


def test_a_stream_that_fails_after_it_opened_ends_with_an_error_event(seed_settings):
    with client(seed_with(seed_settings, answer_deadline_s=0.5), seconds=30.0) as test_client:
        with test_client.stream("POST", "/v1/chat/stream", json={"question": WHO}) as response:
            events = sse_events(response)
    assert response.status_code == 200 and [name for name, _ in events][-2:] == ["error", "done"]
    assert events[-2][1]["status"] == 504


def test_with_the_fallback_set_a_dead_model_still_gets_the_best_passages_marked_as_no_answer(seed_settings):
    from newsqa.errors import ModelUnavailable

    class DeadModel(FakeListChatModel):
        def _call(self, *args, **kwargs) -> str:
            raise ModelUnavailable("the model server did not answer")

    for fallback, expected in ((False, 503), (True, 200)):
        settings = seed_with(seed_settings, fallback_passages=fallback)
        app = create_app(settings, Answerer.from_settings(settings, chat_model=DeadModel(responses=["x"])))
        with TestClient(app) as test_client:
            response = test_client.post("/v1/chat", json={"question": WHO})
        assert response.status_code == expected
    body = response.json()
    assert body["refused"] is True and body["refusal_reason"] == "model_unavailable"
    assert "not an answer" in body["answer"] and body["citations"] and body["related"] == []
    assert any("al-Rufayi" in c["quote"] for c in body["citations"])
