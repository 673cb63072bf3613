"""Grounding enforced in code: an answer stands only if a passage states it and addresses the question.

The model cites wrong passage numbers and invents answers the sources can't give, so its citations are
discarded: each answer is re-attached to the sentences that contain it, or refused.
"""

import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from newsqa.service.answering.context import Window
from newsqa.service.answering.gazetteer import is_country, is_state
from newsqa.service.answering.lexical import Idf, split_sentences, terms
from newsqa.service.answering.retrieval import Passage
from newsqa.service.answering.vocabulary import HOW_MUCH, MONTH_ABBREVIATIONS, MONTHS, SCALES, TENS, UNITS, any_of

# Only a reply that is wholly a refusal counts as one: "Unknown gunmen" is an answer.
_NOT_FOUND = re.compile(
    r"\W*(?:not found|unknown|none|no answer|n/?a|no information\b.*"
    r"|(?:it is )?not (?:stated|mentioned|provided|specified|given)\b.*"
    r"|(?:i )?(?:cannot|can't) (?:answer|find|tell)\b.*|(?:the )?passages? do(?:es)?(?: not|n't)\b.*)",
    re.IGNORECASE,
)
_MARKERS = re.compile(r"\s*\[(?:passages?\s*)?\d+(?:\s*[,;–-]\s*(?:passages?\s*)?\d+)*\]", re.IGNORECASE)
# What kind of answer a question asks for, and whether an answer is of that kind ("how many" wants a number).
_ASKS_NUMBER = re.compile(
    rf"\bhow {any_of(HOW_MUCH)}\b"
    r"|\bwhat (?:percentage|number|share|proportion)\b|\bby how much\b", re.IGNORECASE)
_ASKS_TIME = re.compile(r"\bwhen\b|\b(?:what|which) (?:year|day|date|month|time)\b", re.IGNORECASE)
# "\w+teen" was written for thirteen to nineteen; it also takes "umpteen", and "canteen" (kept as it was).
_NUMBER = re.compile(rf"\d|\b(?:{any_of([*UNITS, *TENS, *SCALES])}|\w+teen|dozens?|half|double|twice)\b", re.IGNORECASE)
_TIME = re.compile(
    rf"\d|\b{any_of(MONTHS + MONTH_ABBREVIATIONS)}\b|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b"
    r"|\b(?:today|yesterday|tomorrow|tonight|week|weekend|month|year|spring|summer|autumn|fall|winter|morning|"
    r"afternoon|evening|night|noon|midnight|decade|century|ago)\b", re.IGNORECASE)
_ASKS_COUNTRY = re.compile(r"\b(?:which|what)\s+(?:[\w.-]+\s+){0,2}?(?:country|nation)\b(?!-)", re.IGNORECASE)
_ASKS_STATE = re.compile(r"\b(?:which|what)\s+(?:[\w.-]+\s+){0,2}?state\b(?!-)", re.IGNORECASE)
_SLOTS: list[tuple[re.Pattern[str], Callable[[str], object]]] = [
    (_ASKS_TIME, _TIME.search), (_ASKS_NUMBER, _NUMBER.search), (_ASKS_COUNTRY, is_country),
    (_ASKS_STATE, is_state)]
# "Who ...?", "Whose ...?" and "which champion" want a name or a thing, never a bare figure or day; checked only when
# no other slot applies ("which year" asks for a time). "Who" opens a sentence: ", who was associated" is a clause.
_ASKS_NAME = re.compile(r"(?:^|[.?!]\s+)(?:who|whom|whose)\b|(?<!,\s)\bwhich\b", re.IGNORECASE)
MIN_ANSWER_CONTAINMENT = 0.6  # share of the answer's weighted words a supporting sentence must hold
MAX_CITATIONS = 3


@dataclass(frozen=True)
class Support:
    passage: Passage
    quote: str
    containment: float
    coverage: float


@dataclass(frozen=True)
class Verdict:
    answer: str
    supports: list[Support]
    reason: str | None = None  # why it was refused; None when the answer stands

    @property
    def refused(self) -> bool:
        return self.reason is not None


