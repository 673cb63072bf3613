"""Paths and helpers the tests import (`from helpers import ...`); fixtures live in conftest.py and fixtures/."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from newsqa.settings import Settings

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


class AgreeingChatModel(FakeListChatModel):
    """Replies `responses` in turn; the verifier (the call asking for top log-probabilities) it answers yes."""

    def _call(self, *args: Any, **kwargs: Any) -> str:
        return "yes" if kwargs.get("top_logprobs") else super()._call(*args, **kwargs)
