"""The HTTP API's outer layers (plain ASGI middleware, so streaming responses pass through untouched): a
request id on every response and log line, a body size limit, API keys, and rate limits."""

import hashlib
import hmac
import json
import logging
import math
import time
from typing import Any

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsqa.logs import new_request_id, request_id

log = logging.getLogger(__name__)

# Open without a key and never rate-limited: probes, Slack (it signs its requests), and the chat page's files
# (they hold no data; the page asks for a key when the API answers 401).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/slack/events", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def presented_key(scope: Scope) -> str | None:
    """The API key a request carries: `Authorization: Bearer KEY` or `X-API-Key: KEY`."""
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return _header(scope, b"x-api-key")


class RequestIds:
    """Every response carries X-Request-ID (the client's, when it sent a tame one); every log line of the
    request names it. A bug answers 500 with only that id; its traceback goes to the log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id(_header(scope, b"x-request-id"))
        token = request_id.set(rid)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            if not started:
                await send_json(send_with_id, 500, {"detail": "internal error", "request_id": rid})
        finally:
            request_id.reset(token)


class BodyLimit:
    """413 for a body over `max_bytes`, whether it says its length or streams it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        too_large = False

        async def counting_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # end the body here; whatever the app makes of it is replaced below
                too_large = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Message) -> None:
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start":
                await self._reject(send)

        await self.app(scope, counting_receive, guarded_send)

    async def _reject(self, send: Send) -> None:
        await send_json(send, 413, {"detail": f"request body larger than {self.max_bytes // 1024} KB"})


class ApiKeys:
    """With keys configured, every non-public route needs one of them (compared in constant time): 401."""

    def __init__(self, app: ASGIApp, keys: list[SecretStr]) -> None:
        self.app = app
        self.keys = [key.get_secret_value().encode() for key in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys and not is_public(scope["path"]) and scope["method"] != "OPTIONS":
            key = (presented_key(scope) or "").encode()
            # compare with every key, so the time taken says nothing about which one nearly matched
            if not any([hmac.compare_digest(key, known) for known in self.keys]):
                await send_json(send, 401, {"detail": "an API key is required: Authorization: Bearer KEY or "
                                                      "X-API-Key: KEY"}, {"WWW-Authenticate": "Bearer"})
                return
        await self.app(scope, receive, send)


class RateLimit:
    """Requests per caller (its API key, else its address) within `rate` ("60/minute"): 429 with Retry-After."""

    def __init__(self, app: ASGIApp, rate: str) -> None:
        self.app = app
        self.rates = parse_many(rate)
        self.windows = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_public(scope["path"]) and scope["method"] != "OPTIONS":
            caller = _caller(scope)
            for rate in self.rates:
                if not self.windows.hit(rate, caller):
                    reset = self.windows.get_window_stats(rate, caller).reset_time
                    wait = max(1, math.ceil(reset - time.time()))
                    await send_json(send, 429, {"detail": f"rate limit of {rate} exceeded; retry in {wait} s"},
                                    {"Retry-After": str(wait)})
                    return
        await self.app(scope, receive, send)


def _caller(scope: Scope) -> str:
    if key := presented_key(scope):
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]  # keys never stored or logged as given
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")
