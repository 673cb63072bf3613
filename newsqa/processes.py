"""Servers as child processes on loopback, for the scale bench, the deploy script and tests: a Chroma server
(`chroma run`), Redis, the embeddings server (infinity-emb, from `make embedding-server`), and waiting until a
server answers. Production runs its own (README, Deployment)."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from newsqa.errors import StoreUnavailable

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Running:
    port: int
    process: subprocess.Popen


def stop(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM, and SIGKILL if it hasn't exited within `grace_s`."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def chroma_command() -> str:
    """The `chroma` CLI installed beside this Python (a virtualenv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.exists() else shutil.which("chroma") or "chroma"


@contextmanager
def chroma_server(path: Path, port: int | None = None) -> Iterator[int]:
    """`chroma run --path PATH` on 127.0.0.1 until the block ends; yields its port once it answers."""
    port = port or free_port()
    process = subprocess.Popen([chroma_command(), "run", "--path", str(path), "--host", "127.0.0.1",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        try:
            wait_until_up(f"http://127.0.0.1:{port}/api/v2/heartbeat", process, START_TIMEOUT_S,
                          what=f"the Chroma server on port {port}")
        except NotUp as exc:
            raise StoreUnavailable(str(exc)) from None
        yield port
    finally:
        stop(process)


def debian_command(name: str, package: str) -> str:
    """A Debian package's program (sbin included: not on every user's PATH); NotUp naming the package if absent."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise NotUp(f"{name} is not installed (Debian: apt-get install {package})")
    return found


@contextmanager
def redis_server(port: int | None = None) -> Iterator[Running]:
    """`redis-server` on 127.0.0.1, in memory only (the rate limits' windows need no snapshot), until the block
    ends; yields it once it accepts connections."""
    port = port or free_port()
    process = subprocess.Popen([debian_command("redis-server", "redis-server"), "--bind", "127.0.0.1", "--port",
                                str(port), "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(partial(port_open, port), process, START_TIMEOUT_S, what=f"redis-server on port {port}")
        yield Running(port, process)
    finally:
        stop(process)


REPO = Path(__file__).resolve().parents[1]
INFINITY = REPO / ".venv-infinity" / "bin" / "infinity_emb"  # `make embedding-server`


def infinity_command(port: int, model_path: Path, served_as: str) -> list[str]:
    """infinity-emb serving `model_path` as `served_as` on 127.0.0.1:`port` (OpenAI's POST /embeddings), on the
    CPU, with no download: the model is a local folder."""
    return [str(INFINITY), "v2", "--model-id", str(model_path), "--served-model-name", served_as, "--host",
            "127.0.0.1", "--port", str(port), "--engine", "torch", "--device", "cpu", "--no-bettertransformer",
            "--no-model-warmup"]


@contextmanager
def embedding_server(command: list[str], port: int) -> Iterator[Running]:
    """An OpenAI-compatible embeddings server started by `command` on `port`, until the block ends; yields it
    once its /models answers. Offline: no hub lookups, no usage statistics."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/models", process, START_TIMEOUT_S * 2,
                      what=f"the embeddings server on port {port}")
        yield Running(port, process)
    finally:
        stop(process)


class NotUp(Exception):
    """A server did not come up: its process exited, or it did not answer in time."""


def wait_until_up(ready: str | Callable[[], bool], process: subprocess.Popen, timeout: float,
                  what: str | None = None) -> None:
    """Back once `ready` holds: a URL that answers 200, or a check that returns True; tried every 0.2 s.
    NotUp, naming `what` (default: the URL), as soon as `process` exits or once `timeout` s have passed."""
    check = ready if callable(ready) else partial(answers, ready)
    what = what or str(ready)
    deadline = time.monotonic() + timeout
    while not check():
        if process.poll() is not None:  # nothing will answer now: say so at once, not after the timeout
            raise NotUp(f"{what}: its process exited with {process.returncode} before it answered")
        if time.monotonic() > deadline:
            raise NotUp(f"{what}: no answer within {timeout:g} s")
        time.sleep(0.2)


def answers(url: str) -> bool:
    """`url` answers 200 now (within 5 s)."""
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False
