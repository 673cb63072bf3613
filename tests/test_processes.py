"""Waiting for a server: back as soon as it answers, and a plain failure at once when its process has exited."""

import re
import subprocess
import sys
import time

import pytest

from newsqa.processes import NotUp, free_port, wait_until_up


def python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_server_whose_process_exits_is_reported_at_once_not_after_the_timeout():
    process = python("raise SystemExit(3)")
    started = time.monotonic()
    with pytest.raises(NotUp, match=r"^the API: its process exited with 3 before it answered$"):
        wait_until_up(f"http://127.0.0.1:{free_port()}/healthz", process, timeout=60, what="the API")
    assert time.monotonic() - started < 30


def test_a_server_that_never_answers_is_reported_after_the_timeout_naming_its_url():
    process = python("import time; time.sleep(60)")
    url = f"http://127.0.0.1:{free_port()}/healthz"
    try:
        with pytest.raises(NotUp, match=rf"^{re.escape(url)}: no answer within 0\.5 s$"):
            wait_until_up(url, process, timeout=0.5)
    finally:
        process.kill()
        process.wait()


def test_a_check_is_tried_until_it_holds():
    tries: list[float] = []

    def third_try() -> bool:
        tries.append(time.monotonic())
        return len(tries) == 3

    process = python("import time; time.sleep(60)")
    try:
        wait_until_up(third_try, process, timeout=30)
    finally:
        process.kill()
        process.wait()
    assert len(tries) == 3 and tries[2] - tries[0] >= 0.4  # it sleeps between tries
