"""Servers as child processes on loopback, for the scale bench, the deploy script and tests: a Chroma server
(`chroma run`; production runs its own, see README, Deployment), and waiting until a server answers."""

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx

from newsqa.errors import StoreUnavailable

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
