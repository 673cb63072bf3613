"""Issue 25: a Chroma server that requires a token, over TLS (nginx in front of a real `chroma run`: Chroma 1.x
checks no token itself, newsqa/token_proxy.py). A client without the token, with the wrong one, or unable to
verify the certificate is told so at start-up, naming the setting; with both, ingest, check and serve work."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fixtures.processes import newsqa_env, serving
from helpers import SEED_FILE

from newsqa.processes import NotUp, chroma_server, debian_command, free_port
from newsqa.token_proxy import ProxyConfig, token_proxy

try:
    debian_command("nginx", "nginx")
except NotUp as exc:  # make test installs it (as root with apt)
    pytest.skip(str(exc), allow_module_level=True)

TOKEN = "t0ken-for-the-store-only-0123456789"
WHO = "Who killed al-Rufayi?"
WHO_ANSWER = "Iraqi intelligence"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA."""
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True)
    return certificate, key


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> tuple[int, Path]:
    """(port, CA file) of a Chroma server behind a token check over TLS."""
    folder = tmp_path_factory.mktemp("secured")
    certificate, key = self_signed(folder)
    with chroma_server(folder / "chroma") as upstream:
        config = ProxyConfig(upstream, free_port(), TOKEN, certificate=certificate, key=key)
        with token_proxy(config, folder / "proxy") as proxy:
            yield proxy.port, certificate


def newsqa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "newsqa", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def env_for(tmp_path: Path, secured: tuple[int, Path], llm_url: str = "http://unused", **variables: str):
    port, certificate = secured
    return newsqa_env(tmp_path / "data", llm_url, **{"chroma_host": "127.0.0.1", "chroma_port": str(port),
                      "chroma_tls": "true", "chroma_ca_file": str(certificate), "chroma_token": TOKEN, **variables})


def test_without_the_token_serve_stops_at_start_up_naming_the_setting(tmp_path, secured):
    env = env_for(tmp_path, secured)
    del env["NEWSQA_CHROMA_TOKEN"]
    done = newsqa(env, "serve", "--port", str(free_port()))
    assert done.returncode != 0
    assert "requires a token: set NEWSQA_CHROMA_TOKEN" in done.stderr and "Traceback" not in done.stderr


def test_a_wrong_token_an_unknown_certificate_or_plain_http_is_named(tmp_path, secured):
    wrong = newsqa(env_for(tmp_path, secured, chroma_token="not-the-token-0123456789"), "check")
    env = env_for(tmp_path, secured)
    del env["NEWSQA_CHROMA_CA_FILE"]
    unverified = newsqa(env, "stats")
    plain = newsqa(env_for(tmp_path, secured, chroma_tls="false"), "stats")
    assert wrong.returncode != 0 and "refused the token in Authorization" in wrong.stderr
    assert unverified.returncode != 0 and "set NEWSQA_CHROMA_CA_FILE" in unverified.stderr
    assert plain.returncode != 0 and "speaks TLS: set NEWSQA_CHROMA_TLS=true" in plain.stderr


def test_with_the_token_and_the_ca_ingest_check_and_serve_work(tmp_path, secured, openai_stub):
    openai_stub.answers[WHO] = WHO_ANSWER
    env = env_for(tmp_path, secured, openai_stub.url)
    assert newsqa(env, "ingest", str(SEED_FILE)).returncode == 0
    assert "consistent" in newsqa(env, "check").stdout
    with serving(env) as url:
        body = httpx.post(f"{url}/v1/chat", json={"question": WHO}, timeout=120).json()
    assert WHO_ANSWER in body["answer"] and body["citations"]
