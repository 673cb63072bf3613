"""Words as retrieval and grounding compare them: stemmed, stopwords out, '1,383' == '1383'."""

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache

import Stemmer
import wordfreq

# NLTK's English list (179 words), as chromadb==1.5.9 ships it: the same set bm25s's STOPWORDS_EN_PLUS
# gave before (tests/test_bm25.py checks), with no dependency kept for a word list.
from chromadb.utils.embedding_functions.schemas.bm25_tokenizer import DEFAULT_ENGLISH_STOPWORDS

from newsqa.service.answering.vocabulary import TENS, UNITS

_STEMMER = Stemmer.Stemmer("english")
# Question words and filler carry no evidence: "how many" is in every question and no article.
_STOPWORDS = frozenset(DEFAULT_ENGLISH_STOPWORDS) | {
    "said", "says", "also", "would", "could", "many", "much", "week", "whose"}
# "six months" and "6 months" are the same answer; "hundred" and "million" stay words ("two million": "2", "million").
_NUMBER_WORDS = {w: str(n) for w, n in (UNITS | TENS).items()}
_THOUSANDS = re.compile(r"(?<=\d)[,.](?=\d{3}\b)")
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"”’)]))\s+(?=[\"“‘(]?[A-Z0-9])|\n+")


@lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def fold(text: str) -> str:
    """Lower case without diacritics: 'Rufayí' and 'rufayi' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def terms(text: str) -> list[str]:
    words = _WORD.findall(_THOUSANDS.sub("", fold(text)))
    return [_NUMBER_WORDS.get(w) or _stem(w) for w in words if w not in _STOPWORDS and w != "_"]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


# Documents of ordinary English counted beside the index, and their length in words: on a small index the
# index alone can't tell "leave" (common, weak evidence) from "Valewick" (rare, strong evidence).
BACKGROUND_DOCS = 1000
BACKGROUND_DOC_WORDS = 150


@lru_cache(maxsize=1)
def _english_stem_frequencies() -> dict[str, float]:
    """How often each stem occurs in English text (wordfreq), summed over the words that share it."""
    common = {w: f for w, f in wordfreq.get_frequency_dict("en").items() if f >= 1e-7}  # rarer ones: as if unseen
    frequencies: dict[str, float] = {}
    for stem, frequency in zip(_STEMMER.stemWords(list(common)), common.values(), strict=True):
        frequencies[stem] = frequencies.get(stem, 0.0) + frequency
    return frequencies


class Idf:
    """Inverse document frequency over the indexed chunks (rare here: weighs more), and the weight of a word
    as evidence, which also counts a background of ordinary English."""

    def __init__(self, df: Mapping[str, int], n: int):
        """`df`: how many of the `n` documents hold each term."""
        self.n = max(n, 1)
        self.df = df
        self.english = _english_stem_frequencies()

    @classmethod
    def counted(cls, documents: Iterable[list[str]]) -> "Idf":
        df: Counter[str] = Counter()
        n = 0
        for doc in documents:
            df.update(set(doc))
            n += 1
        return cls(df, n)

    def __call__(self, term: str) -> float:
        return math.log((self.n + 1) / (self.df.get(term, 0) + 0.5))

    def evidence(self, term: str) -> float:
        """Rare in the index and in English alike: 'Valewick' is strong evidence, 'leave' weak, even on a
        small index that has never seen either."""
        in_background = BACKGROUND_DOCS * min(1.0, BACKGROUND_DOC_WORDS * self.english.get(term, 0.0))
        return math.log((self.n + BACKGROUND_DOCS + 1) / (self.df.get(term, 0) + in_background + 0.5))

    def coverage(self, wanted: Iterable[str], present: set[str]) -> float:
        """Share of the wanted terms' evidence found among present terms (1.0 when nothing is wanted)."""
        weights = {t: self.evidence(t) for t in set(wanted)}
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in present) / total if total else 1.0
