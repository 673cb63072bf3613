"""Regression gate: per-metric deltas against a baseline report.json, and absolute floors for CI."""

import json
from pathlib import Path
from typing import Any

from newsqa.errors import UsageError

DEFAULT_TOLERANCE = 0.02  # absolute; about one question in 50
# Quality metrics compared by the gate. Counts, per-type splits and latency are printed only:
# latency depends on the machine, and per-type numbers rest on too few questions.
GATED_SECTIONS = ("retrieval", "retrieval_incl_heuristic", "answer", "refusal", "citations")
LOWER_IS_BETTER = {"refusal.hallucination_rate", "refusal.wrong_refusal_rate", "answer.answered_wrong"}


def flatten(aggregates: dict[str, Any]) -> dict[str, float]:
    """{"retrieval.hit@5": 0.8, "accuracy": 0.5, ...} for the gated metrics that have a value."""
    flat: dict[str, float] = {}
    if aggregates.get("accuracy") is not None:
        flat["accuracy"] = aggregates["accuracy"]
    for section in GATED_SECTIONS:
        for name, value in (aggregates.get(section) or {}).items():
            if name != "n" and value is not None:
                flat[f"{section}.{name}"] = value
    return flat


def _latency(aggregates: dict[str, Any]) -> dict[str, float]:
    return {
        f"latency_ms.{stage}.{p}": v
        for stage, ps in (aggregates.get("latency_ms") or {}).items()
        for p, v in ps.items()
        if v is not None
    }


def compare(
    current: dict[str, Any], baseline: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE
) -> tuple[list[str], list[str]]:
    """Delta lines for every metric both runs have, and the names of metrics that got worse than tolerance."""
    cur, base = flatten(current), flatten(baseline)
    lines, failures = [], []
    for name in sorted(cur.keys() & base.keys()):
        delta = cur[name] - base[name]
        worse = -delta if name in LOWER_IS_BETTER else delta
        failed = worse < -tolerance - 1e-9
        if failed:
            failures.append(name)
        mark = "FAIL" if failed else "ok"
        lines.append(f"{mark:4}  {name:40} {base[name]:8.3f} -> {cur[name]:8.3f}  ({delta:+.3f})")
    cur_lat, base_lat = _latency(current), _latency(baseline)
    for name in sorted(cur_lat.keys() & base_lat.keys()):
        delta = cur_lat[name] - base_lat[name]
        lines.append(f"info  {name:40} {base_lat[name]:8.0f} -> {cur_lat[name]:8.0f}  ({delta:+.0f} ms)")
    return lines, failures


def load_baseline(path: Path) -> dict[str, Any]:
    """The aggregates of an earlier report.json."""
    try:
        aggregates = json.loads(path.read_text(encoding="utf-8"))["aggregates"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UsageError(f"baseline {path} is not a report.json of newsqa eval ({exc})") from None
    if not isinstance(aggregates, dict):
        raise UsageError(f"baseline {path} is not a report.json of newsqa eval (no aggregates)")
    return aggregates


def check_floors(aggregates: dict[str, Any], floors: dict[str, float]) -> list[str]:
    """Messages for each metric below its floor; a metric the run did not measure also fails."""
    flat = flatten(aggregates)
    failures = []
    for name, floor in floors.items():
        value = flat.get(name)
        if value is None or value < floor:
            shown = "not measured" if value is None else f"{value:.3f}"
            failures.append(f"{name} = {shown}, below the floor {floor:.3f}")
    return failures
