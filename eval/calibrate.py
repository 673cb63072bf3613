"""Train the answer path's calibrator (service/answering/calibrator.json) on traced eval runs.

    python -m newsqa.eval.calibrate RUN_DIR [RUN_DIR ...] [--out PATH]

Each RUN_DIR holds the rows.jsonl of a `newsqa eval --exhaustive` run (the dev set and the project's gold sets;
never the validation set, which judges the result). Every candidate the verifier judged is an example, right
when it contains an accepted answer of an answerable question. A logistic regression over Signals.features(),
cross-validated by question, gives each candidate an out-of-fold confidence; replaying the answer path's rule on
those gives the precision each threshold reached, from which the product picks the threshold for
NEWSQA_TARGET_PRECISION.
"""

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from newsqa.eval import measures, replay
from newsqa.eval.replay import Policy
from newsqa.service.answering.calibrator import Calibrator

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "service" / "answering" / "calibrator.json"
FOLDS = 5
THRESHOLDS = [round(t, 2) for t in np.arange(0.05, 1.0, 0.01)]
MIN_ANSWERS = 30  # a precision over fewer answers is noise (±5 points at 0.9): such thresholds are not offered


def load_rows(run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    rows = []
    for run in run_dirs:
        for line in (run / "rows.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("trace") and not row.get("error"):
                rows.append(row | {"key": f"{run}:{row['id']}"})
    return rows


Example = tuple[dict[str, Any], dict[str, Any]]  # a judged candidate of a trace, and its row


def examples(rows: list[dict[str, Any]], policy: Policy) -> list[Example]:
    return [(c, r) for r in rows for c in r["trace"]["candidates"] if replay.judged(c, policy)]


def fit(found: list[Example], policy: Policy) -> Calibrator:
    """Logistic regression on standardised features, folded back into weights on the raw features."""
    names = list(policy.features(found[0][0]["signals"]))
    x = np.array([[policy.features(c["signals"])[n] for n in names] for c, _ in found])
    y = np.array([replay.right(c, r) for c, r in found])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant input (its std off zero by rounding alone) would get a huge weight
    model = LogisticRegression(C=1.0).fit((x - mean) / scale, y)
    weights = model.coef_[0] / scale
    intercept = float(model.intercept_[0] - (weights * mean).sum())
    return Calibrator(dict(zip(names, (round(float(w), 6) for w in weights), strict=True)), round(intercept, 6), [])


def scorer(calibrator: Calibrator, policy: Policy) -> replay.Confidence:
    def confidence(candidate: dict[str, Any]) -> float:
        features = policy.features(candidate["signals"])
        z = calibrator.intercept + sum(w * features[n] for n, w in calibrator.weights.items())
        return float(1 / (1 + np.exp(-z)))
    return confidence


def out_of_fold(rows: list[dict[str, Any]], policy: Policy) -> dict[int, float]:
    """Each judged candidate's confidence (keyed by id() of its record) from a calibrator that never saw its
    question."""
    found = examples(rows, policy)
    groups = [r["key"] for _, r in found]
    confidences: dict[int, float] = {}
    for train, test in GroupKFold(FOLDS).split(found, groups=groups):
        confidence = scorer(fit([found[i] for i in train], policy), policy)
        confidences |= {id(found[i][0]): confidence(found[i][0]) for i in test}
    return confidences


def precision_by_threshold(rows: list[dict[str, Any]], policy: Policy,
                           confidences: dict[int, float]) -> list[tuple[float, float]]:
    """(threshold, precision its given answers reached), where each precision is the least reached at that
    threshold or any higher one: a threshold is trusted only if raising it never fell below its figure."""
    reached = []
    for t in THRESHOLDS:
        outcomes = [replay.replay(r, policy, lambda c: confidences[id(c)], t) for r in rows]
        given = [(r, o) for r, o in zip(rows, outcomes, strict=True) if o.given is not None]
        if len(given) < MIN_ANSWERS:
            break
        reached.append((t, sum(replay.right(o.given, r) for r, o in given) / len(given)))
    floor, out = 1.0, []
    for t, precision in reversed(reached):
        floor = min(floor, precision)
        out.append((t, round(floor, 4)))
    return sorted(out)


def train(rows: list[dict[str, Any]], policy: Policy) -> tuple[Calibrator, dict[int, float]]:
    """The calibrator fitted on every example, with the thresholds its out-of-fold confidences reached."""
    confidences = out_of_fold(rows, policy)
    full = fit(examples(rows, policy), policy)
    return Calibrator(full.weights, full.intercept, precision_by_threshold(rows, policy, confidences)), confidences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rows = load_rows(args.runs)
    policy = Policy("shipped")
    calibrator, confidences = train(rows, policy)
    found = examples(rows, policy)
    right = [confidences[id(c)] for c, r in found if replay.right(c, r)]
    wrong = [confidences[id(c)] for c, r in found if not replay.right(c, r)]
    auroc = measures.auroc(right, wrong)
    summary = {"trained_on": [run.name for run in args.runs], "questions": len(rows), "candidates": len(found),
               "cross_validated_auroc": None if auroc is None else round(auroc, 4)}
    args.out.write_text(json.dumps(summary | asdict(calibrator), indent=1) + "\n", encoding="utf-8")  # as load() reads
    print(json.dumps(summary | {"weights": calibrator.weights, "intercept": calibrator.intercept}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
