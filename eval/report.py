"""report.json (the record), report.md (for reviews and CI logs) and report.html (charts, for people)."""

import html
import io
import json
import sys
from pathlib import Path
from typing import Any

from newsqa.eval.scoring import K_VALUES

SUMMARY = [  # (section, key, label) in reading order
    (None, "accuracy", "Accuracy (answer correct, or refusal when unanswerable)"),
    *[("retrieval", f"hit@{k}", f"Retrieval hit@{k}") for k in K_VALUES],
    *[("retrieval", f"recall@{k}", f"Retrieval recall@{k}") for k in K_VALUES],
    ("retrieval", "mrr", "Retrieval MRR@10"),
    ("retrieval_incl_heuristic", "hit@5", "Retrieval hit@5, heuristic evidence included"),
    ("answer", "exact_match", "Answer exact match"),
    ("answer", "f1", "Answer token F1"),
    ("answer", "contains", "Answer contains an accepted answer"),
    ("answer", "answered_wrong", "Answered but wrong (share of answerable)"),
    ("refusal", "precision", "Refusal precision"),
    ("refusal", "recall", "Refusal recall"),
    ("refusal", "hallucination_rate", "Hallucination rate (answered an unanswerable)"),
    ("refusal", "wrong_refusal_rate", "Wrong-refusal rate (refused an answerable)"),
    ("citations", "precision", "Citation precision"),
    ("citations", "recall", "Citation recall"),
    ("confidence", "auroc", "Confidence AUROC (right vs wrong answers)"),
    ("confidence", "mean_right", "Confidence, mean over right answers"),
    ("confidence", "mean_wrong", "Confidence, mean over wrong answers"),
    ("prompt_tokens", "mean", "Prompt tokens per question, mean"),
    ("given", "precision", "Given answers right (precision at the threshold)"),
    ("given", "coverage", "Answerable questions answered (coverage at the threshold)"),
    ("selective", "aurc", "AURC (risk-coverage area; lower is better)"),
    ("selective", "coverage@90%", "Coverage at 90% precision"),
    ("selective", "coverage@95%", "Coverage at 95% precision"),
    (None, "oracle", "Oracle (right answer among the candidates and options considered)"),
]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_rows(agg: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for section, key, label in SUMMARY:
        holder = agg if section is None else agg.get(section)
        if holder is not None and key in holder:
            out.append((label, _fmt(holder[key])))
    if reasons := agg.get("refusal_reasons"):
        out.append(("Refusals by reason", ", ".join(f"{reason} {n}" for reason, n in reasons.items())))
    if reliability := agg.get("selective", {}).get("reliability"):
        out.append(("Reliability: at confidence >= c, answers (right share)",
                    ", ".join(f">={r['from']}: {r['n']} ({_fmt(r['right'], 2)})" for r in reliability)))
    for stage, ps in agg.get("latency_ms", {}).items():
        out.append((f"Latency {stage} p50 / p95 (ms)", f"{_fmt(ps['p50'], 0)} / {_fmt(ps['p95'], 0)}"))
    return out


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _row_verdict(row: dict[str, Any]) -> str:
    if row.get("error"):
        return "error"
    if "correct" not in row["scores"]:
        return "—"
    return "ok" if row["scores"]["correct"] else "wrong"


def write_markdown(report: dict[str, Any], path: Path) -> None:
    meta, agg, rows = report["meta"], report["aggregates"], report["rows"]
    lines = [
        f"# Eval report: {Path(meta['questions']).name}",
        "",
        f"- questions: `{meta['questions']}` ({agg['n_questions']} run, {agg['n_errors']} errors, "
        f"{agg['n_flagged']} flagged)",
        f"- articles: `{meta['articles']}`",
        f"- mode: {meta['mode']}{' (retrieval only)' if meta['retrieval_only'] else ''}; "
        f"model: {meta['model']}; git: {meta['git_commit'] or 'unknown'}",
        "",
        "| Metric | Value |",
        "|---|---|",
        *[f"| {label} | {value} |" for label, value in summary_rows(agg)],
        "",
        "## By question type",
        "",
        "| Type | n | Accuracy | hit@5 |",
        "|---|---|---|---|",
        *[
            f"| {t} | {v['n']} | {_fmt(v['accuracy'])} | {_fmt(v['hit@5'])} |"
            for t, v in agg["by_type"].items()
        ],
    ]
    misses = [r for r in rows if _row_verdict(r) in ("wrong", "error")]
    if misses:
        lines += [
            "",
            "## Wrong answers and errors",
            "",
            "| id | question | gold | answer |",
            "|---|---|---|---|",
        ]
        for r in misses:
            gold = "(unanswerable)" if r["gold"]["unanswerable"] else " / ".join(r["gold"]["answers"])
            said = r.get("error") or ("(refused)" if r["refused"] else r["answer"])
            lines.append(f"| {r['id']} | {_cell(r['question'])} | {_cell(gold)} | {_cell(said)} |")
    lost = [r for r in rows if r["scores"]["retrieval"] and not r["scores"]["retrieval"]["hit@10"]]
    if lost:
        lines += ["", "## Gold article not in the top 10", ""]
        lines += [
            f"- `{r['id']}` {r['question']} (gold: {', '.join(r['gold']['evidence_article_ids'])})"
            for r in lost
        ]
    if report["flags"]:
        lines += ["", "## Flagged questions", ""]
        lines += [f"- `{qid}`: {'; '.join(problems)}" for qid, problems in report["flags"].items()]
    if report["input_errors"]:
        lines += ["", "## Skipped input lines", ""] + [f"- {e}" for e in report["input_errors"]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog so it can sit inline


NO_CHARTS = "report.html has no charts: matplotlib is not installed (pip install 'newsqa[eval]')"


def _charts(agg: dict[str, Any], rows: list[dict[str, Any]]) -> list[tuple[str, str]] | None:
    """None without matplotlib, an extra: a long run still ends with its numbers."""
    try:
        import matplotlib
    except ImportError:
        return None

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    charts = []
    by_type = agg["by_type"]
    # retrieval-only runs have no accuracy, so the per-type chart falls back to hit@5
    metric = "accuracy" if any(v["accuracy"] is not None for v in by_type.values()) else "hit@5"
    types = [t for t, v in by_type.items() if v[metric] is not None]
    if types:
        fig, ax = plt.subplots(figsize=(6.5, 0.5 + 0.45 * len(types)))
        values = [by_type[t][metric] for t in types]
        bars = ax.barh([f"{t} (n={by_type[t]['n']})" for t in types], values, color="#4878a8")
        ax.bar_label(bars, fmt="%.2f", padding=3)
        ax.set_xlim(0, 1.1)
        ax.invert_yaxis()
        ax.set_xlabel(metric)
        charts.append((f"{metric.capitalize()} per question type", _svg(fig)))
        plt.close(fig)
    hits = [agg["retrieval"].get(f"hit@{k}") for k in K_VALUES]
    if all(h is not None for h in hits):
        fig, ax = plt.subplots(figsize=(4.5, 2.6))
        bars = ax.bar([f"hit@{k}" for k in K_VALUES], hits, color="#6a9f58")
        ax.bar_label(bars, fmt="%.2f", padding=2)
        ax.set_ylim(0, 1.1)
        charts.append(("Retrieval: gold article in the top k", _svg(fig)))
        plt.close(fig)
    stages = [s for s in ("retrieve", "generate", "total") if s in agg["latency_ms"]]
    if stages:
        data = [
            [r["timings"][f"{s}_ms"] for r in rows if r["timings"].get(f"{s}_ms") is not None] for s in stages
        ]
        fig, ax = plt.subplots(figsize=(6.5, 3))
        ax.hist(data, bins=20, label=stages, histtype="step", linewidth=1.5)
        ax.set_xlabel("milliseconds")
        ax.set_ylabel("questions")
        ax.legend()
        charts.append(("Latency per stage", _svg(fig)))
        plt.close(fig)
    return charts


def write_html(report: dict[str, Any], path: Path) -> None:
    meta, agg, rows = report["meta"], report["aggregates"], report["rows"]
    esc = html.escape
    summary = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in summary_rows(agg))
    if (drawn := _charts(agg, rows)) is None:
        print(NO_CHARTS, file=sys.stderr)
        charts = f"<p>{esc(NO_CHARTS)}</p>"
    else:
        charts = "".join(f"<figure><figcaption>{esc(t)}</figcaption>{svg}</figure>" for t, svg in drawn)
    table = "".join(
        f"<tr class='{_row_verdict(r)}'><td>{esc(r['id'])}</td><td>{esc(r['question'])}</td>"
        f"<td>{esc('(unanswerable)' if r['gold']['unanswerable'] else ' / '.join(r['gold']['answers']))}</td>"
        f"<td>{esc(r.get('error') or ('(refused)' if r['refused'] else r['answer'] or '—'))}</td>"
        f"<td>{_row_verdict(r)}</td></tr>"
        for r in rows
    )
    title = esc(Path(meta["questions"]).name)
    run = (
        f"{agg['n_questions']} questions, mode {esc(meta['mode'])}"
        f"{' (retrieval only)' if meta['retrieval_only'] else ''}, model {esc(meta['model'])}, "
        f"git {esc(meta['git_commit'] or 'unknown')}, finished {esc(meta['finished_at'])}"
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>newsqa eval: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
figure {{ display: inline-block; margin: 1rem 2rem 1rem 0; vertical-align: top; }}
figcaption {{ font-weight: 600; }}
tr.wrong td, tr.error td {{ background: #fbe9e7; }}
tr.ok td {{ background: #eef7ec; }}
</style></head><body>
<h1>newsqa eval: {title}</h1>
<p>{run}.</p>
<table>{summary}</table>
{charts}
<h2>Questions</h2>
<table><tr><th>id</th><th>question</th><th>gold</th><th>answer</th><th>verdict</th></tr>{table}</table>
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def write_all(report: dict[str, Any], out: Path) -> None:
    write_json(report, out / "report.json")
    write_markdown(report, out / "report.md")
    write_html(report, out / "report.html")
