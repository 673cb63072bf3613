"""Ingest into real Chroma with the real embedder: counts, idempotence, updates, failures, the lock, the CLI."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEMO_DIR, REPO, SEED_FILE, make_settings

from newsqa.ingest.chunking import Chunker
from newsqa.ingest.loaders import load_paths
from newsqa.ingest.pipeline import ingest_paths
from newsqa.store.embedding import get_embedder
from newsqa.store.index import StoredChunk, StoreLocked, open_index
from newsqa.store.models import Article

DEMO_ARTICLES = 8  # .txt x2, .md x2, three in the .jsonl, .html; the README is not one
HEADLINE = "Riverton Library Extends Opening Hours"
OLD_PARAGRAPHS = [
    "Riverton's central library will open until 9 p.m. on weekdays from 3 March, the city said on Monday.",
    "The change costs 180,000 dollars a year and adds four part-time staff to the reading rooms.",
    "Head librarian Ada Quist said evening visits had doubled since the study hall opened in 2023.",
    "The children's section keeps its current hours because of a shortage of qualified staff.",
    "A public consultation on Sunday opening will run until the end of April, officials added.",
]
NEW_PARAGRAPHS = [
    "Riverton's central library will open until 10 p.m. on weekdays from 17 March, the city said on Tuesday.",
    "The council agreed to fund the longer hours after a 5-2 vote on the same day.",
]


def write_story(path: Path, paragraphs: list[str], headline: str = HEADLINE) -> Path:
    path.write_text(f"{headline}\n" + "\n\n".join(paragraphs) + "\nOriginal Source: www.riverton-post.example\n",
                    encoding="utf-8")
    return path


def stored_chunks(settings) -> list[StoredChunk]:
    return list(open_index(settings).all_chunks())


def chunks_of(settings, article_id: str) -> list[StoredChunk]:
    return sorted((c for c in stored_chunks(settings) if c.meta.article_id == article_id),
                  key=lambda c: c.meta.chunk_index)


def only_article(path: Path) -> Article:
    [article] = list(load_paths([path], make_settings(path.parent)))
    assert isinstance(article, Article)
    return article


def expected_chunks(settings, article: Article):
    return Chunker(settings).chunks(article)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo corpus ingested once; tests may re-ingest it unchanged but must not change it."""
    settings = make_settings(tmp_path_factory.mktemp("demo") / "data")
    return settings, ingest_paths([DEMO_DIR], settings, progress=False)


# --- the demo corpus -------------------------------------------------------------------------------


def test_first_ingest_reports_every_article_added(demo):
    settings, summary = demo
    assert (summary.added, summary.updated, summary.unchanged, summary.duplicates, summary.failed) == (
        DEMO_ARTICLES, 0, 0, 0, 0)
    assert summary.errors == []
    index = open_index(settings)
    assert summary.chunks_written == index.count() >= DEMO_ARTICLES
    assert len(index.articles()) == DEMO_ARTICLES
    assert summary.line().startswith(
        f"articles: {DEMO_ARTICLES} added, 0 updated, 0 unchanged, 0 duplicate, 0 failed; "
        f"{summary.chunks_written} chunks written in ")


def test_reingesting_the_same_files_writes_nothing(demo):
    settings, first = demo
    generation = open_index(settings).generation()
    again = ingest_paths([DEMO_DIR], settings, progress=False)
    assert (again.added, again.updated, again.unchanged, again.chunks_written) == (0, 0, DEMO_ARTICLES, 0)
    index = open_index(settings)
    assert index.count() == first.chunks_written
    assert index.generation() == generation  # readers need not refresh anything


def test_every_chunk_points_back_into_its_article(demo):
    settings, _ = demo
    articles = {a.key: a for a in load_paths([DEMO_DIR], settings)}
    chunks = stored_chunks(settings)
    assert {c.meta.article_id for c in chunks} == set(articles)
    for chunk in chunks:
        meta, article = chunk.meta, articles[chunk.meta.article_id]
        assert meta.title == article.title
        assert meta.source == article.source
        assert meta.url == article.url
        assert meta.published_at == article.published_iso
        assert article.body[meta.start:meta.end] == chunk.text
        if article.published_at:
            assert isinstance(meta.published_ts, int)
        else:
            assert meta.published_ts is None
    for key in articles:
        assert [c.meta.chunk_index for c in chunks_of(settings, key)] == list(
            range(len(chunks_of(settings, key))))


