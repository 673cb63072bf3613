"""Readers see writers: a running `newsqa serve` answers from what another process ingests, without a restart,
and questions asked during an ingest all succeed, each from one complete version of the store."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fixtures.processes import newsqa_env, serving
from helpers import DEMO_DIR, SEED_FILE, SEED_TITLE, make_settings

from newsqa.eval.crash_drill import write_version
from newsqa.ingest.loaders import load_paths
from newsqa.ingest.pipeline import ingest_paths
from newsqa.store.models import Article

WHO = "Who killed al-Rufayi?"
WHO_ANSWER = "Iraqi intelligence"


def ingest(env: dict[str, str], path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "newsqa", "ingest", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def ask(url: str, question: str = WHO) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat", json={"question": question}, timeout=60)


def test_a_server_started_on_an_empty_dir_answers_from_an_ingest_made_by_another_process(tmp_path, openai_stub):
    openai_stub.answers[WHO] = WHO_ANSWER
    env = newsqa_env(tmp_path / "data", openai_stub.url)
    with serving(env) as url:
        first = ask(url)
        assert first.status_code == 200 and first.json()["refused"] is True  # nothing indexed yet

        assert ingest(env, SEED_FILE).wait(timeout=300) == 0

        deadline = time.monotonic() + 30
        while (response := ask(url)).status_code == 200 and response.json()["refused"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["refused"] is False and body["answer"].startswith(WHO_ANSWER)
        assert body["citations"][0]["title"] == SEED_TITLE


@pytest.fixture
def two_versions(tmp_path) -> tuple[Path, Path, dict[str, set[str]]]:
    """The demo corpus and an edited version of it, and each article's two content hashes (as chunk ids hold)."""
    loaded = [a for a in load_paths([DEMO_DIR], make_settings(tmp_path)) if isinstance(a, Article)]
    v1 = write_version(loaded, tmp_path / "v1.jsonl", "")
    v2 = write_version(loaded, tmp_path / "v2.jsonl", " Officials repeated the account on Saturday.")
    hashes: dict[str, set[str]] = {}
    for version in (v1, v2):
        for article in load_paths([version], make_settings(tmp_path)):
            assert isinstance(article, Article)
            hashes.setdefault(article.key, set()).add(article.content_hash[:12])
    return v1, v2, hashes


def test_questions_during_an_ingest_all_succeed_each_from_one_version(tmp_path, openai_stub, two_versions):
    v1, v2, hashes = two_versions
    settings = make_settings(tmp_path / "data")
    ingest_paths([v1], settings, progress=False)
    openai_stub.answers[WHO] = WHO_ANSWER
    env = newsqa_env(settings.data_dir, openai_stub.url)
    responses: list[httpx.Response] = []
    with serving(env) as url:
        writer = ingest(env, v2)
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set():
                responses.append(ask(url))

        asker = threading.Thread(target=keep_asking)
        asker.start()
        assert writer.wait(timeout=300) == 0, writer.stderr.read() if writer.stderr else ""
        v2_hashes = {a.content_hash[:12] for a in load_paths([v2], settings) if isinstance(a, Article)}
        deadline = time.monotonic() + 30  # the server's follower switches to the finished generation
        while (not responses or version_cited(responses[-1]) not in v2_hashes) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        asker.join(timeout=60)

    assert len(responses) > 5 and {r.status_code for r in responses} == {200}
    for response in responses:
        for citation in response.json()["citations"]:
            key, version, _ = citation["chunk_id"].rsplit(":", 2)
            assert version in hashes[key]  # a complete version of that article, never a mix or a fragment
    assert version_cited(responses[-1]) in v2_hashes


def version_cited(response: httpx.Response) -> str:
    """The content hash in the first citation's chunk id (`<article>:<hash>:<n>`); "" for a refusal."""
    citations = response.json()["citations"]
    return citations[0]["chunk_id"].rsplit(":", 2)[1] if citations else ""
