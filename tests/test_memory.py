"""Memory that stays flat: the answer path over many distinct questions (the stub model server) and a store of
a few hundred articles. It grew by 2-5 MB a question (17 MB with the local model, whose prompt cache kept
every prompt): glibc kept the embedder's freed tensors, each question's of another shape."""

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wordfreq
from helpers import make_settings

from newsqa.ingest.chunking import Chunker
from newsqa.ingest.loaders import load_paths
from newsqa.settings import Settings
from newsqa.store.index import StoredArticle, open_index
from newsqa.store.models import Article

ARTICLES, WARM_UP, MEASURED = 240, 20, 200
STATUS = Path("/proc/self/status")


def made_up_news(path: Path, articles: int = ARTICLES, seed: int = 24) -> list[str]:
    """`articles` stories of made-up people and places, sentences of many lengths (so each question's passages
    are embedded in batches of another shape), written as JSONL; returns one question about each."""
    rng = random.Random(seed)
    words = [w for w in wordfreq.top_n_list("en", 8000)[300:] if w.isalpha() and len(w) > 3]
    syllables = ["kor", "val", "mex", "dri", "tan", "bel", "os", "ric", "zan", "dor", "fen", "lis", "ur", "quin"]

    def name() -> str:
        return "".join(rng.choice(syllables) for _ in range(3)).capitalize()

    questions, records = [], []
    for i in range(articles):
        person, place, thing = name(), name(), rng.choice(words)
        sentences = []
        for _ in range(rng.randint(8, 20)):
            said = rng.sample(words, min(int(rng.lognormvariate(2.8, 0.5)) + 3, 70))
            said.insert(rng.randrange(len(said)), rng.choice([person, place, thing]))
            sentences.append(" ".join(said).capitalize() + ".")
        sentences.insert(rng.randrange(len(sentences)), f"{person} announced the {thing} plan in {place} on Monday.")
        records.append({"id": f"story-{i}", "title": f"{person} opens {thing} plan in {place}",
                        "body": " ".join(sentences), "source": "made-up.example"})
        questions.append(f"When did {person} announce the {thing} plan in {place}?")
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return questions


def store_with_random_vectors(path: Path, settings: Settings) -> None:
    """The articles cut and stored as an ingest would, with random vectors in place of the embedder's: embedding
    a few hundred articles takes minutes on a busy CPU, and what is measured is the server's embedding of
    each question's passages, not the stored vectors (the BM25 side still finds every story)."""
    articles = [a for a in load_paths([path], settings) if isinstance(a, Article)]
    chunker, index = Chunker(settings), open_index(settings)
    cut = {article: chunker.chunks(article) for article in articles}
    chunks = [chunk for article_chunks in cut.values() for chunk in article_chunks]
    vectors = np.random.default_rng(24).normal(size=(len(chunks), 384))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with index.writing():
        index.upsert(chunks, [c.text for c in chunks], vectors.tolist())
        index.record([StoredArticle.of(article, len(article_chunks)) for article, article_chunks in cut.items()])


# The answer function every adapter calls, in a process of its own (its memory is then its own), over the
# store the test made; prints resident memory after the warm-up and after the measured questions, in MB, and
# how many of those the passages were read for.
SOAK = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from helpers import make_settings
from test_memory import WARM_UP, MEASURED, made_up_news
from newsqa.service.answering.answer import Answerer
from newsqa.service.answering.schemas import ChatRequest

def resident_mb():
    return next(int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmRSS:"))

folder = Path(sys.argv[2])
questions = made_up_news(folder / "articles.jsonl")  # the same, drawn again
settings = make_settings(folder / "data", llm_provider="openai", llm_base_url=sys.argv[3] + "/v1")
answerer = Answerer.from_settings(settings)
for question in questions[:WARM_UP]:
    answerer.answer(ChatRequest(question=question))
before = resident_mb()
answers = [answerer.answer(ChatRequest(question=q)) for q in questions[WARM_UP : WARM_UP + MEASURED]]
read = sum(a.refusal_reason != "no_passage" for a in answers)
print(json.dumps({"before": before, "after": resident_mb(), "read": read}))
"""


@pytest.mark.skipif(not STATUS.exists(), reason="reads resident memory from /proc (Linux)")
def test_answering_distinct_questions_keeps_memory_flat(tmp_path, openai_stub):
    made_up_news(tmp_path / "articles.jsonl")
    store_with_random_vectors(tmp_path / "articles.jsonl", make_settings(tmp_path / "data"))

    done = subprocess.run([sys.executable, "-c", SOAK, str(Path(__file__).parent), str(tmp_path), openai_stub.url],
                          capture_output=True, text=True, timeout=1200)

    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout.splitlines()[-1])
    assert measured["read"] > 0.9 * MEASURED  # the passages were read, and embedded sentence by sentence
    grown = (measured["after"] - measured["before"]) / MEASURED
    print(f"\nresident memory after {WARM_UP} questions {measured['before']:.0f} MB, after {MEASURED} more "
          f"{measured['after']:.0f} MB: {grown:.2f} MB a question")
    assert grown < 1.0, f"{measured}: {grown:.2f} MB a question"
