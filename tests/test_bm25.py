"""The incremental BM25 ranks as a whole rebuild would, and as bm25s (which it replaced) does; the
stopwords are still bm25s's."""

import random

import bm25s
import numpy as np
import pytest
from bm25s.stopwords import STOPWORDS_EN_PLUS

from newsqa.service.answering import lexical
from newsqa.service.answering.bm25 import MAX_SEGMENTS, Bm25

VOCABULARY = [f"w{i}" for i in range(300)]


def corpus(n: int, seed: int, shortest: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(VOCABULARY))]  # a few common words, many rare ones
    return [rng.choices(VOCABULARY, weights=weights, k=rng.randint(shortest, 40)) for _ in range(n)]


QUERIES = [["w3", "w40"], ["w1"], ["w250", "w7", "w7"], ["w120", "absent"]]


def ranking(bm25: Bm25, names: list[int], query: list[str]) -> list[tuple[int, float]]:
    return [(names[p], round(score, 4)) for p, score in bm25.top(query, 10)]


def test_adding_and_removing_documents_ranks_as_rebuilding_from_the_live_ones():
    documents = corpus(400, seed=1)
    bm25, names = Bm25.of(documents[:200]), list(range(200))  # names: the document at each position
    removed: set[int] = set()
    merges = 0
    for round_ in range(MAX_SEGMENTS + 4):
        added = range(200 + round_ * 15, 215 + round_ * 15)
        gone = np.array([p for p, name in enumerate(names) if name % 17 == round_ and name not in removed])
        removed |= {names[p] for p in gone}
        bm25, kept = bm25.updated([documents[n] for n in added], gone).merged()
        names = names + list(added)
        if kept is not None:
            names, merges = [names[p] for p in kept], merges + 1
        assert len(bm25.segments) <= MAX_SEGMENTS
    live = [n for n in range(200 + (MAX_SEGMENTS + 4) * 15) if n not in removed]
    rebuilt = Bm25.of([documents[n] for n in live])
    assert merges and bm25.size == len(live)
    for query in QUERIES:
        assert ranking(bm25, names, query) == ranking(rebuilt, live, query)


@pytest.mark.parametrize("query", QUERIES)
def test_ranks_as_bm25s(query):
    documents = corpus(300, seed=2, shortest=1)  # bm25s counts an empty document as one word long
    reference = bm25s.BM25()
    reference.index(documents, show_progress=False)
    ids, scores = reference.retrieve([query], k=10, show_progress=False, n_threads=1)
    expected = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
    got = Bm25.of(documents).top(query, 10)
    assert [p for p, _ in got] == [p for p, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], rel=1e-5)


def test_an_earlier_generation_still_answers_once_a_later_one_added_words():
    """A question is answered from the generation it started on while the store follower derives the next one,
    which adds its new words to the vocabulary they share."""
    earlier = Bm25.of([["iraqi", "intelligence"], ["syria", "minister"]])
    later = earlier.updated([["okafor", "scored", "twice"]], np.zeros(0, np.int64))
    assert earlier.top(["who", "scored", "twice"], 5) == []
    assert earlier.top(["scored", "intelligence"], 5) == [(0, pytest.approx(earlier.top(["intelligence"], 5)[0][1]))]
    assert [p for p, _ in later.top(["scored"], 5)] == [2]


def test_the_stopword_list_is_bm25s_english_plus():
    assert set(lexical.DEFAULT_ENGLISH_STOPWORDS) == set(STOPWORDS_EN_PLUS)
