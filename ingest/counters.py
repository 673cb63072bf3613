"""Counters a writer keeps (ingest), next to the API's own (service/api/prometheus.py). A long-running writer
(`newsqa watch --metrics-port N`) serves them for Prometheus; an API process shows them at /metrics."""

from prometheus_client import Counter

INGESTED = Counter("newsqa_ingest_articles_total", "Articles met by ingest, by outcome", ["outcome"])
INGESTED_CHUNKS = Counter("newsqa_ingest_chunks_written_total", "Chunks embedded and stored by ingest")


def count_ingest(added: int, updated: int, unchanged: int, duplicates: int, failed: int, expired: int,
                 chunks: int) -> None:
    for outcome, n in (("added", added), ("updated", updated), ("unchanged", unchanged),
                       ("duplicate", duplicates), ("failed", failed), ("expired", expired)):
        INGESTED.labels(outcome).inc(n)
    INGESTED_CHUNKS.inc(chunks)