def clean_answer(raw: str) -> str:
    return _MARKERS.sub("", raw.strip().split("\n")[0]).strip(" \"'.")


def echoes_question(answer: str, question: str, idf: Idf) -> bool:
    """True when the answer names what the question is about (its rarest word), or says nothing the question
    didn't, instead of answering it: "Abdullah Makki Muslih al-Rufayi" echoes "who killed al-Rufayi?", "England"
    echoes "which team did England's coach lead before?"; "al-Sudani" answers."""
    asked, said = set(terms(question)), set(terms(answer))
    if not asked:
        return False
    rarest = max(idf.evidence(t) for t in asked)
    return bool(said) and said <= asked or any(idf.evidence(t) >= rarest for t in said & asked)


def fills_slot(question: str, answer: str) -> bool:
    """A "how many" question wants a number, a "when" question a time and a "which nation" question a country:
    "Harriet Lowe" answers none of them. A "who" question wants a name: "Friday" is none."""
    kinds = [is_kind for asks, is_kind in _SLOTS if asks.search(question)]
    if not kinds and _ASKS_NAME.search(question):
        kinds = [_names_something]
    return all(is_kind(answer) for is_kind in kinds)


def asks_for_kind(question: str) -> bool:
    """The question asks for a number, a time, a country, a state or a name, which fills_slot checks."""
    return any(asks.search(question) for asks, _ in _SLOTS) or bool(_ASKS_NAME.search(question))


def _names_something(answer: str) -> bool:
    """Not a bare figure, date or day: "Friday", "21 May 2025" and "seven" name nothing."""
    words = re.findall(r"[^\W_]+", answer)
    return not all(w.isdigit() or _NUMBER.fullmatch(w) or _TIME.fullmatch(w) for w in words)


def question_coverage(question: str, passage: Passage, idf: Idf, ignore: AbstractSet[str] = frozenset()) -> float:
    """How much of the question's weighted wording the passage (with its headline) mentions."""
    wanted = [t for t in terms(question) if t not in ignore]
    return idf.coverage(wanted, set(terms(passage.headed_text)))


def ground(question: str, raw_answer: str, windows: list[Window], passages: list[Passage], idf: Idf,
           min_coverage: float) -> Verdict:
    """The passages that state the answer and address the question. Whether it is of the kind asked for is
    fills_slot's question, asked by the caller: a quotation need not be."""
    answer = clean_answer(raw_answer)
    if not answer or _NOT_FOUND.fullmatch(answer):
        return Verdict(answer, [], "the model found no answer in the passages")
    question_terms = set(terms(question))
    answer_terms = [t for t in terms(answer) if t not in question_terms] or terms(answer)
    if not answer_terms:
        return Verdict(answer, [], "the answer has no content words to check against the sources")
    # Sentences of the windows the model read, then of the rest of the retrieved text, then adjacent
    # pairs (an answer drawn from two sentences is quoted with both).
    candidates = [(w.passage, s) for w in windows for s in w.sentences]
    candidates += [(p, s) for p in passages for s in split_sentences(p.text)]
    candidates += [(w.passage, pair) for w in windows for pair in w.pairs()]
    supports: dict[str, Support] = {}  # per chunk, the quote that states most of the answer (the first of equals)
    for passage, sentence in candidates:
        containment = idf.coverage(answer_terms, set(terms(sentence)))
        best = supports.get(passage.chunk_id)
        if containment >= MIN_ANSWER_CONTAINMENT and (best is None or containment > best.containment):
            coverage = question_coverage(question, passage, idf, ignore=set(answer_terms))
            supports[passage.chunk_id] = Support(passage, sentence, containment, coverage)
    if not supports:
        return Verdict(answer, [], "no passage states the answer")
    addressing = [s for s in supports.values() if s.coverage >= min_coverage]
    if not addressing:
        return Verdict(answer, [], "the passages that state the answer don't address the question")
    ranked = sorted(addressing, key=lambda s: (s.containment + s.coverage), reverse=True)
    return Verdict(answer, ranked[:MAX_CITATIONS])
