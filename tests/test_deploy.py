"""deploy/local.py starts the whole layout on loopback (Redis, the embeddings server, a Chroma server behind its
token check, the stub LLM server as its own process, two API workers), ingests the demo corpus, gets a cited
answer, and leaves nothing running."""

import shlex
import socket
import subprocess
import sys

from fixtures.processes import free_port, newsqa_env
from helpers import DEMO_DIR, REPO

from newsqa.processes import INFINITY

STUB = REPO / "tests" / "fixtures" / "stubs.py"


def test_the_local_deployment_starts_answers_and_stops(tmp_path):
    api, chroma, llm, redis, embeddings = (free_port() for _ in range(5))
    stub = shlex.join([sys.executable, str(STUB), "--port", "{port}", "--answer",
                       "Who killed al-Rufayi?=Iraqi intelligence"])
    # the embeddings server when `make embedding-server` has built it (make test does), else in-process
    embedding = ["--embedding-port", str(embeddings)] if INFINITY.exists() else ["--embed-in-process"]
    env = newsqa_env(tmp_path / "data", "http://unused")
    done = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "local.py"), "--workers", "2", "--api-port", str(api),
         "--chroma-port", str(chroma), "--chroma-path", str(tmp_path / "chroma"), "--llm-command", stub,
         "--llm-port", str(llm), "--redis-port", str(redis), *embedding, "--env-file", str(tmp_path / "deploy.env"),
         "--ingest", str(DEMO_DIR), "--question", "Who killed al-Rufayi?", "--check-only"],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: 'Who killed al-Rufayi?' -> 'Iraqi intelligence" in done.stdout
    assert "Chroma (token)" in done.stdout and f"Redis on port {redis}" in done.stdout
    written = (tmp_path / "deploy.env").read_text()
    assert "NEWSQA_CHROMA_TOKEN=" in written and (tmp_path / "deploy.env").stat().st_mode & 0o077 == 0
    for port in (api, chroma, llm, redis, embeddings):  # every process it started is gone
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
