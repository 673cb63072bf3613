"""Candidate answers drawn from the passages the model read: names, figures with their units, dates.

A small model picks the right option far more often than it writes the right answer (0.84 against 0.62 on
the dev set), so an answer it was unsure of is turned into a choice among what the passages actually say.
"""

import re

import wordfreq

from newsqa.service.answering.context import Window
from newsqa.service.answering.lexical import fold
from newsqa.service.answering.vocabulary import HOW_MUCH, MONTH_ABBREVIATIONS, MONTHS, SCALES, TENS, UNITS, any_of

_CONNECTOR = r"(?:of|the|and|for|de|du|van|von|bin|al|el|la|le|&)"
_CAPITAL = r"(?:(?:al|el|bin|ibn)-)?[A-Z][\w'’.-]*"
# "Mohammed Shia al-Sudani", "River Tam", "Bank of England", "Euro 2022"
_NAME = re.compile(rf"\b{_CAPITAL}(?:\s+(?:{_CONNECTOR}\s+)*(?:{_CAPITAL}|\d+\b))*")
_UNIT = (r"(?:%|percent|per cent|(?:square |cubic )?(?:kilo|centi|milli)?met(?:re|er)s?|km|cm|mm|miles?|feet|foot|"
         r"inches|(?:kilo)?grams?|kg|g|tonnes?|tons?|pounds|euros?|dollars|yen|yuan|rupees|degrees|[CF]\b|mph|"
         r"km/h|knots|GB|MB|TB|years?|months?|weeks?|days?|hours?|minutes?|seconds?|people|votes?|seats?|points?|"
         r"homes|households|jobs|units|staff|workers)(?:\s+(?:per|an?)\s+(?:hour|day|week|month|year|second))?")
_SCALE = any_of(SCALES)
# Not "zero": this list never had it, and offering it would change the options the model is shown.
_NUMBER_WORDS = any_of(w for w in (*UNITS, *TENS) if w != "zero")
# "$412 million", "1.5 million euros", "98 kilometres per hour", "nine days", "7–2", "6.5 percent"
_FIGURE = re.compile(
    rf"(?:[$£€]\s?)?\b(?:\d[\d,.]*(?:[–-]\d[\d,.]*)?|{_NUMBER_WORDS}(?:-{_NUMBER_WORDS})?)\b"
    rf"(?:\s+{_SCALE})?(?:\s*{_UNIT}\b)?", re.IGNORECASE)
_MONTH = any_of(MONTHS + MONTH_ABBREVIATIONS) + r"\.?"
# "11 March 2025", "March 11, 2025", "2 June"
_DATE = re.compile(rf"\b(?:\d{{1,2}}\s+{_MONTH}(?:\s+\d{{4}})?|{_MONTH}\s+\d{{1,2}}(?:,\s+\d{{4}})?)\b")
_POSSESSIVE = re.compile(r"['’]s$")
_COMMON_WORD_ZIPF = 4.5  # a lone capitalised word this common is a sentence's first word, not a name


# "Why ...?" and "How did ...?" want a reason or a manner, which no name, figure or date is. "How often" wants a
# frequency, which a figure or date can be ("every 10 minutes"), though not always a number ("daily").
_ASKS_REASON_OR_MANNER = re.compile(rf"^\W*(?:why\b|how\b(?!\s+{any_of((*HOW_MUCH, 'often'))}\b))", re.IGNORECASE)


def answerable_by_candidates(question: str) -> bool:
    return not _ASKS_REASON_OR_MANNER.search(question)


def candidates(windows: list[Window]) -> list[str]:
    """Distinct spans of the windows, in the order the windows rank (best first)."""
    found: dict[str, str] = {}
    for window in windows:
        for sentence in window.sentences:
            for pattern in (_DATE, _NAME, _FIGURE):
                for match in pattern.finditer(sentence):
                    span = _POSSESSIVE.sub("", match.group(0).strip(" ,.;:"))  # "Syria's" names Syria
                    if len(span) > 1 and not (match.start() == 0 and _common_word(span)):
                        found.setdefault(fold(span), span)
    return list(found.values())


def _common_word(span: str) -> bool:
    return " " not in span and wordfreq.zipf_frequency(span.casefold(), "en") >= _COMMON_WORD_ZIPF


def pick(reply: str, options: list[str]) -> str | None:
    """The option the model's reply names (the longest one, so "New Jersey" beats "New"), or None."""
    said = fold(reply)
    named = [o for o in options if fold(o) in said]
    return max(named, key=len) if named else None
