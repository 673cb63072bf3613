"""Shared fixtures: real Chroma, the real embedder, the repo's own demo corpus; the LLM is the only thing
faked. Stub servers live in fixtures/stubs.py; paths and plain helpers in helpers.py."""

import os
from collections.abc import Callable

import pytest
from helpers import DEMO_DIR, SEED_FILE, AgreeingChatModel, make_settings

from newsqa.settings import Settings

pytest_plugins = ["fixtures.stubs", "fixtures.processes"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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


@pytest.fixture
def fake_answerer() -> Callable:
    """fake_answerer(settings, *replies): the real answer path over a real index, with a chat model that
    replies `replies` in turn and confirms every answer it is asked to verify."""
    from newsqa.service.answering.answer import Answerer

    def build(settings: Settings, *responses: str) -> Answerer:
        return Answerer.from_settings(settings, chat_model=AgreeingChatModel(responses=list(responses)))

    return build
