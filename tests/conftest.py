"""Shared fixtures: real Chroma, the real embedder, the repo's own demo corpus; the LLM is the only thing
faked. Stub servers live in fixtures/stubs.py."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from newsqa.settings import Settings

pytest_plugins = ["fixtures.stubs"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "ingest" / "demo"
DEV_SET = REPO.parent / "shared" / "eval" / "realtimeqa-dev"  # external; only tests that need it may skip
# The demo corpus' Syria–Iraq story: the seed article, retold in the project's own words.
SEED_FILE = DEMO_DIR / "syria-iraq-foreign-minister-baghdad.txt"
SEED_TITLE = "Syria's Interim Foreign Minister Visits Baghdad as Iraq Reports Death of IS Leader"
SEED_SOURCE = "example-newswire.org"


@contextmanager
def running_uvicorn(app) -> Iterator[str]:
    """A real uvicorn serving `app` on a free port of 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app=app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive(), "uvicorn did not stop"


def newsqa_env(data_dir: Path, llm_url: str, **settings: str) -> dict[str, str]:
    """The environment of a newsqa process over `data_dir` with the OpenAI-compatible stub at `llm_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSQA_", "SLACK_"))}
    return {**env, "NEWSQA_DATA_DIR": str(data_dir), "NEWSQA_LLM_PROVIDER": "openai", "NEWSQA_LOG_LEVEL": "WARNING",
            "NEWSQA_LLM_BASE_URL": f"{llm_url}/v1", "NEWSQA_STORE_POLL_SECONDS": "0.2",
            **{f"NEWSQA_{k.upper()}": v for k, v in settings.items()}}


@contextmanager
def serving(env: dict[str, str], process: list[subprocess.Popen] | None = None) -> Iterator[str]:
    """`newsqa serve` in its own process; yields its base URL once it answers /healthz (and appends the
    process to `process`, for tests that signal it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a chatty server never blocks on it
        server = subprocess.Popen([sys.executable, "-m", "newsqa", "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=log, text=True)
        if process is not None:
            process.append(server)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            if server.poll() is not None:
                log.seek(0)
                raise AssertionError(f"newsqa serve exited: {log.read()}")
            yield url
        finally:
            server.terminate()
            server.wait(timeout=60)


def make_settings(data_dir: Path, **overrides) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **overrides)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory) -> Settings:
    """A data dir holding the ingested seed story alone; tests must not write to it."""
    from newsqa.ingest.pipeline import ingest_paths

    settings = make_settings(tmp_path_factory.mktemp("seed") / "data")
    summary = ingest_paths([SEED_FILE], settings, progress=False)
    assert summary.added == 1 and summary.chunks_written > 0
    return settings


@pytest.fixture
def fake_answerer() -> Callable:
    """fake_answerer(settings, *replies): the real answer path over a real index, with a chat model that
    replies `replies` in turn."""
    from newsqa.service.answer import Answerer

    def build(settings: Settings, *responses: str) -> Answerer:
        return Answerer.from_settings(settings, chat_model=FakeListChatModel(responses=list(responses)))

    return build
