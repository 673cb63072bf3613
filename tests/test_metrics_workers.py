"""Issue 25: one scrape of /metrics counts every worker's answers (prometheus_client's multiprocess mode), with a
real `newsqa serve --workers 2` answering from the OpenAI-compatible stub."""

import re
import shutil
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from fixtures.processes import newsqa_env, serving
from prometheus_client.multiprocess import MultiProcessCollector

WHO = "Who killed al-Rufayi?"
WHO_ANSWER = "Iraqi intelligence"


def answers_by_worker(metrics_dir: Path) -> dict[int, float]:
    """Answers each worker process recorded, read from its own files (named TYPE_PID.db)."""
    files: dict[int, list[str]] = defaultdict(list)
    for path in metrics_dir.glob("*.db"):
        files[int(path.stem.rsplit("_", 1)[1])].append(str(path))
    return {pid: sum(sample.value for metric in MultiProcessCollector.merge(paths) for sample in metric.samples
                     if sample.name == "newsqa_answers_total") for pid, paths in files.items()}


def scraped(metrics: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", metrics, re.M)
    assert match, f"{sample} is not in the scrape"
    return float(match.group(1))


def test_one_scrape_counts_the_answers_of_both_workers(seed_settings, openai_stub, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(seed_settings.data_dir, data)  # the session's seed store stays as it is
    (data / "prometheus-multiproc").mkdir()
    (data / "prometheus-multiproc" / "counter_1.db").write_bytes(b"left by an earlier run")  # cleaned at start
    openai_stub.answers[WHO] = WHO_ANSWER
    openai_stub.delay = 0.3  # answers overlap, so both workers take some
    with serving(newsqa_env(data, openai_stub.url, embed_threads="1"), "--workers", "2") as url:
        with ThreadPoolExecutor(4) as pool:  # a new connection per question: the workers share the socket
            statuses = list(pool.map(lambda _: httpx.post(f"{url}/v1/chat", json={"question": WHO},
                                                          timeout=120).status_code, range(10)))
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        per_worker = answers_by_worker(data / "prometheus-multiproc")
    assert statuses == [200] * 10
    assert scraped(metrics, 'newsqa_answers_total{outcome="answered"}') == 10
    assert scraped(metrics, 'newsqa_stage_seconds_count{stage="total"}') == 10
    assert scraped(metrics, "newsqa_questions_in_flight") == 0
    assert sorted(per_worker.values()) != [0, 10] and sum(per_worker.values()) == 10, per_worker  # both answered
    assert len([count for count in per_worker.values() if count]) == 2, per_worker
