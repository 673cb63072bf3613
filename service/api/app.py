"""HTTP adapter: POST /v1/chat and /v1/chat/stream, /healthz, /readyz, /metrics, Slack events. Routes only
parse, call the bounded answer service, and return; errors become a status and a plain message."""

import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from newsqa.errors import InvalidRequest, NewsqaError, Overloaded
from newsqa.logs import configure_logging, request_id
from newsqa.service.answering.answer import Answerer
from newsqa.service.answering.deadline import AskerGone
from newsqa.service.answering.schemas import ChatRequest, ChatResponse
from newsqa.service.api.article_routes import articles_router
from newsqa.service.api.guards import ApiKeys, BodyLimit, Keys, RateLimit, RequestIds
from newsqa.service.api.page import mount_page
from newsqa.service.api.prometheus import IN_FLIGHT, REJECTED, install_metrics, record_answer, worker_stopped
from newsqa.service.api.rate_windows import RateWindows
from newsqa.service.serving import Service
from newsqa.settings import Settings, get_settings

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not valid JSON"},
    401: {"description": "An API key is required (when keys are configured)"},
    413: {"description": "Request body too large"},
    422: {"description": "A field over its limit or malformed (the detail names it)"},
    429: {"description": "Rate limit exceeded; see Retry-After"},
    503: {"description": "Overloaded (see Retry-After) or the model is unavailable"},
    504: {"description": "No answer within the deadline"},
}


def create_app(settings: Settings, answerer: Answerer | None = None) -> FastAPI:
    """The service; `answerer` is built from `settings` at startup unless given (tests pass their own)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(answerer or Answerer.from_settings(settings), settings, report_in_flight=IN_FLIGHT.set)
        app.state.service = service
        service.answerer.store.follow()  # an ingest by another process is answered from without a restart
        # Load the model off the request path, so the first question doesn't pay for it; /readyz tells when.
        threading.Thread(target=service.answerer.warm_up, daemon=True, name="warm-up").start()
        slack = None
        if settings.slack_bot_token and settings.slack_signing_secret:
            from newsqa.service.slack.app import build_slack_app, mount_slack

            slack = build_slack_app(settings, service.answer)
            mount_slack(app, slack)
        yield
        if slack is not None:  # Slack questions are answered after their request ended: let those finish too
            await anyio.to_thread.run_sync(slack.close, settings.shutdown_grace_s)
        service.answerer.store.close()
        worker_stopped()

    app = FastAPI(
        title="newsqa", version="0.1.0", lifespan=lifespan,
        description="Answers questions from indexed news articles, with citations, or says the sources don't.",
    )
    install_metrics(app)
    # Added innermost first: a request meets the request id, then CORS, the body limit, the rate limit, the key.
    keys = Keys(settings.api_keys)
    app.add_middleware(ApiKeys, keys=keys)
    app.add_middleware(RateLimit, windows=RateWindows(settings), keys=keys, trusted_proxies=settings.trusted_proxies)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_kb * 1024)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    app.add_middleware(RequestIds)

    @app.exception_handler(NewsqaError)
    async def user_error(request: Request, exc: NewsqaError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(AskerGone)
    async def asker_gone(request: Request, exc: AskerGone) -> JSONResponse:
        return JSONResponse({"detail": "client closed the request"}, status_code=499)

    @app.post("/v1/chat", response_model=ChatResponse, responses=_ERRORS)
    async def chat(body: ChatRequest, request: Request) -> ChatResponse:
        response = await _service(request).answer_async(body, request.is_disconnected)
        record_answer(response)
        return response

    @app.post("/v1/chat/stream", responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS})
    async def chat_stream(body: ChatRequest, request: Request) -> EventSourceResponse:
        """Server-sent events: `stage` (rewriting, retrieving, generating, verifying), `token` (the draft,
        provisional), `answer` (final: the /v1/chat body), `error` ({status, detail}), `done` ({timings})."""
        events = _service(request).stream(body, request.is_disconnected)  # raises a 422 or 503 before the 200
        return EventSourceResponse(_events(events), ping=15)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "Not ready: no articles yet, or the model is not "
                                                      "loaded, stuck, or not answering"}})
    async def readyz(request: Request) -> JSONResponse:
        checks = await _service(request).readiness()
        ready = bool(checks) and all(checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    app.include_router(articles_router(settings))
    mount_page(app)
    return app


def _service(request: Request) -> Service:
    return request.app.state.service


def _error_response(exc: NewsqaError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Overloaded) else None
    return JSONResponse(_error_body(exc), status_code=exc.status, headers=headers)


def _error_body(exc: NewsqaError) -> dict[str, Any]:
    if isinstance(exc, InvalidRequest):  # FastAPI's own shape for a field that fails validation
        detail: Any = [{"loc": ["body", *exc.loc], "msg": exc.message, "type": "value_error"}]
    else:
        detail = str(exc)
    if exc.status in (503, 504) and not isinstance(exc, Overloaded):
        log.warning("answering failed: %s", exc)
    if isinstance(exc, Overloaded) or exc.status == 504:
        REJECTED.labels("overloaded" if isinstance(exc, Overloaded) else "deadline").inc()
    return {"detail": detail, "request_id": request_id.get()}


async def _events(events: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[dict[str, str]]:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        async for event, data in events:
            if isinstance(data, ChatResponse):
                record_answer(data)
                timings = data.timings.model_dump()
                data = data.model_dump(mode="json")
            yield {"event": event, "data": json.dumps(data)}
    except AskerGone:
        return
    except NewsqaError as exc:
        yield {"event": "error", "data": json.dumps({"status": exc.status, **_error_body(exc)})}
    except Exception:
        log.exception("streaming an answer failed")
        yield {"event": "error", "data": json.dumps({"status": 500, "detail": "internal error",
                                                     "request_id": request_id.get()})}
    timings.setdefault("total_ms", round((time.perf_counter() - started) * 1000, 1))
    yield {"event": "done", "data": json.dumps({"timings": timings})}


def app_from_environment() -> FastAPI:
    """The service as each uvicorn worker process builds it (`newsqa serve --workers N`): settings from the
    environment, one answerer, BM25 side and store follower per worker."""
    settings = get_settings()
    configure_logging(settings)  # a worker is a new process: its logging is set up here
    return create_app(settings)
