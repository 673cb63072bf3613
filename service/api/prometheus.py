"""What an operator watches: Prometheus metrics at /metrics (the request id and logs: newsqa/logs.py).

With several workers (`newsqa serve --workers N`) each writes its metrics to files in one folder (prometheus_client's
multiprocess mode, PROMETHEUS_MULTIPROC_DIR), and a scrape of any worker sums them all."""

import os
import shutil
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram, multiprocess
from prometheus_fastapi_instrumentator import Instrumentator, metrics

from newsqa.service.answering.schemas import ChatResponse

STAGE_SECONDS = Histogram("newsqa_stage_seconds", "Time spent per answer stage", ["stage"],
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80))
TOKENS = Counter("newsqa_model_tokens_total", "Tokens the model read (prompt) and wrote (completion)", ["kind"])
ANSWERS = Counter("newsqa_answers_total", "Answers given, and refusals by reason", ["outcome"])
IN_FLIGHT = Gauge("newsqa_questions_in_flight", "Questions answering or waiting for the model",
                  multiprocess_mode="livesum")
REJECTED = Counter("newsqa_questions_rejected_total", "Questions not answered: overloaded (503) or late (504)",
                   ["reason"])
RATE_LIMIT_UNCHECKED = Counter("newsqa_rate_limit_unchecked_total", "Requests let through unchecked: Redis did "
                               "not answer (NEWSQA_RATE_LIMIT_FAIL=open)")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def share_between_workers(data_dir: Path) -> None:
    """Called by `newsqa serve` before it starts its workers: they inherit the variable, so each writes its
    metrics under the data dir. Emptied first: a file left by an earlier run would be counted again."""
    folder = data_dir / "prometheus-multiproc"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder.resolve())


def worker_stopped() -> None:
    """A worker's live gauges (questions in flight) no longer count once it has gone."""
    if MULTIPROC_ENV in os.environ:
        multiprocess.mark_process_dead(os.getpid())


@lru_cache(maxsize=1)
def _per_route_metrics() -> Callable[[metrics.Info], None]:
    """The instrumentator's request metrics, registered once per process: every app built in it (tests build
    many) records into the same ones, where a second registration would leave an app recording nothing."""
    instrumentation = metrics.default()
    assert instrumentation is not None
    return instrumentation


def install_metrics(app: FastAPI) -> None:
    """Request counts and latencies per route (the instrumentator), plus ours above, at GET /metrics."""
    instrumentator = Instrumentator(excluded_handlers=["/metrics", "/healthz", "/readyz"])
    instrumentator.add(_per_route_metrics()).instrument(app).expose(app, include_in_schema=False)


def record_answer(response: ChatResponse) -> None:
    for stage, ms in (("retrieve", response.timings.retrieve_ms), ("generate", response.timings.generate_ms),
                      ("total", response.timings.total_ms)):
        if ms:
            STAGE_SECONDS.labels(stage).observe(ms / 1000)
    TOKENS.labels("prompt").inc(response.usage.prompt_tokens)
    TOKENS.labels("completion").inc(response.usage.completion_tokens)
    ANSWERS.labels(response.refusal_reason or "answered").inc()
