"""Settings: one typed class; .env.example documents every variable and works when copied as is."""

import re
from pathlib import Path

from newsqa.settings import Settings

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_env_example_lists_every_setting_with_a_comment():
    lines = EXAMPLE.read_text().splitlines()
    for name, field in Settings.model_fields.items():
        variable = field.validation_alias or f"NEWSQA_{name.upper()}"
        [index] = [i for i, line in enumerate(lines) if line.startswith(f"{variable}=")]
        while index > 0 and "=" in lines[index - 1] and not lines[index - 1].startswith("#"):
            index -= 1  # a group of related variables shares the comment above it
        assert lines[index - 1].startswith("# "), f"{variable} has no comment above it"


def test_the_example_copied_as_env_gives_the_offline_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=EXAMPLE)
    assert settings.llm_provider == "local" and settings.chroma_host is None
    assert settings.embedding_model_path is None and settings.slack_bot_token is None  # empty means unset
    assert settings.model_cache_dir == Path.home() / ".cache" / "newsqa"  # "~" expanded


def test_the_chroma_port_defaults_to_the_deployments_not_the_apis():
    deploy = (EXAMPLE.parent / "deploy" / "local.py").read_text()
    [chroma] = re.findall(r'"--chroma-port", type=int, default=(\d+)', deploy)
    [api] = re.findall(r'"--api-port", type=int, default=(\d+)', deploy)
    readme = (EXAMPLE.parent / "README.md").read_text()
    assert Settings(_env_file=None).chroma_port == int(chroma) != int(api)
    assert f"chroma run --path /srv/newsqa/chroma --host 127.0.0.1 --port {chroma}" in readme


def test_a_list_setting_is_read_as_json_or_comma_separated(monkeypatch):
    for keys, origins in (('["k-one","k-two"]', '[ "https://a.example" ]'), ("k-one, k-two", "https://a.example")):
        monkeypatch.setenv("NEWSQA_API_KEYS", keys)
        monkeypatch.setenv("NEWSQA_CORS_ORIGINS", origins)
        settings = Settings(_env_file=None)
        assert [key.get_secret_value() for key in settings.api_keys] == ["k-one", "k-two"]
        assert settings.cors_origins == ["https://a.example"]
