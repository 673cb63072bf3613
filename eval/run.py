"""`newsqa eval`: run gold questions through the API's answer function against an isolated index.

Rows are appended to <out>/rows.jsonl as each question finishes, so an interrupted run continues
with resume=True; report.json/.md/.html are written from all rows at the end.
"""

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock
from tqdm import tqdm

import newsqa.ingest as ingest
import newsqa.store as store
from newsqa.errors import UsageError
from newsqa.eval import gate, report
from newsqa.eval.datasets import GoldQuestion, load_articles, load_questions, resolve_evidence
from newsqa.eval.measures import rank_articles
from newsqa.eval.scoring import K_VALUES, aggregate, score_row
from newsqa.ingest.loaders import article_files
from newsqa.ingest.pipeline import ingest_paths
from newsqa.service.answering.answer import Answerer, Trace
from newsqa.service.answering.prompts import prompts_root
from newsqa.service.answering.schemas import ChatRequest, ChatResponse
from newsqa.settings import Settings

MODES = ("open", "choices")
SEARCH_K = 50  # passages fetched for retrieval metrics; deduped to articles, of which the top 10 count
INDEX_SETTINGS = ("chunk_tokens", "chunk_overlap_tokens", "embedding_model_path", "collection")


class Backend(Protocol):
    """What eval needs from service.answer.Answerer; tests pass a fake."""

    def answer(self, req: ChatRequest, *, trace: Trace | None = None) -> ChatResponse: ...

    def search(self, question: str, filters: Any = None, k: int = 10) -> list[Any]: ...


