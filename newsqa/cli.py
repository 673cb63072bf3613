"""`newsqa`: the command line, the top of the house. It is an adapter over ingest, the answer function and
eval; nothing imports it. Failures a user can act on (newsqa.errors) end in one plain line and their exit
code; anything else is a bug and keeps its traceback."""

import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import ValidationError

from newsqa.errors import NewsqaError
from newsqa.eval.gate import DEFAULT_TOLERANCE
from newsqa.logs import configure_logging
from newsqa.settings import Settings, get_settings
from newsqa.store.models import dateline

if TYPE_CHECKING:
    from newsqa.service.answering.schemas import Citation

warnings.filterwarnings("ignore", message=r".*langchain_community.*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but \t \n, DEL, C1 (CSI, OSC)
app = typer.Typer(no_args_is_help=True, add_completion=False, help="Question answering over news, with citations.")


def _fail(message: str, code: int) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'value'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    )


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except NewsqaError as exc:
        _fail(str(exc), exc.exit_code)


def _settings() -> Settings:
    """This process's settings, with logging set up from them; a bad variable ends in one line."""
    with _user_errors():
        settings = get_settings()
    configure_logging(settings)
    return settings


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders of articles.")] = None,
    feed: Annotated[list[str] | None, typer.Option(help="RSS or Atom feed url (repeatable).")] = None,
    url: Annotated[list[str] | None, typer.Option(help="Web page url of one article (repeatable).")] = None,
    feeds: Annotated[Path | None, typer.Option(help="Feeds file (TOML or YAML), as `watch` reads.")] = None,
) -> None:
    """Load articles (.txt .md .json .jsonl .html, feeds, web pages) into the index; unchanged ones cost nothing."""
    from newsqa.ingest.feeds import feed_configs, read_feeds_file
    from newsqa.ingest.pipeline import ingest_paths
    from newsqa.ingest.refresh import ingest_urls, refresh_feeds

    if not (paths or feed or url or feeds):
        _fail("name what to ingest: files or folders, --feed, --url or --feeds", 2)
    settings = _settings()
    stored_any = failed_any = False
    with _user_errors():
        subscribed = feed_configs(feed or []) + (read_feeds_file(feeds) if feeds else [])
        summaries = ([ingest_paths(paths, settings)] if paths else []) + ([ingest_urls(url, settings)] if url else [])
        for summary in summaries:
            for error in summary.errors:
                typer.secho(f"failed: {error}", fg="yellow", err=True)
            typer.echo(summary.line())
            stored_any |= bool(summary.added or summary.updated or summary.unchanged)
            failed_any |= bool(summary.failed)
        for report in refresh_feeds(subscribed, settings):
            for error in report.errors:
                typer.secho(f"failed: {error}", fg="yellow", err=True)
            typer.echo(report.line())
            stored_any |= bool(report.new or report.updated or report.unchanged or report.not_modified)
            failed_any |= bool(report.failed)
    if failed_any and not stored_any:
        raise typer.Exit(1)


@app.command()
def watch(
    feeds: Annotated[Path | None, typer.Option(help="Feeds file (TOML or YAML); default NEWSQA_FEEDS_FILE.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve ingest counters for Prometheus on this "
                                                          "port (127.0.0.1).")] = None,
) -> None:
    """Refresh the feeds on their schedule in the foreground; Ctrl-C or SIGTERM stops it between items."""
    import threading

    from prometheus_client import start_http_server

    from newsqa.ingest.feeds import read_feeds_file
    from newsqa.ingest.watch import stop_on_signals
    from newsqa.ingest.watch import watch as run_watch

    settings = _settings()
    if metrics_port:
        start_http_server(metrics_port, addr="127.0.0.1")
    stop = threading.Event()
    with _user_errors(), stop_on_signals(stop):
        run_watch(read_feeds_file(feeds or settings.feeds_file), settings, stop)


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        _fail(f"--{name} must be a date like 2025-03-14, not {value!r}", 2)


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
    from newsqa.service.answering.answer import Answerer
    from newsqa.service.answering.schemas import ChatRequest, Filters

    settings = _settings()
    try:
        filters = Filters(sources=source or None, since=_parse_day(since, "since"), until=_parse_day(until, "until"))
        request = ChatRequest(question=question, filters=filters, top_k=top_k)
    except ValidationError as exc:
        _fail(_validation_message(exc), 2)
    with _user_errors():
        answerer = Answerer.from_settings(settings)
        if answerer.store.current().empty:  # say where we looked: the data dir is relative to where you are
            typer.secho(f"note: no articles are indexed in {settings.data_dir.resolve()} (NEWSQA_DATA_DIR)",
                        fg="yellow", err=True)
        progress = None if as_json else _terminal_progress()
        try:
            response = answerer.answer(request, progress)
        finally:
            if progress:
                typer.echo("\r\033[2K", nl=False, err=True)  # the progress line goes; the answer stays
    if as_json:
        typer.echo(response.model_dump_json(indent=2))
        return
    typer.echo(_shown(response.answer))
    for c in response.citations:
        _print_passage(f"[{c.n}] ", c)
    if response.related:  # a refusal: unnumbered, as no [n] in the answer points at them
        typer.echo("\nClosest passages (none of them states an answer):")
        for c in response.related:
            _print_passage("- ", c)