def test_dated_articles_carry_their_date_source_and_url(demo):
    settings, _ = demo
    by_title = {c.meta.title: c.meta for c in stored_chunks(settings)}
    final = by_title["Kestrels Win Northern Cup Final 3-1 After Late Double From Okafor"]
    assert (final.source, final.published_at) == ("sportsdesk.example", "2025-04-27")
    assert final.url == "https://sportsdesk.example/football/kestrels-win-northern-cup"
    storm = by_title["Storm Edda Floods Valewick as River Tam Reaches Record Level"]
    assert storm.published_at == "2025-02-09"
    assert storm.published_ts < final.published_ts  # date filters compare these


def test_seed_facts_are_stored_in_the_demo_story(demo):
    settings, _ = demo
    text = " ".join(c.text for c in stored_chunks(settings) if "Baghdad" in c.meta.title)
    assert "Abdullah Makki Muslih al-Rufayi" in text
    assert "at least 1,383 civilians" in text
    assert "Post Comment" not in text


# --- chunking --------------------------------------------------------------------------------------


def test_chunks_fit_the_embedders_token_budget(tmp_path):
    settings = make_settings(tmp_path / "data", chunk_tokens=64, chunk_overlap_tokens=16)
    summary = ingest_paths([DEMO_DIR], settings, progress=False)
    assert summary.chunks_written > 2 * DEMO_ARTICLES  # the small budget really cut the articles
    tokenizer = get_embedder(settings).tokenizer
    lengths = [len(tokenizer.tokenize(c.text)) for c in stored_chunks(settings)]
    assert len(lengths) == summary.chunks_written
    assert max(lengths) <= 64


def test_paragraphs_longer_than_a_chunk_are_cut_at_sentences_without_losing_spans(tmp_path):
    settings = make_settings(tmp_path / "data", chunk_tokens=40, chunk_overlap_tokens=10)
    path = write_story(tmp_path / "long.txt", [" ".join(OLD_PARAGRAPHS)])  # one long paragraph
    article = only_article(path)
    ingest_paths([path], settings, progress=False)
    chunks = chunks_of(settings, article.key)
    assert len(chunks) > 2
    for chunk in chunks:
        assert "(?<=" not in chunk.text
        assert article.body[chunk.meta.start:chunk.meta.end] == chunk.text


# --- updates, duplicates, failures -------------------------------------------------------------------


def test_edited_article_replaces_all_its_old_chunks(tmp_path):
    settings = make_settings(tmp_path / "data", chunk_tokens=48, chunk_overlap_tokens=8)
    path = write_story(tmp_path / "library.txt", OLD_PARAGRAPHS)
    old = only_article(path)
    ingest_paths([path], settings, progress=False)
    old_ids = {c.id for c in chunks_of(settings, old.key)}
    assert len(old_ids) > len(expected_chunks(settings, only_article(write_story(tmp_path / "x.txt", NEW_PARAGRAPHS))))

    write_story(path, NEW_PARAGRAPHS)  # same headline and source: the same story, edited
    new = only_article(path)
    assert new.key == old.key
    summary = ingest_paths([path], settings, progress=False)
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 0)

    stored = chunks_of(settings, new.key)
    expected = expected_chunks(settings, new)
    assert [c.id for c in stored] == [c.id for c in expected]
    assert [c.text for c in stored] == [c.text for c in expected]
    assert not old_ids & {c.id for c in stored}
    assert open_index(settings).count() == len(expected)
    text = " ".join(c.text for c in stored)
    assert "10 p.m." in text and "5-2 vote" in text
    assert "Ada Quist" not in text and "9 p.m." not in text


def test_same_story_under_two_file_names_is_stored_once(tmp_path):
    settings = make_settings(tmp_path / "data")
    folder = tmp_path / "news"
    folder.mkdir()
    first = write_story(folder / "library.txt", OLD_PARAGRAPHS)
    shutil.copy(first, folder / "library (copy).txt")
    summary = ingest_paths([folder], settings, progress=False)
    assert (summary.added, summary.duplicates, summary.failed) == (1, 1, 0)
    index = open_index(settings)
    assert len(index.articles()) == 1
    assert index.count() == summary.chunks_written == len(expected_chunks(settings, only_article(first)))


