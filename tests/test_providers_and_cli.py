"""Another model server is a setting, not a code change: newsqa over an OpenAI-compatible openai_stub, in-process,
from the command line and behind the HTTP API (real retrieval over the seed story's index)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fixtures.processes import newsqa_env
from helpers import SEED_SOURCE, SEED_TITLE, make_settings
from pydantic import ValidationError

from newsqa.service.answering.answer import Answerer
from newsqa.service.answering.schemas import ChatRequest, ChatResponse
from newsqa.service.api.app import create_app

QUESTION = "How many civilians were killed in coastal Syria?"
NEWSQA = Path(sys.executable).with_name("newsqa")


@pytest.fixture
def remote_answerer(seed_settings, openai_stub) -> Answerer:
    """The seed index (read-only), answered by the stub as if it were vLLM or Ollama."""
    settings = make_settings(seed_settings.data_dir, llm_provider="openai", llm_base_url=openai_stub.url + "/v1",
                             llm_api_key="sk-test", llm_model="some-model")
    return Answerer.from_settings(settings)


def assert_cites_1383(response: ChatResponse) -> None:
    assert response.refused is False and "1,383" in response.answer and "[1]" in response.answer
    assert response.citations and "1,383 civilians" in response.citations[0].quote


def test_an_openai_compatible_server_answers_with_citations(remote_answerer, openai_stub):
    openai_stub.replies.extend(["1,383", "Yes"])
    response = remote_answerer.answer(ChatRequest(question=QUESTION))

    assert_cites_1383(response)
    request, verification = openai_stub.requests
    assert request["model"] == "some-model" and openai_stub.authorizations == ["Bearer sk-test"] * 2
    # the verifier asks for one token and its alternatives; a server that sends none is read by its text
    assert verification["max_completion_tokens"] == 1
    assert verification["logprobs"] and verification["top_logprobs"] == 10
    assert response.confidence == pytest.approx(1.0, abs=1e-3)  # a sure yes: the calibrator is as sure
    system, user = request["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert QUESTION in user["content"] and "[1] " in user["content"]


def test_multiple_choice_options_reach_the_model_and_the_pick_is_still_grounded(remote_answerer, openai_stub):
    options = ["at least 1,383", "about 500", "13"]
    openai_stub.replies += ["at least 1,383", "Yes"]
    picked = remote_answerer.answer(ChatRequest(question=QUESTION, choices=options))
    assert_cites_1383(picked)
    assert "Options: at least 1,383 | about 500 | 13" in openai_stub.requests[0]["messages"][1]["content"]
    # No passage says "about 500": the options a passage states are put to the verifier instead. It says no to
    # one and nothing to the other ("NOT FOUND"): an answer needs a yes.
    openai_stub.replies += ["about 500", "No", "NOT FOUND"]
    unsupported = remote_answerer.answer(ChatRequest(question=QUESTION, choices=options))
    assert unsupported.refused and unsupported.refusal_reason == "not_confirmed" and unsupported.citations == []
    assert [c.title for c in unsupported.related] == [SEED_TITLE]  # what it read, for the reader to judge
    verified = [r["messages"][1]["content"] for r in openai_stub.requests[3:]]
    assert ['is "at least 1,383" the correct' in verified[0], 'is "13" the correct' in verified[1]] == [True, True]


def test_the_openai_provider_without_a_base_url_says_which_setting_is_missing(tmp_path):
    with pytest.raises(ValidationError, match="NEWSQA_LLM_BASE_URL"):
        make_settings(tmp_path / "data", llm_provider="openai")


def test_a_down_model_server_is_a_503_and_the_next_question_works_once_it_is_back(remote_answerer, openai_stub):
    with TestClient(create_app(remote_answerer.settings, remote_answerer)) as client:
        openai_stub.failing = True
        down = client.post("/v1/chat", json={"question": QUESTION})
        assert down.status_code == 503 and down.json()["detail"].startswith("the answering model is unavailable")
        # the client's retries were spent before giving up
        assert len(openai_stub.requests) == 1 + remote_answerer.settings.llm_max_retries

        openai_stub.failing = False
        openai_stub.replies.append("1,383")
        up = client.post("/v1/chat", json={"question": QUESTION})
        assert up.status_code == 200
        assert_cites_1383(ChatResponse.model_validate(up.json()))


@pytest.fixture
def newsqa(seed_settings, openai_stub, tmp_path):
    """newsqa(*args) -> the finished `newsqa` process, configured only through the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSQA_", "SLACK_"))}
    env.update(NEWSQA_DATA_DIR=str(seed_settings.data_dir), NEWSQA_LLM_PROVIDER="openai",
               NEWSQA_LLM_BASE_URL=openai_stub.url + "/v1", NEWSQA_LOG_LEVEL="WARNING", HF_HUB_OFFLINE="1")

    def run(*args: str, data_dir: Path = seed_settings.data_dir) -> subprocess.CompletedProcess:
        return subprocess.run([str(NEWSQA), "ask", *args], env={**env, "NEWSQA_DATA_DIR": str(data_dir)},
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    return run


def test_cli_ask_json_prints_exactly_the_api_response(newsqa, openai_stub):
    openai_stub.replies.append("1,383")
    done = newsqa("--json", QUESTION)
    assert done.returncode == 0, done.stderr
    response = ChatResponse.model_validate_json(done.stdout)
    assert_cites_1383(response)
    assert response.standalone_question is None and response.timings.total_ms > 0


def test_cli_ask_prints_the_answer_then_each_numbered_source_and_its_quote(newsqa, openai_stub):
    openai_stub.replies.append("1,383")
    done = newsqa(QUESTION)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "1,383" in lines[0] and "[1]" in lines[0]
    source = next(i for i, line in enumerate(lines) if line.startswith("[1] "))
    assert lines[source] == f"[1] {SEED_TITLE} ({SEED_SOURCE})"
    assert any('"' in line and "1,383 civilians" in line for line in lines[source + 1:])


def test_cli_ask_refusing_prints_the_closest_passages_unnumbered_after_the_refusal(newsqa, openai_stub):
    openai_stub.replies.extend(["Hezbollah", "none"])  # no passage says it, and nothing else is chosen
    done = newsqa("Who said al-Rufayi had been killed?")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "no answer" in lines[0] and "Hezbollah" not in done.stdout and "[1]" not in done.stdout
    assert lines[1:4] == ["", "Closest passages (none of them states an answer):", ""]
    assert lines[4] == f"- {SEED_TITLE} ({SEED_SOURCE})"
    assert lines[5].startswith('    "') and "al-Rufayi" in lines[5]


def test_cli_ask_prints_stored_text_without_its_terminal_escape_sequences(newsqa, openai_stub, tmp_path):
    from datetime import datetime

    from newsqa.ingest.pipeline import ingest_items
    from newsqa.store.models import Article

    settings = make_settings(tmp_path / "escapes")
    escapes = "\x1b[2J\x1b]0;pwned\x07\x9b31m"  # clear the screen, retitle the window, red (C1 CSI)
    ingest_items([Article(id="bridge", title=f"Valewick Bridge Opens {escapes}", source="example-newswire.org",
                          published_at=datetime(2025, 3, 3),
                          body=f"The new bridge in Valewick was opened by Mayor Ana Ruiz {escapes} on Monday. "
                               "Traffic crossed it within the hour, the council said.")], settings, progress=False)
    openai_stub.replies.extend(["Mayor Ana Ruiz", "yes"])
    done = newsqa("Who opened the new bridge in Valewick?", data_dir=settings.data_dir)
    assert done.returncode == 0, done.stderr
    assert "Mayor Ana Ruiz" in done.stdout and "Valewick Bridge Opens" in done.stdout
    assert not any(ch in done.stdout for ch in "\x1b\x07\x9b")


def test_cli_ask_on_a_terminal_shows_the_stages_then_clears_them(seed_settings, openai_stub, tmp_path):
    openai_stub.replies.append("1,383")
    env = newsqa_env(seed_settings.data_dir, openai_stub.url)
    terminal, terminal_side = os.openpty()  # stderr is a terminal, stdout a pipe (as in `newsqa ask Q | less`)
    try:
        done = subprocess.run([str(NEWSQA), "ask", QUESTION], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=terminal_side, text=True, timeout=120)
        os.close(terminal_side)
        shown = b""
        while chunk := _read_available(terminal):
            shown += chunk
    finally:
        os.close(terminal)
    assert done.returncode == 0 and "1,383" in done.stdout and "searching" not in done.stdout
    text = shown.decode()
    assert "searching the articles" in text and "found" in text and "draft: 1,383" in text
    assert text.endswith("\r\033[2K")  # the progress line is cleared before the answer shows


def _read_available(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # the other side closed: everything has been read
        return b""


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "2025-13-01"], "--since"),
    (["--since", "2025-05-01", "--until", "2025-01-01"], "after until"),
])
def test_cli_ask_rejects_bad_dates_before_asking_the_model(newsqa, openai_stub, args, message):
    done = newsqa(*args, "x")
    assert done.returncode != 0 and message in done.stderr
    assert openai_stub.requests == []


def test_cli_ask_with_the_model_server_down_is_one_plain_line_and_exit_1(newsqa, openai_stub):
    openai_stub.failing = True
    done = newsqa(QUESTION)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: the answering model is unavailable: the model server did not answer")
    assert "Traceback" not in done.stderr


def test_cli_ask_over_an_empty_data_dir_says_where_it_looked(newsqa, tmp_path):
    empty = tmp_path / "elsewhere"
    done = newsqa(QUESTION, data_dir=empty)
    assert done.returncode == 0
    assert "Nothing is indexed yet" in done.stdout
    assert f"no articles are indexed in {empty.resolve()}" in done.stderr