def _print_passage(lead: str, c: "Citation") -> None:
    line = dateline(c.source, c.published_at)
    typer.echo(_shown(f"\n{lead}{c.title}" + (f" ({line})" if line else "")))
    if c.url:
        typer.echo(_shown(f"    {c.url}"))
    quote = " ".join(c.quote.split())  # a whole passage has paragraph breaks: one indented line
    typer.echo(_shown(f'    "{quote}"'))


def _shown(text: str) -> str:
    """Stored text made safe for a terminal: an article's escape sequences could clear the screen, retitle the
    window or hide lines, so control characters other than newline and tab print as U+FFFD."""
    return _CONTROL.sub("\ufffd", text)


_STAGES = {"rewriting": "reading the conversation", "retrieving": "searching the articles",
           "generating": "writing", "verifying": "checking the answer against the passages"}


def _terminal_progress() -> Callable[[str, dict], None] | None:
    """On a terminal, one line on stderr that follows the answer's stages and the model's draft."""
    if not sys.stderr.isatty():
        return None
    draft: list[str] = []

    def show(event: str, data: dict) -> None:
        if event == "token":
            draft.append(data["text"])
            line = "draft: " + " ".join("".join(draft).split())[-60:]
        elif data["stage"] == "retrieving" and data["passages"] is not None:
            line = f"found {data['passages']} passages"
        else:
            line = _STAGES[data["stage"]]
        typer.echo(f"\r\033[2K{line}…", nl=False, err=True)

    return show


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Processes answering on that port; use a Chroma server "
                                         "(NEWSQA_CHROMA_HOST) so they share one store.")] = 1,
) -> None:
    """Run the HTTP API (POST /v1/chat, /healthz, /readyz, /docs)."""
    import uvicorn

    from newsqa.service.api.app import create_app
    from newsqa.service.api.prometheus import share_between_workers
    from newsqa.store.index import open_index

    settings = _settings()
    with _user_errors():
        open_index(settings)  # a store built with other settings is refused now, not at the first question
    typer.echo(f"newsqa API on http://{host}:{port} with {workers} worker(s)  (docs: http://{host}:{port}/docs)")
    log_level = settings.log_level.lower()
    with _user_errors():
        # log_config=None: uvicorn's lines go through our handler (request ids, JSON); SIGTERM stops accepting
        # and gives in-flight answers the grace period before the store is closed. proxy_headers=False: uvicorn
        # would believe X-Forwarded-For from 127.0.0.1; NEWSQA_TRUSTED_PROXIES alone says whose to believe.
        if workers == 1:
            uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, log_config=None,
                        proxy_headers=False, timeout_graceful_shutdown=settings.shutdown_grace_s)
        else:  # each worker process builds its own app from the same environment
            share_between_workers(settings.data_dir)
            uvicorn.run("newsqa.service.api.app:app_from_environment", factory=True, workers=workers, host=host,
                        port=port, log_level=log_level, log_config=None, proxy_headers=False,
                        timeout_graceful_shutdown=settings.shutdown_grace_s)


