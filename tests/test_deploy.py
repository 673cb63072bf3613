"""deploy/local.py starts the whole layout on loopback (Chroma server, the stub LLM server as its own process,
two API workers), ingests the demo corpus, gets a cited answer, and leaves nothing running."""

import shlex
import socket
import subprocess
import sys

from fixtures.processes import free_port, newsqa_env
from helpers import DEMO_DIR, REPO

STUB = REPO / "tests" / "fixtures" / "stubs.py"


def test_the_local_deployment_starts_answers_and_stops(tmp_path):
    api, chroma, llm = free_port(), free_port(), free_port()
    stub = shlex.join([sys.executable, str(STUB), "--port", "{port}", "--answer",
                       "Who killed al-Rufayi?=Iraqi intelligence"])
    env = newsqa_env(tmp_path / "data", "http://unused")
    done = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "local.py"), "--workers", "2", "--api-port", str(api),
         "--chroma-port", str(chroma), "--chroma-path", str(tmp_path / "chroma"), "--llm-command", stub,
         "--llm-port", str(llm), "--ingest", str(DEMO_DIR), "--question", "Who killed al-Rufayi?", "--check-only"],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: 'Who killed al-Rufayi?' -> 'Iraqi intelligence" in done.stdout
    for port in (api, chroma, llm):  # every process it started is gone
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