def test_a_bad_file_does_not_stop_the_batch_or_lose_stored_articles(tmp_path):
    settings = make_settings(tmp_path / "data")
    folder = tmp_path / "news"
    folder.mkdir()
    kept = write_story(folder / "library.txt", OLD_PARAGRAPHS)
    ingest_paths([folder], settings, progress=False)
    kept_ids = [c.id for c in chunks_of(settings, only_article(kept).key)]

    bad = folder / "a-latin1.txt"  # sorts first
    bad.write_bytes("Caf\u00e9 Closes\nThe caf\u00e9 closed.".encode("latin-1"))
    write_story(folder / "zoo.txt", ["The zoo welcomed two red pandas on Friday."], headline="Zoo Gets Red Pandas")
    summary = ingest_paths([folder], settings, progress=False)
    assert (summary.added, summary.unchanged, summary.failed) == (1, 1, 1)
    [error] = summary.errors
    assert error.startswith(f"{bad}: not valid UTF-8")
    assert len(open_index(settings).articles()) == 2
    assert [c.id for c in chunks_of(settings, only_article(kept).key)] == kept_ids


# --- one writer at a time --------------------------------------------------------------------------

HOLD_LOCK = """
import sys
from pathlib import Path
from newsqa.settings import Settings
from newsqa.store.index import writer_lock
with writer_lock(Settings(_env_file=None, data_dir=Path(sys.argv[1]))):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_ingest_refuses_while_another_process_writes(tmp_path):
    settings = make_settings(tmp_path / "data")
    story = write_story(tmp_path / "library.txt", OLD_PARAGRAPHS)
    before = ingest_paths([story], settings, progress=False).chunks_written
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(settings.data_dir)], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        zoo = write_story(tmp_path / "zoo.txt", ["Two red pandas arrived."], headline="Zoo Gets Red Pandas")
        with pytest.raises(StoreLocked, match="another newsqa process is writing to") as exc:
            ingest_paths([zoo], settings, progress=False)
        assert str(settings.data_dir) in str(exc.value)
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    assert open_index(settings).count() == before
    assert ingest_paths([story], settings, progress=False).unchanged == 1  # the lock is free again


# --- the command line --------------------------------------------------------------------------------


def newsqa(*args: str, data_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "newsqa"
    if not exe.exists():
        pytest.skip(f"newsqa entry point not installed at {exe}")
    env = {**os.environ, "NEWSQA_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_ingest_prints_summary_and_failures_and_stats_agree(tmp_path):
    data_dir = tmp_path / "data"
    story = write_story(tmp_path / "library.txt", OLD_PARAGRAPHS)
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"title": "Half a record", \n', encoding="utf-8")

    run = newsqa("ingest", str(story), str(bad), data_dir=data_dir, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("articles: 1 added, 0 updated, 0 unchanged, 0 duplicate, 1 failed; ")
    assert f"failed: {bad}:1: invalid JSON" in run.stderr
    chunks = open_index(make_settings(data_dir)).count()
    assert f"; {chunks} chunks written in " in run.stdout

    stats = newsqa("stats", "--json", data_dir=data_dir, cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    figures = json.loads(stats.stdout)
    assert (figures["articles"], figures["chunks"]) == (1, chunks)

    only_bad = newsqa("ingest", str(bad), data_dir=data_dir, cwd=tmp_path)
    assert only_bad.returncode == 1
    assert "0 added, 0 updated, 0 unchanged, 0 duplicate, 1 failed" in only_bad.stdout


def test_the_default_embedder_spelled_two_ways_is_one_model(tmp_path):
    from newsqa.store.embedding import default_model_path

    implicit = get_embedder(make_settings(tmp_path / "a"))
    explicit = get_embedder(
        make_settings(tmp_path / "b", embedding_model_path=default_model_path(), embed_batch_size=8))
    assert implicit.model is explicit.model  # ~100 MB and seconds to load: once per process
    assert explicit.batch_size == 8


def test_an_article_the_chunker_cannot_cut_fails_alone_and_is_named(tmp_path, monkeypatch):
    settings = make_settings(tmp_path / "data")
    good = write_story(tmp_path / "library.txt", OLD_PARAGRAPHS)
    bad = write_story(tmp_path / "poison.txt", ["The word Xyzzy trips the tokenizer."], headline="Poison Story")
    tokenizer = get_embedder(settings).tokenizer
    real = tokenizer.tokenize

    def tokenize(text: str, *args, **kwargs):  # the Hugging Face tokenizer is the boundary that fails here
        if "Xyzzy" in text:
            raise ValueError("text input must be of type str")
        return real(text, *args, **kwargs)

    monkeypatch.setattr(tokenizer, "tokenize", tokenize)
    summary = ingest_paths([good, bad], settings, progress=False)
    assert (summary.added, summary.failed) == (1, 1)
    [error] = summary.errors
    assert error.startswith(f"{bad}: could not be cut into chunks")
    assert [a.title for a in load_paths([good], settings)] == [HEADLINE]
    assert len(open_index(settings).articles()) == 1


def test_malformed_records_fail_alone_and_two_feeds_numbering_alike_are_both_stored(tmp_path):
    settings = make_settings(tmp_path / "data", max_record_chars=5_000)
    feed = tmp_path / "feeds.jsonl"
    good = [
        {"id": "123", "source": "north-gazette.example", "title": HEADLINE, "body": "\n\n".join(OLD_PARAGRAPHS)},
        {"id": "123", "source": "south-herald.example", "title": "Council Funds Library", "body": NEW_PARAGRAPHS[1]},
    ]
    bad = [
        b'{"title": "Huge", "body": "B.", "views": ' + b"9" * 5000 + b"}",
        b'{"title": "Deep", "body": "B.", "tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        '{"title": "Caf\u00e9", "body": "Opened."}'.encode("latin-1"),
        json.dumps({"title": "Wall", "body": "x" * 10_000_000}).encode(),  # 10 MB without a space to split at
    ]
    feed.write_bytes(b"\n".join([json.dumps(good[0]).encode(), *bad, json.dumps(good[1]).encode()]))
    summary = ingest_paths([feed], settings, progress=False)
    assert (summary.added, summary.failed) == (2, 4)
    assert [e.split(": ")[0] for e in summary.errors] == [f"{feed}:{n}" for n in (2, 3, 4, 5)]
    assert summary.errors[3].endswith("over the 5,000-character limit (NEWSQA_MAX_RECORD_CHARS)")
    assert {c.meta.article_id for c in stored_chunks(settings)} == {"north-gazette.example:123",
                                                                   "south-herald.example:123"}


def test_a_date_that_cannot_be_put_in_utc_fails_its_record_alone(tmp_path):
    settings = make_settings(tmp_path / "data")
    feed = tmp_path / "dated.jsonl"
    records = [{"title": HEADLINE, "body": OLD_PARAGRAPHS[0], "published_at": "2025-03-01T08:00:00+01:00"},
               {"title": "Before Time", "body": OLD_PARAGRAPHS[1], "published_at": "0001-01-01T00:00:00+14:00"},
               {"title": "Council Funds Library", "body": NEW_PARAGRAPHS[1], "published_at": "2025-03-02"}]
    feed.write_text("\n".join(json.dumps(r) for r in records))

    summary = ingest_paths([feed], settings, progress=False)

    assert (summary.added, summary.failed) == (2, 1)
    [error] = summary.errors
    assert error.startswith(f"{feed}:2: unreadable published_at '0001-01-01T00:00:00+14:00' ("), error
    assert {c.meta.title for c in stored_chunks(settings)} == {HEADLINE, "Council Funds Library"}


def test_ingest_counts_what_it_met_for_prometheus(settings):
    from prometheus_client import REGISTRY

    def added() -> float:
        return REGISTRY.get_sample_value("newsqa_ingest_articles_total", {"outcome": "added"}) or 0.0

    def unchanged() -> float:
        return REGISTRY.get_sample_value("newsqa_ingest_articles_total", {"outcome": "unchanged"}) or 0.0

    before_added, before_unchanged = added(), unchanged()
    first = ingest_paths([SEED_FILE], settings, progress=False)
    ingest_paths([SEED_FILE], settings, progress=False)
    assert added() - before_added == first.added == 1
    assert unchanged() - before_unchanged == 1
