"""Per-question scores and run aggregates, as plain JSON-ready dicts (the rows of report.json)."""

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from newsqa.eval import measures, selective
from newsqa.eval.datasets import GoldQuestion
from newsqa.service.answering.schemas import Timings

K_VALUES = (1, 5, 10)
STAGES = tuple(name.removesuffix("_ms") for name in Timings.model_fields)  # "retrieve", "generate", "total"


def retrieval_scores(ranked: Sequence[str], gold: set[str]) -> dict[str, float] | None:
    if not gold:  # unanswerable, or every evidence article missing: nothing to find
        return None
    scores = {f"hit@{k}": measures.hit_at_k(ranked, gold, k) for k in K_VALUES}
    scores |= {f"recall@{k}": measures.recall_at_k(ranked, gold, k) for k in K_VALUES}
    scores["mrr"] = measures.reciprocal_rank(ranked, gold)
    return scores


def score_row(
    q: GoldQuestion,
    mode: str,
    ranked: Sequence[str],
    answer: str | None,
    refused: bool | None,
    citations: list[dict[str, Any]],
    trace: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Scores of one question; answer is None in retrieval-only runs. Marks each citation's `supports`. With the
    answer path's trace: the selected candidate's confidence and rightness, and whether the right answer was in
    reach."""
    scores: dict[str, Any] = {
        "retrieval": retrieval_scores(ranked, q.evidence_ids()),
        "retrieval_incl_heuristic": retrieval_scores(ranked, q.evidence_ids(include_heuristic=True)),
    }
    if answer is None:
        return scores
    said = "" if refused else answer
    if q.unanswerable:
        scores["correct"] = bool(refused)
    else:
        contains = measures.contains_answer(said, q.answers)
        scores["answer"] = {
            "exact_match": measures.exact_match(said, q.answers),
            "f1": measures.token_f1(said, q.answers),
            "contains": contains,
            "answered_wrong": float(not refused and not contains),  # the costly error: wrong, and cited
        }
        scores["correct"] = bool(scores["answer"]["contains"])
    if mode == "choices" and q.choices:
        pick = None if refused else measures.pick_choice(answer, q.choices)
        scores["choice"] = pick
        if not q.unanswerable:
            scores["correct"] = pick is not None and pick == q.answer_index
    if trace is not None:
        if chosen := selective.selected(trace["candidates"]):
            right = not q.unanswerable and bool(measures.contains_answer(chosen["answer"], q.answers))
            scores["selected"] = {"confidence": chosen["confidence"], "right": right}
        if not q.unanswerable:
            scores["in_reach"] = selective.in_reach(trace, q.answers)
    for c in citations:
        c["supports"] = measures.supports(c["quote"], q.answers, q.evidence_texts)
    if not refused and not q.unanswerable:  # citation quality is only defined for answers that should exist
        scores["citations"] = {
            "precision": measures.safe_div(sum(c["supports"] for c in citations), len(citations)),
            "supported": any(c["supports"] for c in citations),
        }
    return scores


def _mean_of(dicts: list[dict[str, float]]) -> dict[str, float | None]:
    keys = dicts[0].keys() if dicts else ()
    return {k: measures.mean([d[k] for d in dicts]) for k in keys}


def aggregate(rows: list[dict[str, Any]], questions: dict[str, GoldQuestion]) -> dict[str, Any]:
    """Run-level metrics. Errored rows are counted, not scored. None means "no questions to measure"."""
    ok = [r for r in rows if not r.get("error")]
    answered_runs = [r for r in ok if r["answer"] is not None]
    agg: dict[str, Any] = {
        "n_questions": len(rows),
        "n_errors": len(rows) - len(ok),
        "n_flagged": sum(bool(r["flags"]) for r in rows),
        "n_unanswerable": sum(questions[r["id"]].unanswerable for r in ok),
    }
    for name in ("retrieval", "retrieval_incl_heuristic"):
        scored = [r["scores"][name] for r in ok if r["scores"][name]]
        agg[name] = {"n": len(scored), **_mean_of(scored)}
    if answered_runs:
        answer_scores = [r["scores"]["answer"] for r in answered_runs if "answer" in r["scores"]]
        agg["answer"] = {"n": len(answer_scores), **_mean_of(answer_scores)}
        agg["accuracy"] = measures.mean([r["scores"]["correct"] for r in answered_runs])
        agg["refusal"] = measures.refusal_metrics(
            [r["refused"] for r in answered_runs], [questions[r["id"]].unanswerable for r in answered_runs]
        )
        cited = [r for r in answered_runs if "citations" in r["scores"]]
        # pooled over every citation, so an answer with many citations weighs more, as a reader sees it
        pooled = [c["supports"] for r in cited for c in r["citations"]]
        agg["citations"] = {
            "n": len(cited),
            "precision": measures.mean(pooled),
            "recall": measures.mean([r["scores"]["citations"]["supported"] for r in cited]),
        }
        agg["confidence"] = _confidence(answered_runs)
        agg |= _selective(answered_runs, questions)
        agg["refusal_reasons"] = dict(Counter(r.get("refusal_reason") or "unrecorded"
                                              for r in answered_runs if r["refused"]).most_common())
        # what a question costs on a CPU: the tokens the model read, over all its calls (0 = never called)
        tokens = [r.get("usage", {}).get("prompt_tokens", 0) for r in answered_runs]
        agg["prompt_tokens"] = {"mean": measures.mean(tokens), "p95": measures.percentile(tokens, 95)}
    agg["latency_ms"] = {
        stage: {
            "p50": measures.percentile(values, 50),
            "p95": measures.percentile(values, 95),
        }
        for stage in STAGES
        if (
            values := [r["timings"][f"{stage}_ms"] for r in ok if r["timings"].get(f"{stage}_ms") is not None]
        )
    }
    agg["by_type"] = _by_type(ok)
    return agg


def _confidence(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """How well the model's own confidence separates right answers from wrong ones, over answered questions."""
    scored = [r for r in rows if not r["refused"] and r.get("confidence") is not None]
    right = [r["confidence"] for r in scored if r["scores"]["correct"]]
    wrong = [r["confidence"] for r in scored if not r["scores"]["correct"]]
    return {"n": len(scored), "auroc": measures.auroc(right, wrong),
            "mean_right": measures.mean(right), "mean_wrong": measures.mean(wrong)}


def _selective(rows: list[dict[str, Any]], questions: dict[str, GoldQuestion]) -> dict[str, Any]:
    """The risk–coverage summary over the traced questions, the answers given at the threshold, and the oracle."""
    traced = [r for r in rows if "in_reach" in r["scores"] or "selected" in r["scores"]]
    if not traced:
        return {}
    answerable = [r for r in traced if not questions[r["id"]].unanswerable]
    points = [selective.Point(s["confidence"], s["right"], not questions[r["id"]].unanswerable)
              for r in traced if (s := r["scores"].get("selected"))]
    given = [r for r in traced if not r["refused"]]
    return {
        "selective": selective.summary(points, len(answerable)),
        "given": {"precision": measures.mean([r["scores"]["correct"] and not questions[r["id"]].unanswerable
                                              for r in given]),
                  "coverage": measures.safe_div(sum(not r["refused"] for r in answerable), len(answerable))},
        "oracle": measures.mean([r["scores"]["in_reach"] for r in answerable]),
    }


def _by_type(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["question_type"]].append(r)
    out = {}
    for qtype, group in sorted(groups.items()):
        hits = [r["scores"]["retrieval"]["hit@5"] for r in group if r["scores"]["retrieval"]]
        correct = [r["scores"]["correct"] for r in group if "correct" in r["scores"]]
        out[qtype] = {"n": len(group), "accuracy": measures.mean(correct), "hit@5": measures.mean(hits)}
    return out
