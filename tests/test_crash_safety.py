"""A real `newsqa ingest` process killed (SIGKILL) at chosen points: readers meanwhile see only whole articles,
and the next ingest leaves exactly what the articles should produce."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEMO_DIR, make_settings

from newsqa.eval.crash_drill import differences, write_version
from newsqa.ingest.loaders import load_paths
from newsqa.ingest.pipeline import ingest_paths
from newsqa.service.answering.snapshot import StoreView
from newsqa.store.check import find_problems
from newsqa.store.index import open_index
from newsqa.store.models import Article

# Runs `newsqa ingest PATH` in a process that SIGKILLs itself on the Nth call of one method.
KILLER = """
import os, signal, sys, importlib
module, name, nth, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
owner, _, method = name.rpartition(".")
cls = getattr(importlib.import_module(module), owner)
real, calls = getattr(cls, method), []
def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(cls, method, dying)
from newsqa.cli import app
app(["ingest", path])
"""

POINTS = {  # where a kill lands: (module, Class.method, which call)
    "during embedding": ("newsqa.store.embedding", "LocalEmbedder.encode", 3),
    "mid-write, chunks stored but not yet recorded": ("newsqa.store.index", "Index.record", 2),
    "between recording and deleting the stale version": ("newsqa.store.index", "Index.delete_stale", 3),
}


def kill_ingest(settings, articles: Path, point: str) -> None:
    module, name, nth = POINTS[point]
    env = {**os.environ, "NEWSQA_DATA_DIR": str(settings.data_dir),
           "NEWSQA_STORE_BATCH_SIZE": str(settings.store_batch_size), "NEWSQA_LOG_LEVEL": "ERROR"}
    done = subprocess.run([sys.executable, "-c", KILLER, module, name, str(nth), str(articles)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr  # it really died where we meant


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> tuple[Path, Path]:
    """The demo corpus as two versions of the same articles, the second with every body edited."""
    folder = tmp_path_factory.mktemp("versions")
    loaded = [a for a in load_paths([DEMO_DIR], make_settings(folder)) if isinstance(a, Article)]
    return (write_version(loaded, folder / "v1.jsonl", ""),
            write_version(loaded, folder / "v2.jsonl", " The council confirmed the figures on Friday."))


def whole_articles_only(settings) -> None:
    """What a reader sees: each article in exactly one version, with every chunk of it."""
    snapshot = StoreView(settings).current()
    records = {a.id: a for a in snapshot.index.articles().values()}
    seen: dict[str, set[int]] = {}
    for chunk in snapshot.lexical.chunks:
        assert records[chunk.meta.article_id].content_hash == chunk.meta.content_hash
        seen.setdefault(chunk.meta.article_id, set()).add(chunk.meta.chunk_index)
    assert seen == {a.id: set(range(a.chunks)) for a in records.values()}


@pytest.mark.parametrize(("point", "update"), [
    *[(point, False) for point in POINTS if "stale" not in point],  # a first ingest has no older version
    *[(point, True) for point in POINTS],
], ids=lambda value: {False: "first ingest", True: "update"}.get(value, value))
def test_a_killed_ingest_leaves_whole_articles_and_the_next_one_repairs(tmp_path, versions, point, update):
    v1, v2 = versions
    settings = make_settings(tmp_path / "data", store_batch_size=3)  # articles span store batches
    target = v2 if update else v1
    if update:
        ingest_paths([v1], settings, progress=False)

    kill_ingest(settings, target, point)

    whole_articles_only(settings)
    assert differences(settings, target), "the kill should have left work undone"
    summary = ingest_paths([target], settings, progress=False)
    assert summary.failed == 0
    assert differences(settings, target) == []
    assert not find_problems(StoreView(settings).current().index)
    stats = subprocess.run([sys.executable, "-m", "newsqa", "stats", "--json"], capture_output=True, text=True,
                           env={**os.environ, "NEWSQA_DATA_DIR": str(settings.data_dir)}, check=True, timeout=120)
    assert json.loads(stats.stdout)["articles"] == len(target.read_text().splitlines())


def test_check_reports_what_a_kill_left_and_repair_clears_it(tmp_path, versions):
    v1, v2 = versions
    settings = make_settings(tmp_path / "data", store_batch_size=3)
    ingest_paths([v1], settings, progress=False)
    kill_ingest(settings, v2, "between recording and deleting the stale version")
    env = {**os.environ, "NEWSQA_DATA_DIR": str(settings.data_dir)}

    def check(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "newsqa", "check", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    found = check()
    assert found.returncode == 1 and "stray chunks" in found.stdout
    assert check("--repair").returncode == 0
    clean = check()
    assert clean.returncode == 0 and "consistent" in clean.stdout
    whole_articles_only(settings)


def test_a_store_written_before_article_records_existed_loses_nothing_on_upgrade(tmp_path, versions):
    v1, _ = versions
    settings = make_settings(tmp_path / "data")
    ingest_paths([v1], settings, progress=False)
    index = open_index(settings)
    index.client.delete_collection(index.records.name)  # what an older newsqa left: chunks, no records

    check = subprocess.run([sys.executable, "-m", "newsqa", "check"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "NEWSQA_DATA_DIR": str(settings.data_dir)})
    assert check.returncode == 0 and "consistent" in check.stdout, check.stdout + check.stderr
    assert differences(settings, v1) == []
    whole_articles_only(settings)
