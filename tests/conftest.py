"""Shared fixtures: real Chroma, the real embedder, the repo's own demo corpus; the LLM is the only thing
faked. Stub servers live in fixtures/stubs.py."""

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from newsqa.settings import Settings

pytest_plugins = ["fixtures.stubs", "fixtures.processes"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "demo"
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
    server = uvicorn.Server(uvicorn.Config(app=app, host="127.0.0.1", port=port, log_level="warning",
                                           proxy_headers=False))  # as `newsqa serve` runs it
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


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory) -> Settings:
    """A data dir holding the repo's demo corpus; tests must not write to it."""
    from newsqa.ingest.pipeline import ingest_paths

    settings = make_settings(tmp_path_factory.mktemp("demo") / "data")
    assert ingest_paths([DEMO_DIR], settings, progress=False).added > 0
    return settings


class AgreeingChatModel(FakeListChatModel):
    """Replies `responses` in turn; the verifier (the call asking for top log-probabilities) it answers yes."""

    def _call(self, *args: Any, **kwargs: Any) -> str:
        return "yes" if kwargs.get("top_logprobs") else super()._call(*args, **kwargs)


@pytest.fixture
def fake_answerer() -> Callable:
    """fake_answerer(settings, *replies): the real answer path over a real index, with a chat model that
    replies `replies` in turn and confirms every answer it is asked to verify."""
    from newsqa.service.answering.answer import Answerer

    def build(settings: Settings, *responses: str) -> Answerer:
        return Answerer.from_settings(settings, chat_model=AgreeingChatModel(responses=list(responses)))

    return build
