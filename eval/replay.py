"""The answer path's decision replayed on traced eval rows (`newsqa eval --exhaustive`), for variants of the path.

An exhaustive run judged every candidate: the model's reply and its choice, each grounded, checked for the kind
asked, verified. Replaying the product's rule on those records (the first candidate whose confidence reaches the
threshold is given) answers "what if this step were off?" without another model run: which answer, which model
calls, how many prompt tokens and how long.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from newsqa.eval import measures
from newsqa.service.answering.calibrator import Signals

ORIGINS = ("reply", "choice")  # the order the answer path tries them


@dataclass(frozen=True)
class Policy:
    name: str
    floor: float | None = 0.4  # question coverage below which nothing is generated; None: no floor
    origins: tuple[str, ...] = ORIGINS
    kind_check: bool = True  # an answer must be of the kind asked for (a number for "how many")
    verifier: bool = True  # the verifier's P(yes) is among the calibrator's inputs (else its call is saved)
    drop: tuple[str, ...] = ()  # calibrator inputs left out

    def features(self, signals: dict[str, Any]) -> dict[str, float]:
        features = Signals(**signals).features()
        unused = set(self.drop) | (set() if self.verifier else {"verifier_logit"})
        return {k: v for k, v in features.items() if k not in unused}


@dataclass
class Outcome:
    given: dict[str, Any] | None  # the candidate given, None for a refusal
    calls: list[dict[str, Any]] = field(default_factory=list)
    ms: float = 0.0

    @property
    def prompt_tokens(self) -> int:
        return sum(c["prompt_tokens"] or 0 for c in self.calls)


Confidence = Callable[[dict[str, Any]], float]  # a candidate's record -> calibrated confidence


def judged(candidate: dict[str, Any], policy: Policy) -> bool:
    """The candidate reached the calibrator under this policy: stated by a passage, of the kind asked for when
    that is checked, and given a verdict."""
    falls = candidate["fell"] == "" or candidate["fell"] == "kind" and not policy.kind_check
    return falls and "signals" in candidate and candidate["origin"] in policy.origins


def replay(row: dict[str, Any], policy: Policy, confidence: Confidence, threshold: float) -> Outcome:
    trace, total_ms = row["trace"], row["timings"].get("total_ms", 0.0)
    calls = trace["calls"]
    fixed_ms = total_ms - sum(c["ms"] for c in calls)  # retrieval, windows, grounding: paid by every variant
    if policy.floor is not None and trace["coverage"] < policy.floor:
        return Outcome(None, [], fixed_ms)
    made = [c for c in calls if c["call"] == "rewrite" or c["call"] == "reply" and "reply" in policy.origins]
    given = None
    for origin in policy.origins:
        made += [c for c in calls if c["call"] == "choose"] if origin == "choice" else []
        for candidate in (c for c in trace["candidates"] if c["origin"] == origin):
            if not judged(candidate, policy):
                continue
            made += [c for c in calls if c["call"] == f"verify {origin}"][:1] if policy.verifier else []
            if confidence(candidate) >= threshold:
                given = candidate
                break
        if given:
            break
    return Outcome(given, made, fixed_ms + sum(c["ms"] for c in made))


def right(candidate: dict[str, Any] | None, row: dict[str, Any]) -> bool:
    gold = row["gold"]
    return candidate is not None and not gold["unanswerable"] and bool(
        measures.contains_answer(candidate["answer"], gold["answers"]))


def table(rows: list[dict[str, Any]], outcomes: list[Outcome]) -> dict[str, float | int | None]:
    """Right, wrong, wrongly refused (shares of the answerable), unanswerable refused, precision, calls, tokens."""
    answerable = [(r, o) for r, o in zip(rows, outcomes, strict=True) if not r["gold"]["unanswerable"]]
    unanswerable = [o for r, o in zip(rows, outcomes, strict=True) if r["gold"]["unanswerable"]]
    given = [(r, o) for r, o in zip(rows, outcomes, strict=True) if o.given is not None]
    n = len(answerable)
    return {
        "right": measures.safe_div(sum(right(o.given, r) for r, o in answerable), n),
        "wrong": measures.safe_div(sum(o.given is not None and not right(o.given, r) for r, o in answerable), n),
        "wrongly_refused": measures.safe_div(sum(o.given is None for _, o in answerable), n),
        "unanswerable_refused": sum(o.given is None for o in unanswerable),
        "n_unanswerable": len(unanswerable),
        "precision": measures.safe_div(sum(right(o.given, r) for r, o in given), len(given)),
        "calls": measures.mean([len(o.calls) for o in outcomes]),
        "prompt_tokens": measures.mean([o.prompt_tokens for o in outcomes]),
        "p50_ms": measures.percentile([o.ms for o in outcomes], 50),
    }
