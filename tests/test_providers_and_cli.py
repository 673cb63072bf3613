"""Another model server is a setting, not a code change: newsqa over an OpenAI-compatible stub, in-process,
from the command line and behind the HTTP API (real retrieval over the seed index)."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from openai_stub import OpenAIStub

from service.answer import Answerer
from service.api import create_app
from service.llm import build_chat_model
from service.schemas import ChatRequest, ChatResponse

QUESTION = "How many civilians were killed in coastal Syria?"
NEWSQA = Path(sys.executable).with_name("newsqa")


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture
def remote_answerer(seed_settings, stub) -> Answerer:
    """The seed index (read-only), answered by the stub as if it were vLLM or Ollama."""
    settings = make_settings(seed_settings.data_dir, llm_provider="openai", llm_base_url=stub.url + "/v1",
                             llm_api_key="sk-test", llm_model="some-model")
    return Answerer.from_settings(settings)


def assert_cites_1383(response: ChatResponse) -> None:
    assert response.refused is False and "1,383" in response.answer and "[1]" in response.answer
    assert response.citations and "1,383 civilians" in response.citations[0].quote


def test_an_openai_compatible_server_answers_with_citations(remote_answerer, stub):
    stub.replies.append("1,383")
    response = remote_answerer.answer(ChatRequest(question=QUESTION))

    assert_cites_1383(response)
    [request] = stub.requests
    assert request["model"] == "some-model" and stub.authorizations == ["Bearer sk-test"]
    system, user = request["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert QUESTION in user["content"] and "[1] " in user["content"]


def test_multiple_choice_options_reach_the_model_and_the_pick_is_still_grounded(remote_answerer, stub):
    options = ["at least 1,383", "about 500", "13"]
    stub.replies += ["at least 1,383", "about 500"]
    picked = remote_answerer.answer(ChatRequest(question=QUESTION, choices=options))
    assert_cites_1383(picked)
    assert "Options: at least 1,383 | about 500 | 13" in stub.requests[0]["messages"][1]["content"]
    unsupported = remote_answerer.answer(ChatRequest(question=QUESTION, choices=options))
    assert unsupported.refused and unsupported.citations == []  # no passage says "about 500"


def test_the_openai_provider_without_a_base_url_says_which_setting_is_missing(tmp_path):
    with pytest.raises(ValueError, match="NEWSQA_LLM_BASE_URL"):
        build_chat_model(make_settings(tmp_path / "data", llm_provider="openai"))


def test_a_down_model_server_is_a_503_and_the_next_question_works_once_it_is_back(remote_answerer, stub):
    with TestClient(create_app(remote_answerer)) as client:
        stub.failing = True
        down = client.post("/v1/chat", json={"question": QUESTION})
        assert down.status_code == 503 and "unavailable" in down.json()["detail"]
        assert len(stub.requests) == 3  # the client's two retries were spent before giving up

        stub.failing = False
        stub.replies.append("1,383")
        up = client.post("/v1/chat", json={"question": QUESTION})
        assert up.status_code == 200
        assert_cites_1383(ChatResponse.model_validate(up.json()))


@pytest.fixture
def newsqa(seed_settings, stub, tmp_path):
    """newsqa(*args) -> the finished `newsqa` process, configured only through the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSQA_", "SLACK_"))}
    env.update(NEWSQA_DATA_DIR=str(seed_settings.data_dir), NEWSQA_LLM_PROVIDER="openai",
               NEWSQA_LLM_BASE_URL=stub.url + "/v1", NEWSQA_LOG_LEVEL="WARNING", HF_HUB_OFFLINE="1")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(NEWSQA), "ask", *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)

    return run


def test_cli_ask_json_prints_exactly_the_api_response(newsqa, stub):
    stub.replies.append("1,383")
    done = newsqa("--json", QUESTION)
    assert done.returncode == 0, done.stderr
    response = ChatResponse.model_validate_json(done.stdout)
    assert_cites_1383(response)
    assert response.standalone_question is None and response.timings.total_ms > 0


def test_cli_ask_prints_the_answer_then_each_numbered_source_and_its_quote(newsqa, stub):
    stub.replies.append("1,383")
    done = newsqa(QUESTION)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "1,383" in lines[0] and "[1]" in lines[0]
    source = next(i for i, line in enumerate(lines) if line.startswith("[1] "))
    assert lines[source].startswith("[1] Security Cooperation") and "(newarab.com" in lines[source]
    assert any('"' in line and "1,383 civilians" in line for line in lines[source + 1:])


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "2025-13-01"], "--since"),
    (["--since", "2025-05-01", "--until", "2025-01-01"], "after until"),
])
def test_cli_ask_rejects_bad_dates_before_asking_the_model(newsqa, stub, args, message):
    done = newsqa(*args, "x")
    assert done.returncode != 0 and message in done.stderr
    assert stub.requests == []
