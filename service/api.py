"""HTTP adapter: POST /v1/chat, /healthz, /readyz, Slack events; routes only parse, call, return."""

import logging
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from newsqa.errors import NewsqaError
from newsqa.service.answer import Answerer
from newsqa.service.schemas import ChatRequest, ChatResponse
from newsqa.settings import Settings, get_settings

log = logging.getLogger(__name__)


def get_answerer(request: Request) -> Answerer:
    return request.app.state.answerer


AnswererDep = Annotated[Answerer, Depends(get_answerer)]


def create_app(settings: Settings, answerer: Answerer | None = None) -> FastAPI:
    """The service; `answerer` is built from `settings` at startup unless given (tests pass their own)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.answerer = answerer or Answerer.from_settings(settings)
        app.state.answerer.store.follow()  # an ingest by another process is answered from without a restart
        # Load the model off the request path, so the first question doesn't pay for it; /readyz tells when.
        threading.Thread(target=app.state.answerer.warm_up, daemon=True, name="warm-up").start()
        if settings.slack_bot_token and settings.slack_signing_secret:
            from newsqa.service.slack import build_slack_app, mount_slack

            mount_slack(app, build_slack_app(settings, app.state.answerer.answer))
        yield
        app.state.answerer.store.close()

    app = FastAPI(
        title="newsqa", version="0.1.0", lifespan=lifespan,
        description="Answers questions from indexed news articles, with citations, or says the sources don't.",
    )

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Every response carries an id; a bug answers 500 with only that id, its traceback goes to the log."""
        rid = uuid.uuid4().hex[:16]
        try:
            response = await call_next(request)
        except Exception:
            log.exception("request %s failed", rid)
            response = JSONResponse({"detail": "internal error", "request_id": rid}, status_code=500)
        response.headers["X-Request-ID"] = rid
        return response

    @app.exception_handler(NewsqaError)
    async def unavailable(request: Request, exc: NewsqaError) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.post("/v1/chat", response_model=ChatResponse)
    def chat(request: ChatRequest, answerer: AnswererDep) -> ChatResponse:
        return answerer.answer(request)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(answerer: AnswererDep) -> JSONResponse:
        try:
            snapshot = answerer.store.current()
            has_articles = not snapshot.empty and snapshot.index.count() > 0
        except Exception:  # a probe reports what it finds; the log says why
            log.exception("readiness: the store can't be read")
            has_articles = False
        checks = {"index": has_articles, "model": answerer.model_ready}
        return JSONResponse({"ready": all(checks.values()), **checks}, status_code=200 if all(checks.values()) else 503)

    return app


def app_from_environment() -> FastAPI:
    """The service as each uvicorn worker process builds it (`newsqa serve --workers N`): settings from the
    environment, one answerer, BM25 side and store follower per worker."""
    return create_app(get_settings())
