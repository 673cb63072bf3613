"""Shared fixtures: real Chroma, the real embedder, the seed article; the LLM is the only thing faked."""

import os
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from service.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SEED_DIR = SHARED / "corpus" / "seed"
DEMO_DIR = REPO / "ingest" / "demo"


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    if not SEED_DIR.is_dir():
        pytest.skip(f"seed article not found at {SEED_DIR} (the shared/ folder beside the repo)")
    return SEED_DIR


def make_settings(data_dir: Path, **overrides) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **overrides)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory, seed_dir) -> Settings:
    """A data dir holding the ingested seed article; tests must not write to it."""
    from ingest.pipeline import ingest_paths

    settings = make_settings(tmp_path_factory.mktemp("seed") / "data")
    summary = ingest_paths([seed_dir], settings, progress=False)
    assert summary.added == 1 and summary.chunks_written > 0
    return settings


def fake_answerer(settings: Settings, *responses: str):
    """The real answer path over a real index, with a chat model that replies `responses` in turn."""
    from service.answer import Answerer

    return Answerer.from_settings(settings, chat_model=FakeListChatModel(responses=list(responses)))
