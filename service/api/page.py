"""The web chat page: GET / and its files under /static/, shipped inside the package (no build step, no CDN).
Both are open without an API key (guards.PUBLIC_PATHS): they hold no data."""

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

# The page loads only its own files and talks only to this server: even an escaping bug can't run or fetch
# anything from elsewhere.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def mount_page(app: FastAPI) -> None:
    page = (files("newsqa.service.api") / "web" / "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers=HEADERS)

    app.mount("/static", _PageFiles(packages=[("newsqa.service.api", "web")]), name="static")


class _PageFiles(StaticFiles):
    """The page's files with the page's headers: /static/index.html is the page too, and must not be framed."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response
