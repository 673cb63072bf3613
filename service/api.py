"""HTTP adapter: POST /v1/chat, /healthz, /readyz, Slack events; routes only parse, call, return."""

import logging
import threading
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from service.answer import Answerer
from service.schemas import ChatRequest, ChatResponse
from service.settings import get_settings

log = logging.getLogger(__name__)


def get_answerer(request: Request) -> Answerer:
    return request.app.state.answerer


AnswererDep = Annotated[Answerer, Depends(get_answerer)]


def create_app(answerer: Answerer | None = None) -> FastAPI:
    """The service; `answerer` is built from settings at startup unless given (tests pass their own)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings = get_settings()
        app.state.answerer = answerer or Answerer.from_settings(settings)
        # Load the model off the request path, so the first question doesn't pay for it; /readyz tells when.
        threading.Thread(target=app.state.answerer.warm_up, daemon=True, name="warm-up").start()
        if settings.slack_bot_token and settings.slack_signing_secret:
            from service.slack import build_slack_app, mount_slack

            mount_slack(app, build_slack_app(settings, app.state.answerer.answer))
        yield

    app = FastAPI(
        title="newsqa", version="0.1.0", lifespan=lifespan,
        description="Answers questions from indexed news articles, with citations, or says the sources don't.",
    )

    @app.post("/v1/chat", response_model=ChatResponse)
    def chat(request: ChatRequest, answerer: AnswererDep) -> ChatResponse:
        try:
            return answerer.answer(request)
        except Exception as exc:  # the model or its server failed: say so, don't leak a 500 page
            log.exception("answering failed")
            raise HTTPException(503, f"the answering model is unavailable: {type(exc).__name__}: {exc}") from exc

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(answerer: AnswererDep) -> JSONResponse:
        checks = {"index": answerer.index.count() > 0, "model": answerer.model_ready}
        return JSONResponse({"ready": all(checks.values()), **checks}, status_code=200 if all(checks.values()) else 503)

    return app


app = create_app()
