"""Each step of the answer path switched off in turn, judged on a validation run: what pays, what goes.

    python -m newsqa.eval.ablation --train DEV_RUN [GOLD_RUN ...] --judge VALIDATION_RUN [--precision 0.9]

All runs are `newsqa eval --exhaustive` runs. For each variant a calibrator is trained on the --train runs with
that variant's inputs (eval/calibrate.py), its threshold taken for the target precision, and the product's rule
replayed on the --judge run (eval/replay.py). Latency is the run's own (retrieval and the rest) plus the model
calls the variant makes, as timed in the run.
"""

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from newsqa.eval import calibrate, replay
from newsqa.eval.replay import Policy

SHIPPED = Policy("all steps (shipped)")
SIGNALS = ("writer_logprob", "chosen", "coverage", "support_coverage", "supports", "support_rank_inverse",
           "kind_asked")
VARIANTS = [
    SHIPPED,
    replace(SHIPPED, name="no verifier (calibrator without P(yes))", verifier=False),
    replace(SHIPPED, name="verifier's P(yes) alone, calibrated", drop=SIGNALS),
    replace(SHIPPED, name="no choice step (the reply only)", origins=("reply",)),
    replace(SHIPPED, name="no reply (the choice only)", origins=("choice",)),
    replace(SHIPPED, name="no kind check", kind_check=False),
    replace(SHIPPED, name="no coverage floor before generation", floor=None),
    replace(SHIPPED, name="coverage floor 0.3", floor=0.3),
    replace(SHIPPED, name="coverage floor 0.5", floor=0.5),
]
OLD_GATE = 0.92  # main before the calibrator: the verifier's P(yes) at or above this was given


def variant_row(policy: Policy, train_rows: list[dict[str, Any]], judge_rows: list[dict[str, Any]],
                precision: float) -> dict[str, Any]:
    calibrator, _ = calibrate.train(train_rows, policy)
    threshold = calibrator.threshold(precision)
    outcomes = [replay.replay(r, policy, calibrate.scorer(calibrator, policy), threshold) for r in judge_rows]
    return {"variant": policy.name, "threshold": threshold} | replay.table(judge_rows, outcomes)


def old_gate_row(judge_rows: list[dict[str, Any]]) -> dict[str, Any]:
    outcomes = [replay.replay(r, SHIPPED, lambda c: c["signals"]["verifier"], OLD_GATE) for r in judge_rows]
    return {"variant": f"uncalibrated: P(yes) >= {OLD_GATE} (main before)", "threshold": OLD_GATE} | replay.table(
        judge_rows, outcomes)


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| variant | threshold | right | wrong | wrongly refused | unanswerable refused | precision | calls | "
            "prompt tokens | p50 s |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['threshold']:.2f} | {r['right']:.3f} | {r['wrong']:.3f} | "
            f"{r['wrongly_refused']:.3f} | {r['unanswerable_refused']}/{r['n_unanswerable']} | "
            f"{r['precision'] if r['precision'] is None else round(r['precision'], 3)} | {r['calls']:.2f} | "
            f"{r['prompt_tokens']:.0f} | {r['p50_ms'] / 1000:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", nargs="+", type=Path, required=True)
    parser.add_argument("--judge", type=Path, required=True)
    parser.add_argument("--precision", type=float, default=0.9)
    args = parser.parse_args()
    train_rows, judge_rows = calibrate.load_rows(args.train), calibrate.load_rows([args.judge])
    rows = [variant_row(p, train_rows, judge_rows, args.precision) for p in VARIANTS] + [old_gate_row(judge_rows)]
    print(markdown(rows))


if __name__ == "__main__":
    main()
