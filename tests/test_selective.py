"""Selective answering: the calibrator the product ships, its training, and the replay the ablation rests on."""

import json
import random
import sys

import pytest

from newsqa.eval import calibrate, replay, selective
from newsqa.eval.replay import Policy
from newsqa.service.answering.calibrator import Calibrator, Signals, load
from newsqa.settings import Settings


def signals(verifier: float, **overrides) -> dict:
    base = {"verifier": verifier, "writer": -0.2, "chosen": False, "coverage": 0.8, "support_coverage": 0.8,
            "supports": 2, "support_rank": 1, "kind_asked": True}
    return base | overrides


def row(candidates: list[dict], answers=("Syria",), unanswerable=False, coverage=0.8, key="q") -> dict:
    calls = [{"call": "reply", "ms": 3000.0, "prompt_tokens": 400}, {"call": "verify reply", "ms": 800.0,
             "prompt_tokens": 150}, {"call": "choose", "ms": 1000.0, "prompt_tokens": 480},
             {"call": "verify choice", "ms": 800.0, "prompt_tokens": 150}]
    return {"key": key, "gold": {"answers": list(answers), "unanswerable": unanswerable},
            "timings": {"total_ms": 6000.0},
            "trace": {"coverage": coverage, "options": [], "candidates": candidates, "calls": calls}}


def candidate(answer: str, origin: str, verifier: float, fell: str = "") -> dict:
    return {"answer": answer, "origin": origin, "fell": fell, "signals": signals(verifier)}


PYES = Policy("P(yes)", drop=("writer_logprob", "chosen", "coverage", "support_coverage", "supports",
                              "support_rank_inverse", "kind_asked"))


def by_verifier(c: dict) -> float:
    return c["signals"]["verifier"]


def test_the_shipped_calibrator_is_surer_when_the_verifier_is():
    calibrator = load()
    assert calibrator.confidence(Signals(**signals(0.99))) > calibrator.confidence(Signals(**signals(0.2)))
    threshold = calibrator.threshold(0.9)
    assert dict(calibrator.thresholds)[threshold] >= 0.9  # trained to reach it in cross-validation, not a fallback


def test_the_threshold_is_the_lowest_that_reached_the_precision_asked_for():
    calibrator = Calibrator({}, 0.0, [(0.3, 0.7), (0.5, 0.85), (0.6, 0.9), (0.8, 0.95)])
    assert calibrator.threshold(0.9) == 0.6 and calibrator.threshold(0.5) == 0.3
    assert calibrator.threshold(0.99) == 0.8  # none reached it: the surest answers only


def test_replay_gives_the_first_candidate_that_reaches_the_threshold_and_counts_its_calls():
    traced = row([candidate("Iraq", "reply", 0.95), candidate("Syria", "choice", 0.97)])
    outcome = replay.replay(traced, Policy("all"), by_verifier, 0.9)
    assert outcome.given["answer"] == "Iraq" and [c["call"] for c in outcome.calls] == ["reply", "verify reply"]
    assert outcome.ms == 6000 - 5600 + 3800 and outcome.prompt_tokens == 550
    outcome = replay.replay(traced, Policy("all"), by_verifier, 0.96)  # the reply falls short: the choice
    assert outcome.given["answer"] == "Syria" and len(outcome.calls) == 4 and replay.right(outcome.given, traced)
    assert replay.replay(traced, Policy("no choice", origins=("reply",)), by_verifier, 0.96).given is None


def test_replay_honours_the_kind_check_the_floor_and_the_verifier_switch():
    wrong_kind = row([candidate("Hussein", "reply", 0.99, fell="kind")])
    assert replay.replay(wrong_kind, Policy("all"), by_verifier, 0.5).given is None
    assert replay.replay(wrong_kind, Policy("any kind", kind_check=False), by_verifier, 0.5).given is not None
    thin = row([candidate("Syria", "reply", 0.99)], coverage=0.2)
    outcome = replay.replay(thin, Policy("all"), by_verifier, 0.5)
    assert outcome.given is None and outcome.calls == []  # refused before the model was asked
    assert replay.replay(thin, Policy("no floor", floor=None), by_verifier, 0.5).given is not None
    calls = replay.replay(row([candidate("Syria", "reply", 0.99)]), Policy("no verifier", verifier=False),
                          by_verifier, 0.5).calls
    assert [c["call"] for c in calls] == ["reply"]


def verified_rows(n: int = 120) -> list[dict]:
    """Questions whose one candidate is right 60% of the time, the verifier surer of the right ones."""
    rng = random.Random(7)
    rows = []
    for q in range(n):
        good = rng.random() < 0.6
        verifier = min(0.999, max(0.001, rng.gauss(0.9 if good else 0.4, 0.15)))
        rows.append(row([candidate("Syria" if good else "Iraq", "reply", verifier)], key=f"q{q}"))
    return rows


def test_training_learns_what_separates_right_from_wrong_and_the_precision_each_threshold_reached():
    rows = verified_rows()
    calibrator, confidences = calibrate.train(rows, PYES)
    assert calibrator.weights["verifier_logit"] > 0 and len(confidences) == 120
    precisions = [p for _, p in calibrator.thresholds]
    assert precisions == sorted(precisions)  # a threshold is trusted only where raising it kept its precision
    threshold = calibrator.threshold(0.9)
    confidence = calibrate.scorer(calibrator, PYES)
    given = [r for r in rows if confidence(r["trace"]["candidates"][0]) >= threshold]
    assert sum(replay.right(r["trace"]["candidates"][0], r) for r in given) / len(given) >= 0.85


def test_a_calibrator_the_script_trains_is_one_the_setting_reads(tmp_path, monkeypatch):
    run = tmp_path / "dev-x"
    run.mkdir()
    (run / "rows.jsonl").write_text("".join(json.dumps(r | {"id": r["key"]}) + "\n" for r in verified_rows()))
    monkeypatch.setattr(sys, "argv", ["calibrate", str(run), "--out", str(tmp_path / "mine.json")])
    calibrate.main()
    mine = load(Settings(_env_file=None, calibrator_file=tmp_path / "mine.json").calibrator_file)
    assert mine.weights["verifier_logit"] > 0 and mine.weights != load().weights
    assert dict(mine.thresholds)[mine.threshold(0.9)] >= 0.9


def test_the_risk_coverage_summary():
    points = [selective.Point(0.9, True, True), selective.Point(0.8, True, True), selective.Point(0.7, False, True),
              selective.Point(0.2, False, False)]
    summary = selective.summary(points, n_answerable=4)
    assert summary["coverage@90%"] == 0.5 and summary["coverage@95%"] == 0.5
    assert summary["aurc"] == pytest.approx((0 + 0 + 1 / 3 + 1 / 2) / 4)
    assert summary["reliability"][3] == {"from": 0.8, "n": 2, "right": 1.0}
