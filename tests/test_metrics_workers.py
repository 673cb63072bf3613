"""Issue 25: one scrape of /metrics counts every worker's answers (prometheus_client's multiprocess mode), with a
real `newsqa serve --workers 2` answering from the OpenAI-compatible stub."""

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
from fixtures.processes import copy_of, newsqa_env, per_worker, serving

WHO = "Who killed al-Rufayi?"
WHO_ANSWER = "Iraqi intelligence"


def scraped(metrics: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", metrics, re.M)
    assert match, f"{sample} is not in the scrape"
    return float(match.group(1))


def test_one_scrape_counts_the_answers_of_both_workers(seed_settings, openai_stub, tmp_path):
    data = copy_of(seed_settings.data_dir, tmp_path / "data")
    (data / "prometheus-multiproc").mkdir()
    (data / "prometheus-multiproc" / "counter_1.db").write_bytes(b"left by an earlier run")  # cleaned at start
    openai_stub.answers[WHO] = WHO_ANSWER
    openai_stub.delay = 0.3  # answers overlap, so both workers take some
    with serving(newsqa_env(data, openai_stub.url, embed_threads="1"), "--workers", "2") as url:
        with ThreadPoolExecutor(4) as pool:  # a new connection per question: the workers share the socket
            statuses = list(pool.map(lambda _: httpx.post(f"{url}/v1/chat", json={"question": WHO},
                                                          timeout=120).status_code, range(10)))
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        answers = per_worker(data, "newsqa_answers_total")
    assert statuses == [200] * 10
    assert scraped(metrics, 'newsqa_answers_total{outcome="answered"}') == 10
    assert scraped(metrics, 'newsqa_stage_seconds_count{stage="total"}') == 10
    assert scraped(metrics, "newsqa_questions_in_flight") == 0
    assert sum(answers.values()) == 10 and len([n for n in answers.values() if n]) == 2, answers  # both answered
