"""Hybrid retrieval over real Chroma and BM25: the right paragraph first, filters honoured on both sides."""

import json
from datetime import date
from pathlib import Path

import pytest
from helpers import SEED_FILE, SEED_SOURCE, make_settings

from newsqa.ingest.pipeline import ingest_paths
from newsqa.service.answering.answer import Answerer
from newsqa.service.answering.lexical import terms
from newsqa.service.answering.schemas import Filters
from newsqa.service.answering.snapshot import Scope
from newsqa.store.index import StoredChunk
from newsqa.store.models import ChunkMeta

QUESTION = "Who killed al-Rufayi?"

# Stories that share the question's words ("killed", "al-", "IS leader") or its region, but not its answer.
DISTRACTORS = [
    {"title": "Gunmen kill three in Basra market raid", "source": "https://apnews.com/article/basra-raid",
     "url": "https://apnews.com/article/basra-raid", "published_at": "2025-01-20",
     "body": "Gunmen killed three people in a raid on a market in Basra on Monday, Iraqi police said. "
             "Police chief Hamid al-Maliki said the attackers fled in two cars and no group has claimed "
             "the killing."},
    {"title": "Syria's al-Sharaa meets Iraqi tribal delegation in Damascus", "source": "aljazeera.com",
     "published_at": "2025-03-15",
     "body": "Syrian interim President Ahmed al-Sharaa received a delegation of Iraqi tribal leaders in "
             "Damascus on Saturday. They discussed border trade, the return of refugees and water sharing "
             "on the Euphrates."},
    {"title": "Zanzibar clove harvest falls after heavy rains", "source": "reuters.com",
     "published_at": "2024-11-02",
     "body": "Clove growers on Pemba island expect their smallest harvest in a decade after months of heavy "
             "rain, the Zanzibar State Trading Corporation said on Tuesday."},
]


def write_articles(folder: Path, articles: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "articles.jsonl"
    path.write_text("\n".join(json.dumps(a) for a in articles) + "\n", encoding="utf-8")
    return path


def retriever_for(settings) -> Answerer:
    """The answer path's retrieval, over the store as a server sees it (no model is loaded)."""
    return Answerer.from_settings(settings)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The seed plus the distractors, in one data dir; read-only for the tests below."""
    root = tmp_path_factory.mktemp("mixed")
    settings = make_settings(root / "data")
    summary = ingest_paths([SEED_FILE, write_articles(root / "in", DISTRACTORS)], settings, progress=False)
    assert summary.added == 4, summary.errors
    return retriever_for(settings)


def sources(passages) -> set[str | None]:
    return {p.meta.source for p in passages}


def titles(chunks) -> set[str]:
    return {c.meta.title for c in chunks}


def test_the_al_rufayi_paragraph_comes_first_on_the_seed(seed_settings):
    passages = retriever_for(seed_settings).search(QUESTION, k=5)
    assert "al-Rufayi" in passages[0].text


def test_the_al_rufayi_paragraph_still_comes_first_among_distractors(mixed):
    passages = mixed.search(QUESTION, k=5)
    assert "al-Rufayi" in passages[0].text
    assert len(sources(passages)) > 1  # the distractors were in the running


def test_a_source_filter_keeps_only_that_sources_chunks(mixed):
    passages = mixed.search("Iraq security talks", Filters(sources=["www.AlJazeera.com"]), k=10)
    assert passages and sources(passages) == {"aljazeera.com"}
    passages = mixed.search(QUESTION, Filters(sources=[SEED_SOURCE]), k=10)
    assert sources(passages) == {SEED_SOURCE} and "al-Rufayi" in passages[0].text


def test_a_source_with_no_articles_finds_nothing(mixed):
    assert mixed.search(QUESTION, Filters(sources=["bbc.co.uk"]), k=10) == []


CLOVE_DAY = date(2024, 11, 2)


@pytest.mark.parametrize(
    ("filters", "found"),
    [
        (Filters(since=CLOVE_DAY), True),  # bounds are inclusive
        (Filters(until=CLOVE_DAY), True),
        (Filters(since=CLOVE_DAY, until=CLOVE_DAY), True),
        (Filters(since=date(2024, 11, 3)), False),
        (Filters(until=date(2024, 11, 1)), False),
    ],
)
def test_date_filters_include_and_exclude_by_published_date_on_both_sides(mixed, filters, found):
    question = "Pemba clove growers"  # words only the clove story holds
    clove = DISTRACTORS[2]["title"]
    assert titles(mixed.store.current().lexical.search(terms(question), 30, Scope())) == {clove}
    dense = list(mixed.store.current().index.query(mixed.embedder.embed_query(question), 30, Scope.of(filters).where()))
    lexical = mixed.store.current().lexical.search(terms(question), 30, Scope.of(filters))
    hybrid = [p.chunk for p in mixed.search(question, filters, k=10)]
    for side in (dense, lexical, hybrid):
        assert (clove in titles(side)) is found


def test_a_date_filter_leaves_out_undated_articles_and_keeps_those_in_range(mixed):
    filters = Filters(since=date(2025, 1, 1), until=date(2025, 12, 31))
    passages = mixed.search(QUESTION, filters, k=10)
    assert sources(passages) == {"apnews.com", "aljazeera.com"}  # the seed has no date; clove is 2024
    lexical = mixed.store.current().lexical.search(terms(QUESTION), 30, Scope.of(filters))
    assert titles(lexical) <= {DISTRACTORS[0]["title"], DISTRACTORS[1]["title"]}


def test_a_newly_ingested_article_is_found_on_both_sides_once_the_view_refreshes(settings, tmp_path):
    ingest_paths([SEED_FILE], settings, progress=False)
    retriever = retriever_for(settings)
    question = "Pemba clove growers"
    before = retriever.store.current()
    assert before.lexical.search(terms(question), 10, Scope()) == []
    assert retriever.store.refresh() is False  # nothing new yet: nothing reloaded

    ingest_paths([write_articles(tmp_path / "new", DISTRACTORS[2:])], settings, progress=False)

    assert retriever.search(question, k=10)[0].title != DISTRACTORS[2]["title"]  # until the view refreshes
    assert retriever.store.refresh() is True
    after = retriever.store.current()
    assert after.generation != before.generation
    assert titles(after.lexical.search(terms(question), 10, Scope())) == {DISTRACTORS[2]["title"]}
    dense = after.index.query(retriever.embedder.embed_query(question), 1, None)
    assert titles(dense) == {DISTRACTORS[2]["title"]}
    assert retriever.search(question, k=1)[0].title == DISTRACTORS[2]["title"]


def test_a_chunk_read_while_a_writer_deletes_it_counts_in_no_version():
    """Chroma can answer a chunk's id after its metadata is gone: such a chunk is nobody's passage (it once
    reached a refusal's closest passages with no article or title, a 500)."""
    bare = StoredChunk("a_1:0", "", ChunkMeta.from_store({}))
    assert not bare.counts_in({"a_1": "h"}) and not bare.counts_in({})
