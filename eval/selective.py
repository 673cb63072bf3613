"""Selective answering as the field measures it: what each question's answer was worth at its confidence.

Every question contributes its selected candidate (the answer given, else the surest one refused) with that
candidate's calibrated confidence and whether it is right (an answer to an unanswerable question never is).
Sorting them by confidence traces the risk–coverage curve: answering the k surest, what share is right (precision)
and what share of the answerable questions is answered (coverage).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from newsqa.eval import measures

PRECISIONS = (0.9, 0.95)
RELIABILITY_FROM = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass(frozen=True)
class Point:
    confidence: float
    right: bool
    answerable: bool


def selected(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The candidate given, else the surest refused one; None when none reached the verifier and calibrator."""
    scored = [c for c in candidates if c.get("confidence") is not None and c.get("fell") == ""]
    given = [c for c in scored if c.get("given")]
    return given[0] if given else max(scored, key=lambda c: c["confidence"], default=None)


def in_reach(trace: dict[str, Any], accepted: Sequence[str]) -> bool:
    """The right answer was among what the path considered: a candidate, or an option offered for the choice."""
    seen = [c["answer"] for c in trace["candidates"]] + trace["options"]
    return any(measures.contains_answer(s, accepted) for s in seen)


def curve(points: Sequence[Point], n_answerable: int) -> list[tuple[float, float, float]]:
    """(confidence, coverage, precision) answering the surest first, one row per question added."""
    out: list[tuple[float, float, float]] = []
    right = answered = 0
    for p in sorted(points, key=lambda p: p.confidence, reverse=True):
        right += p.right
        answered += p.answerable
        out.append((p.confidence, answered / n_answerable if n_answerable else 0.0, right / (len(out) + 1)))
    return out


def summary(points: Sequence[Point], n_answerable: int) -> dict[str, Any]:
    """AURC (mean risk over the curve: lower is better), and the coverage reached at each target precision."""
    rows = curve(points, n_answerable)
    out: dict[str, Any] = {"n": len(rows), "aurc": measures.mean([1 - precision for _, _, precision in rows])}
    for target in PRECISIONS:
        reaching = [coverage for _, coverage, precision in rows if precision >= target]
        out[f"coverage@{target:.0%}"] = max(reaching, default=0.0)
    out["reliability"] = []  # of the answers at confidence >= c, the share right: at least about c if calibrated
    for c in RELIABILITY_FROM:
        above = [p.right for p in points if p.confidence >= c]
        out["reliability"].append({"from": c, "n": len(above), "right": measures.mean(above)})
    return out
