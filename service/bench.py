"""`newsqa bench`: speed figures for the write and read paths, on a throwaway index."""

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import TextIO

from ingest.chunking import Chunker, embedding_text
from ingest.embedding import get_embedder
from ingest.loaders import load_paths
from ingest.models import Article
from ingest.pipeline import ingest_paths
from service.answer import Answerer
from service.schemas import ChatRequest
from service.settings import get_settings


def _percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return f"p50 {statistics.median(values):.0f} ms, p95 {cuts[18]:.0f} ms (n={len(values)})"


def run_bench(articles: Path, questions: Path, answers: int, out: TextIO) -> None:
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-") as tmp:
        settings = get_settings().model_copy(update={"data_dir": Path(tmp), "chroma_host": None})
        embedder = get_embedder(settings.embedding_model_path, settings.embed_batch_size)
        chunker = Chunker(embedder.tokenizer, settings.chunk_tokens, settings.chunk_overlap_tokens)
        loaded = [a for a in load_paths([articles]) if isinstance(a, Article)]
        texts = [embedding_text(c) for a in loaded for c in chunker.chunks(a)]

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

        asked = [json.loads(line)["question"] for line in questions.read_text().splitlines() if line.strip()]
        answerer = Answerer.from_settings(settings)
        answerer.search(asked[0])  # builds the BM25 side once, as a running service would have
        retrieval = []
        for question in asked:
            started = time.perf_counter()
            answerer.search(question, k=settings.top_k)
            retrieval.append((time.perf_counter() - started) * 1000)
        print(f"retrieval:           {_percentiles(retrieval)} (target p50 <= 25 ms)", file=out)

        if answers:
            answerer.warm_up()
            totals, refused = [], 0
            for question in asked[:answers]:
                response = answerer.answer(ChatRequest(question=question))
                totals.append(response.timings.total_ms)
                refused += response.refused
            print(f"answer (local model): {_percentiles(totals)}, {refused} refused (target p50 <= 6000 ms)",
                  file=out)
