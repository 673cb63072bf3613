"""Taking articles out (`newsqa remove`, the retention period): whole articles go, everything else stays."""

import os
import subprocess
import sys
from datetime import date

import pytest
from helpers import DEMO_DIR, make_settings

from newsqa.ingest.pipeline import ingest_paths
from newsqa.ingest.removal import remove_articles
from newsqa.store.check import find_problems
from newsqa.store.index import open_index

DEMO_ARTICLES = 8


@pytest.fixture
def demo(tmp_path):
    settings = make_settings(tmp_path / "data")
    ingest_paths([DEMO_DIR], settings, progress=False)
    return settings


def stored(settings) -> dict[str, str]:
    """article id → source, of the complete articles; and no chunk is left over from a removed one."""
    index = open_index(settings)
    assert not find_problems(index)
    return {a.id: a.source for a in index.articles().values()}


def key_of(settings, source: str) -> str:
    [key] = [k for k, s in stored(settings).items() if s == source]
    return key


def test_remove_by_id_from_the_command_line_takes_that_article_whole(demo):
    kestrels = key_of(demo, "sportsdesk.example")
    env = {**os.environ, "NEWSQA_DATA_DIR": str(demo.data_dir)}
    done = subprocess.run([sys.executable, "-m", "newsqa", "remove", kestrels, "no-such-article"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "removed 1 articles" in done.stdout and "not found: no-such-article" in done.stderr
    assert kestrels not in stored(demo) and len(stored(demo)) == DEMO_ARTICLES - 1


def test_remove_needs_to_be_told_what(demo):
    done = subprocess.run([sys.executable, "-m", "newsqa", "remove"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NEWSQA_DATA_DIR": str(demo.data_dir)})
    assert done.returncode == 2 and "article ids, --source or --before" in done.stderr
    assert len(stored(demo)) == DEMO_ARTICLES


def older_than_march_15(settings) -> set[str]:
    """The two demo stories dated before 2025-03-15 (2025-02-09, the HTML page; 2025-03-11, culturenote)."""
    articles = open_index(settings).articles().values()
    return {a.id for a in articles if a.published_ts is not None and a.published_ts < 1741996800}


def test_remove_by_source_and_by_date(demo):
    techledger, old = key_of(demo, "techledger.example"), older_than_march_15(demo)
    assert len(old) == 2
    assert remove_articles(demo, source="https://www.techledger.example/anything") == [techledger]
    assert set(remove_articles(demo, before=date(2025, 3, 15))) == old
    assert len(stored(demo)) == DEMO_ARTICLES - 3


def test_retention_expires_old_dated_articles_on_ingest_and_keeps_undated_ones(demo):
    old = older_than_march_15(demo)
    # a retention period reaching back to 2025-03-15: undated stories have no age and stay
    settings = demo.model_copy(update={"retention_days": (date.today() - date(2025, 3, 15)).days})
    summary = ingest_paths([DEMO_DIR], settings, progress=False)
    assert summary.expired == 2 and "2 expired" in summary.line()
    assert not old & stored(demo).keys() and len(stored(demo)) == DEMO_ARTICLES - 2
