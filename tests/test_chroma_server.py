"""Several processes on one Chroma server (`chroma run` on loopback): two ingests writing at once while two API
workers answer, and a writer's repair that must not take a live writer's unfinished work for a dead one's."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fixtures.processes import newsqa_env, serving
from helpers import DEMO_DIR, make_settings

from newsqa.eval.crash_drill import differences, write_version
from newsqa.ingest.loaders import load_paths
from newsqa.store.check import find_problems
from newsqa.store.index import open_index
from newsqa.store.models import Article

QUESTIONS = {  # one question per article set, and the answer its article gives
    "Who killed al-Rufayi?": "Iraqi intelligence",
    "Who scored twice late in the final?": "Tobi Okafor",
}

# `newsqa ARGS...` that, on the Nth call of Index.METHOD, SIGKILLs itself ("kill") or says "paused" and waits
# for a line on stdin ("pause") while its lease keeps being renewed.
STOPPING = """
import os, signal, sys
from newsqa.store.index import Index
how, method, nth, args = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
real, calls = getattr(Index, method), []
def stopping(self, *a, **k):
    calls.append(1)
    if len(calls) == nth:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        print("paused", flush=True)
        sys.stdin.readline()
    return real(self, *a, **k)
setattr(Index, method, stopping)
from newsqa.cli import app
app(args)
"""


@pytest.fixture
def article_sets(tmp_path) -> tuple[Path, Path, Path]:
    """The demo corpus in two sets (the Syria story in one, the cup final in the other), and the two together."""
    loaded = [a for a in load_paths([DEMO_DIR], make_settings(tmp_path)) if isinstance(a, Article)]
    syria = next(a for a in loaded if "Syria" in a.title)
    final = next(a for a in loaded if a.id == "demo-kestrels-final")
    rest = [a for a in loaded if a not in (syria, final)]
    first, second = [syria, *rest[::2]], [final, *rest[1::2]]
    return (write_version(first, tmp_path / "first.jsonl", ""), write_version(second, tmp_path / "second.jsonl", ""),
            write_version(first + second, tmp_path / "both.jsonl", ""))


def server_env(tmp_path: Path, chroma_port: int, llm_url: str, **variables: str) -> dict[str, str]:
    # the workers are polled in a loop: past the default per-address rate limit
    return newsqa_env(tmp_path / "data", llm_url, chroma_host="127.0.0.1", chroma_port=str(chroma_port),
                      rate_limit="100000/minute", **variables)


def server_settings(env: dict[str, str]):
    return make_settings(Path(env["NEWSQA_DATA_DIR"]), chroma_host="127.0.0.1",
                         chroma_port=int(env["NEWSQA_CHROMA_PORT"]))


def ingest(env: dict[str, str], path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "newsqa", "ingest", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def ask(url: str, question: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat", json={"question": question}, timeout=60)


def answered(response: httpx.Response, question: str) -> bool:
    body = response.json()
    return not body["refused"] and body["answer"].startswith(QUESTIONS[question])


def test_two_ingests_at_once_while_two_api_workers_answer(tmp_path, chroma_server, openai_stub, article_sets):
    first, second, both = article_sets
    openai_stub.answers.update(QUESTIONS)
    env = server_env(tmp_path, chroma_server, openai_stub.url, store_batch_size="2")  # many writes each
    responses: list[tuple[str, httpx.Response]] = []
    with serving(env, "--workers", "2") as url:
        for question in QUESTIONS:
            assert ask(url, question).json()["refused"]  # nothing indexed yet
        writers = [ingest(env, first), ingest(env, second)]
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set():
                for question in QUESTIONS:
                    responses.append((question, ask(url, question)))

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            for writer in writers:
                assert writer.wait(timeout=300) == 0, writer.stderr.read() if writer.stderr else ""
        finally:
            stop.set()
            asker.join(timeout=120)

        deadline = time.monotonic() + 30  # each worker's follower switches to the last generation
        while not all(answered(ask(url, q), q) for q in QUESTIONS) and time.monotonic() < deadline:
            time.sleep(0.2)
        # every worker answers from both ingests: a fresh connection each time, so both workers are asked
        afterwards = [(q, ask(url, q)) for _ in range(6) for q in QUESTIONS]

    assert responses and {r.status_code for _, r in responses} == {200}
    for question, response in responses:  # meanwhile: not yet known, or answered right from its article
        assert response.json()["refused"] or answered(response, question), response.text
    assert all(answered(response, question) for question, response in afterwards)
    settings = server_settings(env)
    assert differences(settings, both) == []  # every article whole, no stray chunk
    assert not find_problems(open_index(settings))
    stats = subprocess.run([sys.executable, "-m", "newsqa", "stats", "--json"], env=env, capture_output=True,
                           text=True, check=True, timeout=120)
    assert json.loads(stats.stdout)["articles"] == len(both.read_text().splitlines())


def test_a_writer_repairs_a_dead_writers_debris_and_spares_a_live_writers_unfinished_work(
        tmp_path, chroma_server, openai_stub, article_sets):
    first, second, both = article_sets
    env = server_env(tmp_path, chroma_server, openai_stub.url, store_batch_size="1")
    live = paused(env, "record", 1, "ingest", str(second))  # chunks stored, not yet recorded
    try:
        dead = subprocess.run([sys.executable, "-c", STOPPING, "kill", "record", "2", "ingest", str(first)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert dead.returncode == -signal.SIGKILL, dead.stderr  # left chunks its records never named
        settings = server_settings(env)
        index = open_index(settings)
        assert index.write_interrupted()
        versions = {a.id: a.content_hash for a in index.articles().values()}
        unrecorded = {c.id for c in index.all_chunks(with_text=False) if not c.counts_in(versions)}
        unfinished = {cid for cid in unrecorded if cid.rsplit(":", 2)[0] in keys(second)}
        assert unfinished and unrecorded - unfinished  # the live writer's and the dead one's

        rerun = ingest(env, first)  # finds the dead writer's lease and repairs before writing
        assert rerun.wait(timeout=300) == 0, rerun.stderr.read() if rerun.stderr else ""
        assert live.poll() is None
        assert unfinished <= {c.id for c in open_index(settings).all_chunks(with_text=False)}  # spared
    finally:
        resume(live)

    assert differences(settings, both) == []
    assert not find_problems(open_index(settings))
    assert open_index(settings).writers() == []
    assert not open_index(settings).write_interrupted()


def keys(path: Path) -> set[str]:
    return {a.key for a in load_paths([path], make_settings(path.parent)) if isinstance(a, Article)}


def paused(env: dict[str, str], method: str, nth: int, *command: str) -> subprocess.Popen:
    """`newsqa COMMAND...` in its own process, paused at the `nth` call of Index.`method`."""
    process = subprocess.Popen([sys.executable, "-c", STOPPING, "pause", method, str(nth), *command], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = process.stdout.readline().strip() if process.stdout else ""
    if said != "paused":
        process.kill()
        raise AssertionError(f"{' '.join(command)} never reached Index.{method}: "
                             f"{process.stderr.read() if process.stderr else ''}")
    return process


def resume(process: subprocess.Popen) -> str:
    """Let a paused process go on; its output once it has finished successfully."""
    out, err = process.communicate("\n", timeout=300)
    assert process.returncode == 0, err
    return out


def run(env: dict[str, str], *command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "newsqa", *command], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def versions(tmp_path) -> tuple[str, list[Path]]:
    """One article (the Syria story) in three versions, each in a file of its own; and its id."""
    settings = make_settings(tmp_path)
    syria = next(a for a in load_paths([DEMO_DIR], settings) if isinstance(a, Article) and "Syria" in a.title)
    return syria.key, [write_version([syria], tmp_path / f"v{n}.jsonl", f" Edit number {n}.") for n in (1, 2, 3)]


def only(settings, version: Path) -> None:
    """The store holds this version of the article, whole, and nothing else; `check` finds nothing."""
    assert differences(settings, version) == []
    assert not find_problems(open_index(settings))


@pytest.mark.parametrize("pause_at", ["record", "delete_stale"])
def test_two_writers_storing_two_versions_of_one_article_leave_one_whole(tmp_path, chroma_server, openai_stub,
                                                                        versions, pause_at):
    _, (v1, v2, v3) = versions
    env = server_env(tmp_path, chroma_server, openai_stub.url)
    run(env, "ingest", str(v1))

    first = paused(env, pause_at, 1, "ingest", str(v2))  # v2's chunks stored, before or after its record
    run(env, "ingest", str(v3))  # meanwhile another writer stores v3 whole
    resume(first)

    # v2 recorded last (it paused before its record), or v3 (v2 paused after): that one stays, whole
    only(server_settings(env), v2 if pause_at == "record" else v3)


def test_a_removal_while_a_writer_stores_a_new_version_leaves_that_version_whole(tmp_path, chroma_server,
                                                                                 openai_stub, versions):
    key, (v1, v2, _) = versions
    env = server_env(tmp_path, chroma_server, openai_stub.url)
    run(env, "ingest", str(v1))

    writer = paused(env, "record", 1, "ingest", str(v2))  # v2's chunks stored, not yet recorded
    assert run(env, "remove", key) == "removed 1 articles\n"  # the version it found: v1
    resume(writer)

    only(server_settings(env), v2)


def test_a_removal_racing_a_writer_storing_the_same_version_withdraws_the_article_whole(
        tmp_path, chroma_server, openai_stub, versions):
    key, (v1, _, _) = versions
    env = server_env(tmp_path, chroma_server, openai_stub.url)
    run(env, "ingest", str(v1))

    remover = paused(env, "delete_chunks", 1, "remove", key)  # v1's record gone, its chunks about to go
    assert "1 added" in run(env, "ingest", str(v1))  # stores v1 again, under the same chunk ids
    resume(remover)  # deletes those chunks: v1's new record names chunks that are gone, and is withdrawn

    settings = server_settings(env)
    assert open_index(settings).articles() == {} and not find_problems(open_index(settings))
    assert "1 added" in run(env, "ingest", str(v1))  # the next ingest stores it whole
    only(settings, v1)
