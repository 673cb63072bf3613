"""Settings: one typed class with bounds checked at start-up; .env.example and the README's table are written
from it and work as they are."""

import json
import re
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from helpers import REPO
from pydantic import ValidationError
from typer.testing import CliRunner

from newsqa.cli import app
from newsqa.service.answering.calibrator import load
from newsqa.service.answering.input_limits import prompt_room
from newsqa.service.answering.prompts import load_text
from newsqa.settings import PROMPT_TEXT_TOKENS, Settings, allowed, get_settings
from newsqa.settings_docs import README_END, README_START, env_example, markdown

EXAMPLE = REPO / ".env.example"


def test_env_example_and_the_readme_table_are_written_from_the_settings():
    assert EXAMPLE.read_text() == env_example(), "run: newsqa settings --env-example > .env.example"
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index(README_START) : readme.index(README_END) + len(README_END)] + "\n"
    assert table == markdown(), (f"README.md's settings table is stale: replace it, from {README_START} to "
                                 f"{README_END}, with the output of `newsqa settings --markdown`")


def test_the_example_copied_as_env_gives_the_offline_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=EXAMPLE)
    assert settings.llm_provider == "local" and settings.chroma_host is None
    assert settings.embedding_model_path is None and settings.slack_bot_token is None  # empty means unset
    assert settings.model_cache_dir == Path.home() / ".cache" / "newsqa"  # "~" expanded
    assert settings == Settings(_env_file=None)


def test_every_number_has_bounds():
    numbers = {name: field for name, field in Settings.model_fields.items()
               if field.annotation in (int, float, int | None, float | None)}
    assert len(numbers) > 40
    assert [name for name, field in numbers.items() if not allowed(field)] == []


def test_a_bad_value_stops_the_cli_with_one_line_naming_the_variable_and_its_range(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NEWSQA_DATA_DIR": str(tmp_path / "data"),
           "NEWSQA_LLM_CTX": "100"}
    done = subprocess.run([sys.executable, "-m", "newsqa", "ask", "Who killed al-Rufayi?"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("error: invalid settings: NEWSQA_LLM_CTX: Input should be greater than or equal to 512 "
                           "(allowed: at least 512, at most 131072)\n")
    assert not (tmp_path / "data").exists()  # refused before anything was opened


@pytest.mark.parametrize(("command", "variable", "value", "says"), [
    (["serve"], "NEWSQA_MIN_QUESTION_COVERAGE", "1.5", "at least 0, at most 1"),
    (["ingest", "demo"], "NEWSQA_CHUNK_OVERLAP_TOKENS", "-1", "at least 0, at most 128"),
    (["check"], "NEWSQA_LLM_THREADS", "zero", "at least 1"),
])
def test_every_command_refuses_a_bad_value_before_it_starts(monkeypatch, tmp_path, command, variable, value, says):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSQA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, command)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"invalid settings: {variable}: " in result.output and f"(allowed: {says})" in result.output
    assert not (tmp_path / "data").exists()


def _calibrator(**change) -> str:
    return json.dumps(asdict(replace(load(), **change)))


@pytest.mark.parametrize(("content", "says"), [
    (None, "FileNotFoundError"),
    ("weights: 1", "JSONDecodeError"),
    (_calibrator(weights={"verifier_probability": 1.0}), "KeyError: 'verifier_probability'"),  # no such input
    (_calibrator(thresholds=[]), "ValueError"),  # nothing to answer at
])
def test_a_calibrator_file_that_is_not_one_stops_every_command_naming_it(monkeypatch, tmp_path, content, says):
    path = tmp_path / "calibrator.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSQA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NEWSQA_CALIBRATOR_FILE", str(path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"invalid settings: NEWSQA_CALIBRATOR_FILE: {path} is not a calibrator file ({says}" in result.output
    assert not (tmp_path / "data").exists()


def test_a_context_too_small_for_the_longest_question_is_refused_naming_what_to_change():
    with pytest.raises(ValidationError, match="NEWSQA_LLM_CTX=2000 is too small.*at least 2800"):
        Settings(_env_file=None, llm_ctx=2000)
    Settings(_env_file=None, llm_ctx=2000, max_question_chars=1200)  # a shorter longest question fits


def test_at_the_smallest_context_allowed_the_shipped_prompt_holds_the_longest_question_and_a_passage():
    smallest = Settings(_env_file=None, llm_ctx=2800)
    template = load_text(None, "answer.system") + load_text(None, "answer.user")
    headline = 150  # a long headline with its dateline, and the passage's number
    assert smallest.llm_ctx == smallest.llm_max_tokens + PROMPT_TEXT_TOKENS + 2000 + 240  # the smallest indeed
    assert prompt_room(smallest, template) >= smallest.max_question_chars + smallest.window_chars + headline


def test_the_chroma_port_defaults_to_the_deployments_not_the_apis():
    deploy = (EXAMPLE.parent / "deploy" / "local.py").read_text()
    [chroma] = re.findall(r'"--chroma-port", type=int, default=(\d+)', deploy)
    [api] = re.findall(r'"--api-port", type=int, default=(\d+)', deploy)
    readme = (EXAMPLE.parent / "README.md").read_text()
    assert Settings(_env_file=None).chroma_port == int(chroma) != int(api)
    # clients reach the store through its token check, on the default port; the store itself sits behind it
    assert re.search(rf"newsqa\.token_proxy --chroma-port (\d+) --host \S+ --port {chroma}\b", readme)


def test_a_list_setting_is_read_as_json_or_comma_separated(monkeypatch):
    for keys, origins in (('["k-one","k-two"]', '[ "https://a.example" ]'), ("k-one, k-two", "https://a.example")):
        monkeypatch.setenv("NEWSQA_API_KEYS", keys)
        monkeypatch.setenv("NEWSQA_CORS_ORIGINS", origins)
        settings = Settings(_env_file=None)
        assert [key.get_secret_value() for key in settings.api_keys] == ["k-one", "k-two"]
        assert settings.cors_origins == ["https://a.example"]
