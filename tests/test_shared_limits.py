"""Issue 25: rate limits kept in a real `redis-server` (NEWSQA_REDIS_URL) are one budget for every worker, and
a Redis that dies mid-run gives the behaviour NEWSQA_RATE_LIMIT_FAIL names (open: let through, logged and
counted; closed: 503 with Retry-After), never a 500."""

import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from fixtures.processes import copy_of, newsqa_env, per_worker, serving
from helpers import make_settings

from newsqa.processes import NotUp, redis_server
from newsqa.service.api.app import create_app

try:
    with redis_server():
        pass
except NotUp as exc:  # make test installs it (as root with apt)
    pytest.skip(str(exc), allow_module_level=True)

WHO = "Who killed al-Rufayi?"
WHO_ANSWER = "Iraqi intelligence"


def kill(redis) -> None:
    redis.process.send_signal(signal.SIGKILL)
    redis.process.wait()


def test_two_workers_share_one_budget_and_a_dead_redis_lets_requests_through(seed_settings, openai_stub, tmp_path):
    data = copy_of(seed_settings.data_dir, tmp_path / "data")
    openai_stub.answers[WHO] = WHO_ANSWER
    openai_stub.delay = 0.3  # answers overlap, so both workers take some
    with redis_server() as redis:
        env = newsqa_env(data, openai_stub.url, rate_limit="10/minute", redis_url=f"redis://127.0.0.1:{redis.port}/0",
                         embed_threads="1")
        with serving(env, "--workers", "2") as url:
            def ask(_: int) -> int:  # a connection of its own each time: the workers share the socket
                return httpx.post(f"{url}/v1/chat", json={"question": WHO}, timeout=120).status_code

            with ThreadPoolExecutor(4) as pool:
                statuses = sorted(pool.map(ask, range(20)))
            answered = per_worker(data, "newsqa_answers_total")
            kill(redis)
            unchecked = [ask(0) for _ in range(3)]
            metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert statuses == [200] * 10 + [429] * 10  # one budget: with one per worker, up to twice 10
    assert len([n for n in answered.values() if n]) == 2, answered  # and both workers answered some
    assert unchecked == [200] * 3  # over the budget, but nothing can count it: open, as by default
    assert "newsqa_rate_limit_unchecked_total 4.0" in metrics  # the three questions and the scrape itself


def test_failing_closed_answers_503_with_retry_after_while_redis_is_down(seed_settings, fake_answerer):
    with redis_server() as redis:
        settings = make_settings(seed_settings.data_dir, rate_limit="3/minute", rate_limit_fail="closed",
                                 redis_url=f"redis://127.0.0.1:{redis.port}/0")
        with TestClient(create_app(settings, fake_answerer(settings))) as client:
            assert [client.get("/v1/sources").status_code for _ in range(4)] == [200, 200, 200, 429]
            kill(redis)
            refused = client.get("/v1/sources")
            health = client.get("/healthz")  # probes never wait on Redis
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
    assert "rate limits cannot be checked" in refused.json()["detail"]
    assert health.status_code == 200