def _sha256(path: Traversable) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def index_key(articles: Path, settings: Settings) -> str:
    """Hash of the article bytes, the index settings and the ingest code that turns one into the other."""
    h = hashlib.sha256()
    if articles.is_dir():  # the files ingest would read, as it walks a folder
        for f in article_files(articles):
            h.update(str(f.relative_to(articles)).encode() + b"\0" + f.read_bytes())
    else:
        h.update(articles.read_bytes())
    h.update(json.dumps({k: str(getattr(settings, k)) for k in INDEX_SETTINGS}, sort_keys=True).encode())
    for f in sorted(p for package in (ingest, store) for p in Path(package.__path__[0]).glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build_index(articles: Path, settings: Settings, key: str) -> Settings:
    """Settings for <data_dir>/eval-index/<key>, ingesting the articles there unless a run already did."""
    index_dir = settings.data_dir / "eval-index" / key
    # an embedded store under index_dir, never a shared Chroma server: the eval index must not leak
    isolated = settings.model_copy(update={"data_dir": index_dir, "chroma_host": None})
    index_dir.mkdir(parents=True, exist_ok=True)
    complete = index_dir / ".complete"  # written last, so a crashed build is redone, not reused
    with FileLock(str(index_dir.parent / f"{key}.lock")):
        if complete.exists():
            print(f"reusing eval index {index_dir}", file=sys.stderr)
        else:
            print(f"building eval index {index_dir}", file=sys.stderr)
            print(ingest_paths([articles], isolated, progress=True).line(), file=sys.stderr)
            complete.write_text(datetime.now(UTC).isoformat(), encoding="utf-8")
    return isolated


def run_question(q: GoldQuestion, backend: Backend, mode: str, retrieval_only: bool) -> dict[str, Any]:
    """One row of report.json. A failing backend call is recorded on the row instead of ending the run."""
    row: dict[str, Any] = {
        "id": q.id,
        "question": q.question,
        "question_type": q.question_type,
        "source": q.source,
        "gold": {
            "answers": q.answers,
            "unanswerable": q.unanswerable,
            "choices": q.choices,
            "answer_index": q.answer_index,
            "evidence_article_ids": sorted(q.evidence_ids()),
            "heuristic_article_ids": sorted(q.evidence_ids(include_heuristic=True) - q.evidence_ids()),
        },
        "answer": None,
        "confidence": None,
        "refused": None,
        "refusal_reason": None,
        "citations": [],
        "retrieved": [],
        "timings": {},
        "usage": {},
        "trace": None,
        "error": None,
    }
    try:
        start = time.perf_counter()
        # the plain question, in either mode, so retrieval numbers compare across modes
        passages = backend.search(q.question, k=SEARCH_K)
        search_ms = (time.perf_counter() - start) * 1000
        row["retrieved"] = rank_articles(p.article_id for p in passages)[: max(K_VALUES)]
        if retrieval_only:
            row["timings"] = {"retrieve_ms": search_ms, "total_ms": search_ms}
        else:
            choices = q.choices if mode == "choices" else None
            trace = Trace()
            resp = backend.answer(ChatRequest(question=q.question, choices=choices, history=q.history, as_of=q.as_of),
                                  trace=trace)
            row["trace"] = asdict(trace)
            row["answer"], row["refused"], row["confidence"] = resp.answer, resp.refused, resp.confidence
            row["refusal_reason"] = resp.refusal_reason
            row["citations"] = [
                c.model_dump(include={"n", "article_id", "chunk_id", "quote"}) for c in resp.citations
            ]
            row["timings"] = resp.timings.model_dump()
            row["usage"] = resp.usage.model_dump()
    except Exception as e:  # noqa: BLE001 - one bad question must not cost the whole run
        row["error"] = f"{type(e).__name__}: {e}"
    row["scores"] = score_row(q, mode, row["retrieved"], row["answer"], row["refused"], row["citations"],
                              row["trace"])
    return row


def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the line being written when the run was killed
    return rows


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent  # inside the checkout when run from one
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None  # not a checkout, or no commit yet
    return head + ("-dirty" if dirty else "")


def _safe_settings(settings: Settings) -> dict[str, Any]:
    dumped = settings.model_dump(mode="json")
    return {k: v for k, v in dumped.items() if not any(s in k for s in ("key", "token", "secret"))}


def _prompts(settings: Settings) -> list[str]:
    """Prompt file names with a short content hash, so a changed prompt shows between two reports."""
    root = prompts_root(settings.prompts_dir)
    files = sorted((p for p in root.iterdir() if p.is_file() and p.name.endswith(".txt")), key=lambda p: p.name)
    return [f"{p.name}@{_sha256(p)[:8]}" for p in files]


def run_eval(
    *,
    settings: Settings,
    questions: Path,
    articles: Path,
    out: Path | None = None,
    limit: int | None = None,
    mode: str = "open",
    retrieval_only: bool = False,
    baseline: Path | None = None,
    resume: bool = False,
    min_hit_at_5: float | None = None,
    tolerance: float = gate.DEFAULT_TOLERANCE,
    backend: Backend | None = None,
    exhaustive: bool = False,
) -> int:
    """Run the eval: 0 pass, 1 a metric fell below the baseline or the floor; bad usage raises UsageError."""
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    for label, path in (("questions", questions), ("articles", articles), ("baseline", baseline)):
        if path is not None and not path.exists():
            raise UsageError(f"{label} file {path} does not exist")
    baseline_agg = gate.load_baseline(baseline) if baseline else None

    gold, question_errors = load_questions(questions)
    gold = gold[:limit] if limit is not None else gold
    article_texts, article_errors = load_articles(articles, settings)
    input_errors = [str(e) for e in question_errors] + article_errors
    for e in input_errors:
        print(f"skipped {e}", file=sys.stderr)
    flags = resolve_evidence(gold, article_texts)
    if not gold:
        raise UsageError(f"no usable questions in {questions}")

    key = index_key(articles, settings)
    out = (
        out
        or settings.data_dir
        / "eval-runs"
        / f"{questions.stem}-{mode}{'-retrieval' if retrieval_only else ''}"
    )
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = {
        "questions_sha256": _sha256(questions),
        "index_key": key,
        "mode": mode,
        "retrieval_only": retrieval_only,
        "exhaustive": exhaustive,
    }
    run_file, rows_file = out / "run.json", out / "rows.jsonl"
    done: dict[str, dict[str, Any]] = {}
    if resume and run_file.exists():
        if json.loads(run_file.read_text(encoding="utf-8")) != fingerprint:
            raise UsageError(
                f"{out} holds a run of other questions, articles or options; drop --resume or pick --out"
            )
        done = {r["id"]: r for r in _read_rows(rows_file) if not r.get("error")}  # errored ones are retried
    elif rows_file.exists():
        print(f"starting afresh in {out} (pass --resume to continue the earlier run)", file=sys.stderr)
    run_file.write_text(json.dumps(fingerprint), encoding="utf-8")
    rows_file.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in done.values()), encoding="utf-8"
    )

    if backend is None:
        backend = Answerer.from_settings(build_index(articles, settings, key), exhaustive=exhaustive)

    started, commit = datetime.now(UTC).isoformat(), _git_commit()  # the code that runs, not what is there later
    todo = [q for q in gold if q.id not in done]
    with (
        rows_file.open("a", encoding="utf-8") as sink,
        tqdm(total=len(gold), initial=len(gold) - len(todo), desc="eval", unit="q", file=sys.stderr) as bar,
    ):
        for q in todo:
            row = run_question(q, backend, mode, retrieval_only)
            done[q.id] = row
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
            bar.update()

    rows = [done[q.id] | {"flags": flags.get(q.id, [])} for q in gold]
    agg = aggregate(rows, {q.id: q for q in gold})
    full = {
        "meta": {
            "questions": str(questions),
            "articles": str(articles),
            "mode": mode,
            "retrieval_only": retrieval_only,
            "limit": limit,
            "index_key": key,
            "model": f"{settings.llm_provider}/{settings.llm_model}",
            "prompts": _prompts(settings),
            "git_commit": commit,
            "settings": _safe_settings(settings),
            "started_at": started,
            "finished_at": datetime.now(UTC).isoformat(),
        },
        "aggregates": agg,
        "flags": flags,
        "input_errors": input_errors,
        "rows": rows,
    }
    report.write_all(full, out)

    print("\n".join(f"{label:60} {value}" for label, value in report.summary_rows(agg)))
    print(f"report: {out / 'report.html'}")
    failures: list[str] = []
    if baseline_agg is not None:
        lines, regressed = gate.compare(agg, baseline_agg, tolerance)
        print(f"\nagainst baseline {baseline} (tolerance {tolerance}):\n" + "\n".join(lines))
        failures += [f"{name} dropped by more than {tolerance}" for name in regressed]
    if min_hit_at_5 is not None:
        failures += gate.check_floors(agg, {"retrieval.hit@5": min_hit_at_5})
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0
