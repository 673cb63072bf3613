"""Issue 25: rate limits kept in a real `redis-server` (NEWSQA_REDIS_URL) are one budget for every worker, and
a Redis that dies mid-run gives the behaviour NEWSQA_RATE_LIMIT_FAIL names (open: let through, logged and
counted; closed: 503 with Retry-After), never a 500."""

import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from fixtures.processes import copy_of, newsqa_env, serving
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
    """Two API processes behind one address, each asked in turn: the kernel spreads `--workers 2`'s connections as
    it likes (in CI once all to one worker), and a budget is shared only if both were asked."""
    openai_stub.answers[WHO] = WHO_ANSWER
    with redis_server() as redis:
        envs = [newsqa_env(copy_of(seed_settings.data_dir, tmp_path / name), openai_stub.url, rate_limit="10/minute",
                           redis_url=f"redis://127.0.0.1:{redis.port}/0", embed_threads="1") for name in ("a", "b")]
        with serving(envs[0]) as first, serving(envs[1]) as second:
            def ask(url: str) -> int:
                return httpx.post(f"{url}/v1/chat", json={"question": WHO}, timeout=120).status_code

            with ThreadPoolExecutor(4) as pool:
                statuses = list(pool.map(ask, [first, second] * 10))
            kill(redis)
            unchecked = [ask(second) for _ in range(3)]
            metrics = httpx.get(f"{second}/metrics", timeout=30).text
    assert sorted(statuses) == [200] * 10 + [429] * 10  # one budget: with one each, both would answer all 10
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
