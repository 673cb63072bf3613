"""The HTTP API's outer layers (plain ASGI middleware, so streaming responses pass through untouched): a
request id on every response and log line, a body size limit, API keys, and rate limits."""

import hashlib
import hmac
import json
import logging
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsqa.logs import new_request_id, request_id
from newsqa.service.api.rate_windows import RateWindows

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
    return next(iter(_headers(scope, name)), None)


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", []) if key == name]


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


class Keys:
    """The configured API keys. A presented key is compared with every one, so the time taken says nothing
    about which one nearly matched."""

    def __init__(self, keys: list[SecretStr]) -> None:
        self.keys = [key.get_secret_value().encode() for key in keys]

    def __bool__(self) -> bool:
        return bool(self.keys)

    def valid(self, key: str | None) -> bool:
        return any([hmac.compare_digest((key or "").encode(), known) for known in self.keys])


def guarded(scope: Scope) -> bool:
    """A request the key check and the rate limit apply to."""
    return scope["type"] == "http" and not is_public(scope["path"]) and scope["method"] != "OPTIONS"


class ApiKeys:
    """With keys configured, every non-public route needs one of them: 401."""

    def __init__(self, app: ASGIApp, keys: Keys) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.keys and guarded(scope) and not self.keys.valid(presented_key(scope)):
            await send_json(send, 401, {"detail": "an API key is required: Authorization: Bearer KEY or "
                                                  "X-API-Key: KEY"}, {"WWW-Authenticate": "Bearer"})
            return
        await self.app(scope, receive, send)


class RateLimit:
    """Requests per caller within the rate ("60/minute"): 429 with Retry-After. A caller is its API key when it
    presents a configured one, else its address: a made-up key per request is no new caller, and a client
    guessing keys is throttled like any other. Runs before the key check, so failed checks count too."""

    def __init__(self, app: ASGIApp, windows: RateWindows, keys: Keys,
                 trusted_proxies: list[IPv4Network | IPv6Network]) -> None:
        self.app, self.windows, self.keys, self.trusted_proxies = app, windows, keys, trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if guarded(scope):
            verdict = await self.windows.hit(self._caller(scope))
            if not verdict.allowed:
                await send_json(send, verdict.status, {"detail": verdict.detail},
                                {"Retry-After": str(verdict.retry_after)})
                return
        await self.app(scope, receive, send)

    def _caller(self, scope: Scope) -> str:
        key = presented_key(scope)
        if self.keys and self.keys.valid(key):
            return "key:" + hashlib.sha256((key or "").encode()).hexdigest()[:16]  # keys never stored as given
        return "addr:" + client_address(scope, self.trusted_proxies)


def client_address(scope: Scope, trusted_proxies: list[IPv4Network | IPv6Network]) -> str:
    """The peer's address; when the peer is a trusted proxy, the right-most X-Forwarded-For entry that is not
    one. Each proxy appends the address it was called from, so entries left of that are only the client's word."""
    client = scope.get("client")
    address = client[0] if client else "unknown"
    forwarded = [hop.strip() for value in _headers(scope, b"x-forwarded-for") for hop in value.split(",")]
    for hop in reversed(forwarded):
        if not _trusted(address, trusted_proxies):
            break
        if hop:
            address = hop
    return address


def _trusted(address: str, trusted_proxies: list[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted_proxies)
