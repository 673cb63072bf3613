"""Build the model's context: the few sentence windows of the retrieved chunks that bear on the question.

Whole chunks cost ~250 prompt tokens each, and prompt tokens are what a CPU pays for; a window of one or
two sentences carries the answer in a fraction of that.
"""

from dataclasses import dataclass

import numpy as np

from newsqa.service.answering.lexical import Idf, split_sentences, terms
from newsqa.service.answering.retrieval import Passage
from newsqa.store.embedding import Embedder
from newsqa.store.models import headed


@dataclass(frozen=True)
class Window:
    passage: Passage
    sentences: tuple[str, ...]
    best: int  # index in `sentences` of the one that scored highest; the window grew around it

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def lead(self) -> str:
        """The best sentence and the one after it: where a story usually says what the question asks."""
        return " ".join(self.sentences[self.best : self.best + 2])

    def pairs(self) -> list[str]:
        return [" ".join(self.sentences[i : i + 2]) for i in range(len(self.sentences) - 1)]


def render_context(windows: list[Window]) -> str:
    """Numbered windows under their article's headline, each headline once: it costs prompt tokens."""
    by_article: dict[str, list[Window]] = {}
    for window in windows:
        by_article.setdefault(window.passage.article_id, []).append(window)
    lines, n = [], 0
    for group in by_article.values():
        meta = group[0].passage.meta
        lines.append(meta.title + (f" ({meta.dateline})" if meta.dateline else ""))
        for window in group:
            n += 1
            lines.append(f"[{n}] {window.text}")
    return "\n".join(lines)


def select_windows(question: str, passages: list[Passage], embedder: Embedder, idf: Idf, n: int,
                   window_chars: int) -> list[Window]:
    """Score every sentence by meaning (read with its headline) and by the rare question words it holds
    itself; grow the best ones into windows."""
    sentences = [(p, i, s) for p in passages for i, s in enumerate(split_sentences(p.text))]
    if not sentences:
        return []
    vectors = embedder.encode([question] + [headed(p.title, s) for p, _, s in sentences])
    similarity = vectors[1:] @ vectors[0]
    wanted = terms(question)
    scores = [
        float(sim) + idf.coverage(wanted, set(terms(s)))
        for (p, _, s), sim in zip(sentences, similarity, strict=True)
    ]
    windows: list[Window] = []
    used: set[tuple[str, int]] = set()
    for k in np.argsort(scores)[::-1]:
        passage, i, _ = sentences[k]
        if (passage.chunk_id, i) in used:
            continue
        siblings = split_sentences(passage.text)
        lo, hi = i, i + 1
        # Widen to the neighbour that scores better until the window holds enough to stand alone.
        while sum(len(s) for s in siblings[lo:hi]) < window_chars and (lo > 0 or hi < len(siblings)):
            before = scores[k - (i - lo) - 1] if lo > 0 else -1.0
            after = scores[k + (hi - i)] if hi < len(siblings) else -1.0
            lo, hi = (lo - 1, hi) if before > after else (lo, hi + 1)
        if any((passage.chunk_id, j) in used for j in range(lo, hi)):
            continue
        used.update((passage.chunk_id, j) for j in range(lo, hi))
        windows.append(Window(passage, tuple(siblings[lo:hi]), i - lo))
        if len(windows) == n:
            break
    return windows
