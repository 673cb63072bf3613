"""`newsqa`: the command line, a thin adapter over ingest and the answer function."""

import json
import logging
import sys
import warnings
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from service.settings import get_settings

warnings.filterwarnings("ignore", message=r".*langchain_community.*")
app = typer.Typer(no_args_is_help=True, add_completion=False, help="Question answering over news, with citations.")


def _setup_logging() -> None:
    logging.basicConfig(level=get_settings().log_level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "bm25s", "sentence_transformers", "transformers", "chromadb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


@app.command()
def ingest(paths: Annotated[list[Path], typer.Argument(help="Files or folders of articles.")]) -> None:
    """Load articles (.txt .md .json .jsonl .html) into the index; unchanged ones cost nothing."""
    from ingest.index import IndexLocked
    from ingest.pipeline import ingest_paths

    _setup_logging()
    try:
        summary = ingest_paths(paths, get_settings())
    except IndexLocked as exc:
        raise _fail(str(exc)) from None
    for error in summary.errors:
        typer.secho(f"failed: {error}", fg="yellow", err=True)
    typer.echo(summary.line())
    if summary.failed and not (summary.added or summary.updated or summary.unchanged):
        raise typer.Exit(1)


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        raise _fail(f"--{name} must be a date like 2025-03-14, not {value!r}") from None


@app.command()
def ask(
    question: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's response object.")] = False,
    source: Annotated[list[str] | None, typer.Option(help="Only this source (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="Only articles published on/after this date.")] = None,
    until: Annotated[str | None, typer.Option(help="Only articles published on/before this date.")] = None,
    top_k: Annotated[int | None, typer.Option(help="Passages to retrieve.")] = None,
) -> None:
    """Answer a question from the indexed articles, with numbered citations."""
    from pydantic import ValidationError

    from service.answer import Answerer
    from service.schemas import ChatRequest, Filters

    _setup_logging()
    try:
        filters = Filters(sources=source or None, since=_parse_day(since, "since"), until=_parse_day(until, "until"))
        request = ChatRequest(question=question, filters=filters, top_k=top_k)
    except ValidationError as exc:
        raise _fail("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    try:
        response = Answerer.from_settings(get_settings()).answer(request)
    except Exception as exc:  # the model or its server failed: one clear line, as the API's 503 says
        raise _fail(f"the answering model is unavailable: {type(exc).__name__}: {exc}", 1) from None
    if as_json:
        typer.echo(response.model_dump_json(indent=2))
        return
    typer.echo(response.answer)
    for c in response.citations:
        dateline = ", ".join(x for x in (c.source, c.published_at) if x)
        typer.echo(f"\n[{c.n}] {c.title}" + (f" ({dateline})" if dateline else ""))
        if c.url:
            typer.echo(f"    {c.url}")
        typer.echo(f'    "{c.quote}"')


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API (POST /v1/chat, /healthz, /readyz, /docs)."""
    import uvicorn

    _setup_logging()
    typer.echo(f"newsqa API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run("service.api:app", host=host, port=port, log_level=get_settings().log_level.lower())


@app.command()
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Articles and chunks in the index."""
    from ingest.pipeline import open_index

    index = open_index(get_settings())
    figures = {"articles": len(index.article_hashes()), "chunks": index.count(),
               "data_dir": str(get_settings().data_dir)}
    typer.echo(json.dumps(figures) if as_json else "\n".join(f"{k}: {v}" for k, v in figures.items()))


@app.command("eval")
def evaluate(
    questions: Annotated[Path, typer.Option(help="Gold questions (.jsonl): the dev set's or eval/gold format.")],
    articles: Annotated[Path, typer.Option(help="Articles to index (file or folder).")],
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    mode: Annotated[str, typer.Option(help="open, or choices (score the picked option).")] = "open",
    retrieval_only: Annotated[bool, typer.Option(help="Score retrieval only; no model.")] = False,
    baseline: Annotated[Path | None, typer.Option(help="Earlier report.json to compare against.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    min_hit_at_5: Annotated[float | None, typer.Option(help="Fail below this gold hit@5.")] = None,
    tolerance: Annotated[float, typer.Option(help="Allowed drop per metric vs the baseline.")] = 0.02,
) -> None:
    """Run a gold set through the answer function; write report.json/.md/.html."""
    from eval.run import main

    _setup_logging()
    raise typer.Exit(main(questions, articles, out, limit, mode, retrieval_only, baseline, resume,
                          min_hit_at_5, tolerance))


@app.command()
def slack() -> None:
    """Run the Slack bot over Socket Mode (no public URL needed; needs SLACK_APP_TOKEN)."""
    from service.answer import Answerer
    from service.slack import run_socket_mode

    _setup_logging()
    settings = get_settings()
    try:
        run_socket_mode(settings, Answerer.from_settings(settings).answer)
    except ValueError as exc:
        raise _fail(str(exc)) from None


@app.command()
def bench(
    articles: Annotated[Path, typer.Option(help="Corpus to ingest (file or folder).")],
    questions: Annotated[Path, typer.Option(help="Questions (.jsonl with a 'question' field).")],
    answers: Annotated[int, typer.Option(help="Questions to answer with the model.")] = 10,
) -> None:
    """Print ingest, re-ingest, retrieval and answer speed figures on a throwaway index."""
    from service.bench import run_bench

    _setup_logging()
    run_bench(articles, questions, answers, out=sys.stdout)
