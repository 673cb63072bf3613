"""Kill `newsqa ingest` (SIGKILL) at random moments, re-run it, and check the store holds exactly what the
articles should produce: every article whole in its latest version, no stray or stale chunk.

    python -m newsqa.eval.crash_drill --articles ../shared/eval/realtimeqa-dev/articles.jsonl --kills 20 --limit 60

Rounds alternate between two versions of the corpus (the second has every body edited), so kills land in
first ingests and in updates alike."""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from newsqa.ingest.chunking import Chunker
from newsqa.ingest.loaders import load_paths
from newsqa.settings import Settings
from newsqa.store.check import find_problems
from newsqa.store.index import open_index
from newsqa.store.models import Article


def differences(settings: Settings, articles: Path) -> list[str]:
    """How the store differs from what ingesting `articles` alone should leave: empty when it matches."""
    loaded = [a for a in load_paths([articles], settings) if isinstance(a, Article)]
    chunker = Chunker(settings)
    expected = {c.id for a in loaded for c in chunker.chunks(a)}
    index = open_index(settings, fresh=True)  # other processes wrote it
    stored = {c.id for c in index.all_chunks(with_text=False)}
    found = []
    if missing := expected - stored:
        found.append(f"{len(missing)} chunks missing")
    if extra := stored - expected:
        found.append(f"{len(extra)} stray or stale chunks")
    if {a.id: a.content_hash for a in index.articles().values()} != {a.key: a.content_hash for a in loaded}:
        found.append("article records differ from the articles")
    return found


def write_version(articles: list[Article], path: Path, edit: str) -> Path:
    path.write_text("".join(
        json.dumps({"id": a.id, "title": a.title, "body": a.body + edit, "source": a.source, "url": a.url,
                    "published_at": a.published_iso}) + "\n"
        for a in articles
    ))
    return path


def ingest(articles: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "newsqa", "ingest", str(articles)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def drill(articles: Path, kills: int, seed: int, limit: int | None) -> int:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp) / "data")
        env = {**os.environ, "NEWSQA_DATA_DIR": str(settings.data_dir), "NEWSQA_LOG_LEVEL": "ERROR"}
        loaded = [a for a in load_paths([articles], settings) if isinstance(a, Article)][:limit]
        versions = [write_version(loaded, Path(tmp) / "v1.jsonl", ""),
                    write_version(loaded, Path(tmp) / "v2.jsonl", " (This article was updated.)")]
        started = time.monotonic()
        ingest(versions[1], env).wait()
        full = time.monotonic() - started  # how long a whole write takes: kills land anywhere in it
        print(f"{len(loaded)} articles; a full ingest takes {full:.1f}s\n")
        print("round | version | killed after | after re-ingest | debris the kill left")
        failures = 0
        for n in range(kills):
            version = versions[n % 2]
            at = rng.uniform(0.5, full)
            process = ingest(version, env)
            time.sleep(at)
            process.kill()
            process.wait()
            debris = find_problems(open_index(settings, fresh=True)).summary()
            ingest(version, env).wait()
            found = differences(settings, version)
            failures += bool(found)
            print(f"{n + 1:5} | {version.stem:7} | {at:11.1f}s | {'; '.join(found) or 'whole':15} | {debris}")
        print(f"\n{kills - failures} of {kills} rounds left the store exactly as the articles say")
        return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=Path, required=True)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="Only the first N articles (a full ingest sets each round's length).")
    args = parser.parse_args()
    sys.exit(drill(args.articles, args.kills, args.seed, args.limit))


if __name__ == "__main__":
    main()
