"""Start the team layout on loopback: one Chroma server, one OpenAI-compatible LLM server (yours, or one this
script starts), optionally an ingest, N API workers; then check that a question is answered with a citation.

    python deploy/local.py --workers 2 --llm-url http://127.0.0.1:11434/v1 --llm-model qwen2.5-coder:1.5b-instruct \\
        --ingest demo --question "Who killed al-Rufayi?"

Runs until Ctrl-C (or SIGTERM), stopping everything it started; with --check-only it stops after the check and
exits 0 if the answer came back (1 if not). See README, Deployment."""

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import httpx

from newsqa.processes import NotUp, chroma_server, stop, wait_until_up

STARTUP_S = 120.0  # API workers load the embedder and read the store before they answer


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def child(command: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A process stopped (SIGTERM, then SIGKILL after 30 s) when the block ends."""
    print("starting:", shlex.join(command), flush=True)
    process = subprocess.Popen(command, env=env)
    try:
        yield process
    finally:
        stop(process)


def ask(api: str, question: str, timeout: float) -> dict:
    """The first answer that is not a refusal, asked until `timeout` (workers follow the store within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.post(f"{api}/v1/chat", json={"question": question}, timeout=60).json()
        if not body.get("refused", True) or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--chroma-port", type=int, default=8765)
    parser.add_argument("--chroma-path", type=Path, default=Path("data/chroma-server"), help="the server's store")
    llm = parser.add_mutually_exclusive_group(required=True)
    llm.add_argument("--llm-url", help="an OpenAI-compatible server already running, e.g. http://127.0.0.1:11434/v1")
    llm.add_argument("--llm-command", help="start this LLM server ({port} is replaced by --llm-port)")
    parser.add_argument("--llm-port", type=int, default=8766, help="with --llm-command")
    parser.add_argument("--llm-model", help="model name to ask the LLM server for (NEWSQA_LLM_MODEL)")
    parser.add_argument("--ingest", type=Path, action="append", default=[], help="articles to ingest first")
    parser.add_argument("--question", default="Who killed al-Rufayi?", help="the check question")
    parser.add_argument("--check-only", action="store_true", help="stop everything after the check")
    args = parser.parse_args()

    llm_url = args.llm_url or f"http://127.0.0.1:{args.llm_port}/v1"
    env = {**os.environ, "NEWSQA_CHROMA_HOST": "127.0.0.1", "NEWSQA_CHROMA_PORT": str(args.chroma_port),
           "NEWSQA_LLM_PROVIDER": "openai", "NEWSQA_LLM_BASE_URL": llm_url, "NEWSQA_EMBED_THREADS": "1",
           **({"NEWSQA_LLM_MODEL": args.llm_model} if args.llm_model else {})}
    newsqa = [sys.executable, "-m", "newsqa"]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds the stack: every child is stopped
    with ExitStack() as started:
        args.chroma_path.mkdir(parents=True, exist_ok=True)
        print(f"starting: chroma run --path {args.chroma_path} --host 127.0.0.1 --port {args.chroma_port}", flush=True)
        started.enter_context(chroma_server(args.chroma_path, args.chroma_port))
        if args.llm_command:
            command = shlex.split(args.llm_command.replace("{port}", str(args.llm_port)))
            wait_until_up(partial(port_open, args.llm_port), started.enter_context(child(command)), STARTUP_S,
                          what=f"the LLM server on port {args.llm_port}")
        if args.ingest:
            done = subprocess.run([*newsqa, "ingest", *map(str, args.ingest)], env=env)
            if done.returncode != 0:
                print("error: the ingest failed", file=sys.stderr)
                return 1
        api = f"http://127.0.0.1:{args.api_port}"
        serve = [*newsqa, "serve", "--host", "127.0.0.1", "--port", str(args.api_port), "--workers", str(args.workers)]
        workers = started.enter_context(child(serve, env))
        wait_until_up(f"{api}/healthz", workers, STARTUP_S)  # not the port: it opens before the workers start
        body = ask(api, args.question, timeout=30)
        if body.get("refused", True):
            print(f"error: {args.question!r} was not answered: {body}", file=sys.stderr)
            return 1
        cited = body["citations"][0]
        print(f"ok: {args.question!r} -> {body['answer']!r} (cites {cited['title']!r}); API on {api}, "
              f"{args.workers} workers, Chroma on port {args.chroma_port}, LLM at {llm_url}", flush=True)
        if not args.check_only:
            with_ctrl_c()
    return 0


def with_ctrl_c() -> None:
    print("running; Ctrl-C stops everything", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NotUp as exc:  # raised inside main's ExitStack, which has stopped everything started by then
        sys.exit(f"error: {exc}")
