"""`newsqa bench`: speed figures for the write and read paths, on a throwaway index."""

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from newsqa.errors import UsageError
from newsqa.eval.measures import percentile
from newsqa.ingest.chunking import Chunker
from newsqa.ingest.loaders import load_paths
from newsqa.ingest.pipeline import ingest_paths
from newsqa.service.answering.answer import Answerer, Trace
from newsqa.service.answering.llm import LocalChatModel, kernels
from newsqa.service.answering.schemas import ChatRequest
from newsqa.settings import Settings
from newsqa.store.embedding import get_embedder
from newsqa.store.models import Article


def _percentiles(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms (n={len(values)})"


class _FirstEvents:
    """An answer's event sink that keeps when each kind of event first came, in ms since it was made."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ms: dict[str, float] = {}

    def __call__(self, event: str, data: dict) -> None:
        self.ms.setdefault(event, (time.perf_counter() - self.started) * 1000)


def _by_call(calls: list[dict]) -> str:
    """Each kind of model call: how many were made, and its mean prompt tokens computed + taken from the cache."""
    kinds: dict[str, list[dict]] = {}
    for call in calls:
        kinds.setdefault(call["call"], []).append(call)
    parts = []
    for kind, made in kinds.items():
        total = sum(c["prompt_tokens"] or 0 for c in made) / len(made)
        cached = sum(c["cached_tokens"] or 0 for c in made) / len(made)
        parts.append(f"{kind} x{len(made)}: {total - cached:.0f} + {cached:.0f}")
    return "; ".join(parts)


def read_questions(path: Path) -> list[str]:
    try:
        asked = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} is not a JSONL file of objects with a 'question' ({exc})") from None
    if not asked:
        raise UsageError(f"{path} holds no questions")
    return asked


def run_bench(settings: Settings, articles: Path, questions: Path, answers: int, out: TextIO) -> None:
    asked = read_questions(questions)
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-") as tmp:
        settings = settings.model_copy(update={"data_dir": Path(tmp), "chroma_host": None})
        embedder, chunker = get_embedder(settings), Chunker(settings)
        loaded = [a for a in load_paths([articles], settings) if isinstance(a, Article)]
        texts = [c.headed_text for a in loaded for c in chunker.chunks(a)]
        if not texts:
            raise UsageError(f"no articles could be read from {articles}")

        started = time.perf_counter()
        embedder.encode(texts)
        raw_cps = len(texts) / (time.perf_counter() - started)
        print(f"raw embedder:       {raw_cps:7.1f} chunks/s ({len(texts)} chunks of {len(loaded)} articles)", file=out)

        first = ingest_paths([articles], settings, progress=False)
        ingest_cps = first.chunks_written / first.seconds
        print(f"ingest (end to end):{ingest_cps:7.1f} chunks/s = {ingest_cps / raw_cps:.2f}x the raw embedder "
              f"(target >= 0.9x)", file=out)
        again = ingest_paths([articles], settings, progress=False)
        print(f"unchanged re-ingest: {again.seconds:.2f} s = {first.seconds / again.seconds:.0f}x faster than "
              f"the first {first.seconds:.1f} s (target >= 50x)", file=out)

        answerer = Answerer.from_settings(settings)
        answerer.search(asked[0])  # builds the BM25 side once, as a running service would have
        retrieval = []
        for question in asked:
            started = time.perf_counter()
            answerer.search(question, k=settings.top_k)
            retrieval.append((time.perf_counter() - started) * 1000)
        print(f"retrieval:           {_percentiles(retrieval)} (target p50 <= 25 ms)", file=out)

        if answers > 0:
            answerer.warm_up()
            model = answerer.chat_model
            if isinstance(model, LocalChatModel):
                print(f"model kernels:       {kernels()}", file=out)
                tally_before = replace(model.tally)
            totals, refused, first_stage, first_token, calls = [], 0, [], [], []
            for question in asked[:answers]:
                seen, trace = _FirstEvents(), Trace()
                response = answerer.answer(ChatRequest(question=question), seen, trace)  # as /v1/chat/stream
                calls += trace.calls
                totals.append(response.timings.total_ms)
                refused += response.refused
                first_stage.append(seen.ms["stage"])
                if "token" in seen.ms:
                    first_token.append(seen.ms["token"])
            print(f"answer (local model): {_percentiles(totals)}, {refused} refused (target p50 <= 6000 ms)",
                  file=out)
            print(f"stream, first stage: {_percentiles(first_stage)} (target <= 100 ms)", file=out)
            print(f"stream, first token: {_percentiles(first_token)} (target <= 2000 ms)", file=out)
            if isinstance(model, LocalChatModel):
                computed = model.tally.computed - tally_before.computed
                cached = model.tally.cached - tally_before.cached
                seconds = (model.tally.computing_ms - tally_before.computing_ms) / 1000
                n = len(totals)
                print(f"prompt tokens:       {computed / n:.0f} computed + {cached / n:.0f} from the cache a question; "
                      f"prefill {computed / seconds:.0f} tokens/s", file=out)
            print(f"prompt tokens a call: {_by_call(calls)}", file=out)
