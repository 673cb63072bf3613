"""A Chroma server (`chroma run`) as a child process on loopback: for the scale bench, the deploy script and
tests. Production runs its own (see README, Deployment)."""

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise StoreUnavailable(f"the Chroma server on port {port} did not start")
            time.sleep(0.2)
        yield port
    finally:
        stop(process)