@app.command()
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Articles and chunks in the index."""
    from newsqa.store.index import open_index

    settings = _settings()
    with _user_errors():
        index = open_index(settings)
        figures = {"articles": len(index.articles()), "chunks": index.count(),
                   "data_dir": str(settings.data_dir.resolve())}
    typer.echo(json.dumps(figures) if as_json else "\n".join(f"{k}: {v}" for k, v in figures.items()))


@app.command()
def check(repair: Annotated[bool, typer.Option("--repair", help="Fix what is found.")] = False) -> None:
    """Find what an interrupted ingest or removal left behind (stray chunks, incomplete articles)."""
    from newsqa.store.check import adopt_legacy, find_problems
    from newsqa.store.check import repair as repair_store
    from newsqa.store.index import open_index, writer_lock

    settings = _settings()
    with _user_errors(), writer_lock(settings):  # an embedded store's write under way looks like damage
        index = open_index(settings)
        adopt_legacy(index)
        problems = find_problems(index)
        typer.echo(problems.summary())
        if problems and repair:
            repair_store(index, problems)
            typer.echo("repaired")
    if problems and not repair:
        raise typer.Exit(1)


@app.command()
def remove(
    article_ids: Annotated[list[str] | None, typer.Argument(help="Article ids (a citation's article_id).")] = None,
    source: Annotated[str | None, typer.Option(help="Every article of this outlet.")] = None,
    before: Annotated[str | None, typer.Option(help="Every article published before this date.")] = None,
) -> None:
    """Remove articles from the index, each whole."""
    from newsqa.ingest.removal import remove_articles

    if not (article_ids or source or before):
        _fail("name what to remove: article ids, --source or --before", 2)
    settings = _settings()
    with _user_errors():
        removed = remove_articles(settings, article_ids or [], source, _parse_day(before, "before"))
    missing = sorted(set(article_ids or []) - set(removed))
    for article_id in missing:
        typer.secho(f"not found: {article_id}", fg="yellow", err=True)
    typer.echo(f"removed {len(removed)} articles")


@app.command("settings")
def settings_text(
    env_example: Annotated[bool, typer.Option("--env-example", help="Print .env.example.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's settings table.")] = False,
) -> None:
    """Print every setting with its default and meaning, as .env.example or the README's table."""
    from newsqa.settings_docs import env_example as example_text
    from newsqa.settings_docs import markdown as markdown_text

    if env_example == markdown:
        _fail("name one of --env-example or --markdown", 2)
    typer.echo(example_text() if env_example else markdown_text(), nl=False)


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
    tolerance: Annotated[float, typer.Option(help="Allowed drop per metric vs the baseline.")] = DEFAULT_TOLERANCE,
    exhaustive: Annotated[bool, typer.Option(help="Judge every candidate answer, not only up to the first that "
                                             "stands, so eval/ablation.py can replay each variant of the answer "
                                             "path (slower; the answers given are the same).")] = False,
) -> None:
    """Run a gold set through the answer function; write report.json/.md/.html."""
    from newsqa.eval.run import run_eval

    settings = _settings()
    with _user_errors():
        code = run_eval(
            settings=settings, questions=questions, articles=articles, out=out, limit=limit, mode=mode,
            retrieval_only=retrieval_only, baseline=baseline, resume=resume, min_hit_at_5=min_hit_at_5,
            tolerance=tolerance, exhaustive=exhaustive,
        )
    raise typer.Exit(code)


@app.command()
def slack() -> None:
    """Run the Slack bot over Socket Mode (no public URL needed; needs SLACK_APP_TOKEN)."""
    from newsqa.service.answering.answer import Answerer
    from newsqa.service.serving import Service
    from newsqa.service.slack.app import run_socket_mode
    from newsqa.store.index import open_index

    settings = _settings()
    with _user_errors():
        open_index(settings)  # a store built with other settings is refused now, not at the first question
        answerer = Answerer.from_settings(settings)
        answerer.store.follow()
        try:
            run_socket_mode(settings, Service(answerer, settings).answer)  # the API's queue and deadline
        finally:
            answerer.store.close()


@app.command()
def bench(
    articles: Annotated[Path, typer.Option(help="Corpus to ingest (file or folder).")],
    questions: Annotated[Path, typer.Option(help="Questions (.jsonl with a 'question' field).")],
    answers: Annotated[int, typer.Option(help="Questions to answer with the model.")] = 10,
    scale: Annotated[bool, typer.Option(help="Retrieval and index updates at 10k and 100k chunks made from the "
                                              "articles, embedded store and Chroma server side by side.")] = False,
    sizes: Annotated[str, typer.Option(help="With --scale: chunk counts, comma-separated.")] = "10000,100000",
    server: Annotated[bool, typer.Option(help="With --scale: measure a Chroma server too.")] = True,
) -> None:
    """Print speed figures on a throwaway index: ingest, re-ingest, retrieval and answers; or, with --scale,
    retrieval and index updates at 10k-100k chunks."""
    from newsqa.eval.bench import run_bench
    from newsqa.eval.scale import run_scale_bench

    settings = _settings()
    try:
        counts = [int(size) for size in sizes.split(",")]
    except ValueError:
        _fail(f"--sizes must be chunk counts like 10000,100000, not {sizes!r}", 2)
    with _user_errors():
        if scale:
            run_scale_bench(settings, articles, questions, sys.stdout, counts, server)
        else:
            run_bench(settings, articles, questions, answers, out=sys.stdout)
