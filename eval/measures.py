"""Pure scoring functions: answer normalisation, answer/retrieval/refusal/citation metrics, percentiles."""

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from newsqa.service.answering.vocabulary import SCALES, TENS, UNITS

ARTICLES = {"a", "an", "the"}
# "hundred" multiplies within a group ("three hundred"); these close one ("three hundred thousand").
_SCALES = {w: value for w, value in SCALES.items() if w != "hundred"}
_NUMBER_WORDS = UNITS.keys() | TENS.keys() | SCALES.keys()
_DIGITS = re.compile(r"\d+(?:\.\d+)?")


def _is_number(tok: str) -> bool:
    return tok in _NUMBER_WORDS or bool(_DIGITS.fullmatch(tok))


def _format_number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _numbers_to_digits(tokens: list[str]) -> list[str]:
    """Collapse runs like "two million", "twenty seven", "1.5 billion", "a hundred" into one digit token."""
    tokens, out = list(tokens), []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        # "a hundred"/"a million": the article stands for one
        if tok == "a" and i + 1 < len(tokens) and (tokens[i + 1] in _SCALES or tokens[i + 1] == "hundred"):
            tokens[i] = tok = "one"
        if not _is_number(tok) or tok in _SCALES or tok == "hundred":
            out.append(tok)
            i += 1
            continue
        total, current, last = 0.0, 0.0, ""
        while i < len(tokens):
            tok = tokens[i]
            if _DIGITS.fullmatch(tok):
                if last:  # two numerals in a row ("2021 2022") are two numbers
                    break
                current, last = float(tok), "digit"
            elif tok in UNITS:
                if last in ("digit", "unit"):
                    break
                current, last = current + UNITS[tok], "unit"
            elif tok in TENS:
                if last in ("digit", "unit", "tens"):
                    break
                current, last = current + TENS[tok], "tens"
            elif tok == "hundred":
                current, last = (current or 1) * 100, "hundred"
            elif tok in _SCALES:
                total, current, last = total + (current or 1) * _SCALES[tok], 0.0, "scale"
            elif (
                tok == "and" and last == "hundred" and i + 1 < len(tokens) and tokens[i + 1] in _NUMBER_WORDS
            ):
                pass  # "one hundred and five"
            else:
                break
            i += 1
        out.append(_format_number(total + current))
    return out


def normalize_tokens(text: str) -> list[str]:
    """Tokens compared by every answer metric.

    Citation markers, case, diacritics, punctuation and articles are ignored, and numbers become digits so "1,383",
    "six"/"6", "twenty-seven"/"27" and "$2 million"/"two million" compare equal.
    """
    text = re.sub(r"\[\d+\]", " ", text)  # citation markers are not part of the answer
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("%", " percent ").replace("&", " and ")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # thousands separators
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", "", text)  # "u.s." -> "us", but keep "5.9"
    text = re.sub(r"['’]s\b", "", text)  # possessive: "sudani's" -> "sudani"
    text = re.sub(r"['’‘`]", "", text)  # "o'neill" -> "oneill"
    text = re.sub(r"[^\w.]+|_", " ", text)
    return [t for t in _numbers_to_digits(text.split()) if t not in ARTICLES]


def normalize(text: str) -> str:
    return " ".join(normalize_tokens(text))


def _either_order(accepted: Iterable[str]) -> Iterator[list[str]]:
    """Each accepted answer's tokens, and a pair's the other way round: "Sweden and Finland" is also
    "Finland and Sweden"."""
    for answer in accepted:
        tokens = normalize_tokens(answer)
        yield tokens
        if tokens.count("and") == 1 and 0 < (i := tokens.index("and")) < len(tokens) - 1:
            yield tokens[i + 1 :] + ["and"] + tokens[:i]


def exact_match(prediction: str, accepted: Iterable[str]) -> float:
    pred = normalize_tokens(prediction)
    return float(any(pred == gold for gold in _either_order(accepted)))


def token_f1(prediction: str, accepted: Iterable[str]) -> float:
    pred = normalize_tokens(prediction)
    best = 0.0
    for answer in accepted:
        gold = normalize_tokens(answer)
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def _contains_tokens(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def contains_answer(text: str, accepted: Iterable[str]) -> float:
    """1.0 when an accepted answer (a pair in either order) appears as a whole-token run inside text ("in 1994"
    holds "1994")."""
    tokens = normalize_tokens(text)
    return float(any(_contains_tokens(tokens, gold) for gold in _either_order(accepted)))


_LETTER = re.compile(r"^\s*(?:option\s+)?\(?([a-e])\s*(?:[).:]|$)", re.IGNORECASE)


def pick_choice(answer: str, choices: Sequence[str]) -> int | None:
    """Index of the option an answer names: a leading letter ("B)", "b"), else the longest option in it."""
    letter = _LETTER.match(answer)
    if letter and ord(letter.group(1).lower()) - ord("a") < len(choices):
        return ord(letter.group(1).lower()) - ord("a")
    contained = [(len(normalize_tokens(c)), i) for i, c in enumerate(choices) if contains_answer(answer, [c])]
    return max(contained)[1] if contained else None


def rank_articles(article_ids: Iterable[str]) -> list[str]:
    """Passages arrive ranked and several share an article: keep each article at its best rank."""
    return list(dict.fromkeys(article_ids))


def hit_at_k(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return float(any(a in gold for a in ranked[:k]))


def recall_at_k(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return len(gold.intersection(ranked[:k])) / len(gold) if gold else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: set[str]) -> float:
    return next((1 / rank for rank, a in enumerate(ranked, 1) if a in gold), 0.0)


def overlaps(quote: str, evidence: str, threshold: float = 0.6) -> bool:
    """A cited quote and a gold evidence text share most of the shorter one's tokens.

    Quotes are sentence windows and evidence facts are sentences or paraphrases of the same article,
    so exact containment would be too strict.
    """
    q, e = set(normalize_tokens(quote)), set(normalize_tokens(evidence))
    shorter = min(len(q), len(e))
    return shorter >= 3 and len(q & e) / shorter >= threshold


def supports(quote: str, accepted: Sequence[str], evidence_texts: Sequence[str]) -> bool:
    """A citation supports the answer when its quote holds an accepted answer or the gold evidence."""
    return bool(contains_answer(quote, accepted)) or any(overlaps(quote, e) for e in evidence_texts)


def safe_div(num: float, den: float) -> float | None:
    """None instead of a misleading 0 when a metric has no denominator (e.g. no unanswerable questions)."""
    return num / den if den else None


def mean(values: Sequence[float]) -> float | None:
    return safe_div(sum(values), len(values))


def refusal_metrics(refused: Sequence[bool], unanswerable: Sequence[bool]) -> dict[str, float | None]:
    tp = sum(r and u for r, u in zip(refused, unanswerable, strict=True))
    n_unanswerable = sum(unanswerable)
    n_answerable = len(unanswerable) - n_unanswerable
    return {
        "precision": safe_div(tp, sum(refused)),
        "recall": safe_div(tp, n_unanswerable),
        "hallucination_rate": safe_div(n_unanswerable - tp, n_unanswerable),
        "wrong_refusal_rate": safe_div(sum(refused) - tp, n_answerable),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """Chance that a random positive scores above a random negative (ties count half); None without both."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))
