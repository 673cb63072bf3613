"""The article browser's routes as a client sees them: the demo corpus in a real index, read through the same
snapshot the answers come from."""

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from helpers import DEMO_DIR, SEED_SOURCE, SEED_TITLE, make_settings

from newsqa.ingest.pipeline import ingest_paths
from newsqa.service.api.app import create_app
from newsqa.settings import Settings

# One paragraph of many sentences: the splitter cuts it into chunks that overlap.
LONG_BODY = " ".join(f"Ferry number {i} left Kelso harbour at dawn with {i * 7} passengers aboard." for i in range(60))
LONG = {"id": "kelso-ferries", "title": "Kelso Ferries Run All Night", "body": LONG_BODY,
        "source": "harbourpost.example", "url": "https://harbourpost.example/kelso", "published_at": "2025-06-01"}
DEMO_ARTICLES = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Settings:
    """The demo corpus and one long article; tests must not write to it."""
    folder = tmp_path_factory.mktemp("articles")
    (folder / "long.jsonl").write_text(json.dumps(LONG) + "\n")
    settings = make_settings(folder / "data", articles_page_size=3)
    summary = ingest_paths([DEMO_DIR, folder / "long.jsonl"], settings, progress=False)
    assert summary.added == DEMO_ARTICLES + 1 and not summary.errors
    return settings


@pytest.fixture
def client(corpus, fake_answerer) -> Iterator[TestClient]:
    with TestClient(create_app(corpus, fake_answerer(corpus, "Iraqi intelligence"))) as client:
        yield client


def every_page(client: TestClient, **params) -> list[dict]:
    items, offset = [], 0
    while True:
        page = client.get("/v1/articles", params={**params, "offset": offset}).json()
        items += page["items"]
        offset += page["limit"]
        if offset >= page["total"]:
            assert len(items) == page["total"]
            return items


def test_articles_come_newest_first_in_pages_of_the_configured_size(client):
    first = client.get("/v1/articles").json()
    assert first["total"] == DEMO_ARTICLES + 1 and first["limit"] == 3 and len(first["items"]) == 3
    articles = every_page(client)
    assert len({a["id"] for a in articles}) == len(articles)  # no article on two pages
    dates = [a["published_at"] for a in articles]
    dated = [d for d in dates if d]
    assert dates[0] == "2025-06-01" and dated == sorted(dated, reverse=True)
    assert dates[len(dated):] == [None] * (len(dates) - len(dated))  # undated ones last
    assert client.get("/v1/articles", params={"limit": 50}).json()["items"] == articles


def test_articles_are_searched_by_headline_and_filtered_by_source_and_date(client):
    found = client.get("/v1/articles", params={"q": "BAGHDAD syria's"}).json()
    assert [a["title"] for a in found["items"]] == [SEED_TITLE] and found["total"] == 1
    by_source = client.get("/v1/articles", params={"sources": [f"https://www.{SEED_SOURCE}/", "sportsdesk.example"]})
    assert {a["source"] for a in by_source.json()["items"]} == {SEED_SOURCE, "sportsdesk.example"}
    spring = every_page(client, since="2025-03-11", until="2025-05-14")  # both ends included
    assert [a["published_at"] for a in spring] == ["2025-05-14", "2025-04-27", "2025-03-11"]
    assert client.get("/v1/articles", params={"q": "no such headline"}).json() == {
        "items": [], "total": 0, "offset": 0, "limit": 3}


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "2025-05-01", "until": "2025-04-01"}, "since"),
    ({"since": "last week"}, "since"),
    ({"until": "0"}, "until"),  # not 1970-01-01
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"offset": -1}, "offset"),
    ({"sources": "https://"}, "sources"),
])
def test_a_bad_query_is_a_422_naming_the_parameter(client, params, field):
    response = client.get("/v1/articles", params=params)
    assert response.status_code == 422
    assert field in json.dumps(response.json()["detail"])


def test_an_article_has_its_metadata_its_whole_text_once_and_where_its_chunks_lie(client, corpus):
    article = client.get("/v1/articles/harbourpost.example:kelso-ferries").json()
    assert {k: article[k] for k in ("title", "source", "url", "published_at")} == {
        k: LONG[k] for k in ("title", "source", "url", "published_at")}
    assert article["text"] == LONG_BODY  # the overlap between chunks is not repeated
    chunks = article["chunks"]
    assert len(chunks) > 2 and all(b["start"] < a["end"] for a, b in zip(chunks, chunks[1:], strict=False))
    stored = client.app.state.service.answerer.store.current().lexical.chunks
    texts = {c.id: c.text for c in stored}
    assert all(article["text"][c["start"]:c["end"]] == texts[c["id"]] for c in chunks)


def test_an_articles_paragraphs_stay_apart(client):
    [painting] = client.get("/v1/articles", params={"q": "holt painting"}).json()["items"]
    text = client.get(f"/v1/articles/{painting['id']}").json()["text"]
    body = json.loads((DEMO_DIR / "demo-articles.jsonl").read_text().splitlines()[2])["body"]
    assert text == body and text.count("\n\n") == 4


def test_an_unknown_article_is_a_404_naming_its_id(client):
    response = client.get("/v1/articles/gone.example:2024/05/missing")
    assert response.status_code == 404
    assert response.json()["detail"] == "no article with id 'gone.example:2024/05/missing'"


def test_sources_have_article_counts_and_date_ranges(client):
    sources = {s["source"]: s for s in client.get("/v1/sources").json()}
    assert sources["harbourpost.example"] == {"source": "harbourpost.example", "articles": 1,
                                              "first_published": "2025-06-01", "last_published": "2025-06-01"}
    assert sources[SEED_SOURCE]["first_published"] is None  # the seed file carries no date
    assert sum(s["articles"] for s in sources.values()) == DEMO_ARTICLES  # the one HTML page names no source


def test_a_citations_article_opens_with_the_quoted_passage_in_the_cited_chunk(client):
    answer = client.post("/v1/chat", json={"question": "Who killed al-Rufayi?"}).json()
    assert not answer["refused"]
    for citation in answer["citations"]:
        article = client.get(f"/v1/articles/{citation['article_id']}").json()
        [chunk] = [c for c in article["chunks"] if c["id"] == citation["chunk_id"]]
        passage = " ".join(article["text"][chunk["start"]:chunk["end"]].split())
        assert " ".join(citation["quote"].split()) in passage


def test_an_article_ingested_while_the_server_runs_can_be_browsed_once_it_is_answered_from(tmp_path, fake_answerer):
    settings = make_settings(tmp_path / "data")
    ingest_paths([DEMO_DIR / "polar-ice-core-expedition.txt"], settings, progress=False)
    with TestClient(create_app(settings, fake_answerer(settings))) as client:
        assert client.get("/v1/articles").json()["total"] == 1
        ingest_paths([DEMO_DIR / "kelmarsh-port-strike-deal.md"], settings, progress=False)
        assert client.app.state.service.answerer.store.refresh()
        titles = [a["title"] for a in client.get("/v1/articles").json()["items"]]
    assert len(titles) == 2 and any("Kelmarsh" in t for t in titles)
