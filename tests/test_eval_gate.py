from newsqa.eval import gate

BASE = {
    "accuracy": 0.60,
    "retrieval": {"n": 40, "hit@5": 0.80, "mrr": 0.50},
    "refusal": {"precision": 0.5, "recall": 0.5, "hallucination_rate": 0.10, "wrong_refusal_rate": None},
    "latency_ms": {"total": {"p50": 1000.0, "p95": 3000.0}},
    "by_type": {"x": {"n": 1, "accuracy": 1.0, "hit@5": 1.0}},
}


def test_drops_within_tolerance_pass_and_larger_ones_fail():
    current = {
        "accuracy": 0.59,  # within 0.02
        "retrieval": {"n": 40, "hit@5": 0.70, "mrr": 0.55},
        "refusal": {"precision": 0.5, "recall": 0.5, "hallucination_rate": 0.20, "wrong_refusal_rate": 0.0},
        "latency_ms": {"total": {"p50": 9000.0, "p95": 9000.0}},  # slower, but latency is not gated
        "by_type": {"x": {"n": 1, "accuracy": 0.0, "hit@5": 0.0}},  # too few questions to gate
    }
    lines, failures = gate.compare(current, BASE, tolerance=0.02)
    assert failures == [
        "refusal.hallucination_rate",
        "retrieval.hit@5",
    ]  # a higher hallucination rate is worse
    assert any(line.startswith("ok") and "retrieval.mrr" in line and "(+0.050)" in line for line in lines)
    assert any(line.startswith("info") and "latency_ms.total.p50" in line for line in lines)
    assert not any("wrong_refusal_rate" in line for line in lines)  # undefined in the baseline


def test_a_retrieval_only_run_compares_only_what_both_measured():
    lines, failures = gate.compare({"retrieval": {"n": 40, "hit@5": 0.81, "mrr": 0.5}}, BASE)
    assert failures == [] and len(lines) == 2


def test_floors():
    assert gate.check_floors(BASE, {"retrieval.hit@5": 0.75}) == []
    assert gate.check_floors(BASE, {"retrieval.hit@5": 0.85}) == [
        "retrieval.hit@5 = 0.800, below the floor 0.850"
    ]
    assert gate.check_floors({}, {"retrieval.hit@5": 0.5}) == [
        "retrieval.hit@5 = not measured, below the floor 0.500"
    ]
