"""A stub Slack Web API on 127.0.0.1: records every call and answers {"ok": true, ...}."""

import itertools
import json
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from loopback import JsonHandler, LoopbackServer

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"


class SlackStub(LoopbackServer):
    """A context manager; point the bot at `api_url` and a slash command's response_url at `webhook_url`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (method, arguments) in arrival order
        self.threads: dict[str, list[dict[str, Any]]] = {}  # thread_ts -> what conversations.replies returns
        self.errors: dict[str, str] = {}  # method -> Slack error code to answer with ({"ok": false})
        self._changed = threading.Condition()
        self._ts = itertools.count(1)
        super().__init__(self._handler())

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/webhook"

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self._changed:
            return [args for name, args in self.calls if name == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The first `count` calls to `method`, waiting at most `timeout` s; fewer if they never come."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
            return self.calls_to(method)[:count]

    def _record(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._changed:
            self.calls.append((method, args))
            self._changed.notify_all()
        if method in self.errors:
            return {"ok": False, "error": self.errors[method]}
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "team_id": "T1", "user": "newsqa"}
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            return {"ok": True, "channel": args["channel"], "ts": ts, "message": {**args, "ts": ts}}
        if method == "conversations.replies":
            return {"ok": True, "messages": self.threads.get(args["ts"], []), "has_more": False}
        return {"ok": True}

    def _handler(self) -> type[JsonHandler]:
        stub = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                self._reply(dict(parse_qsl(urlsplit(self.path).query)))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                is_json = self.headers.get("Content-Type", "").startswith("application/json")
                args = json.loads(raw) if is_json else dict(parse_qsl(raw))
                self._reply({**dict(parse_qsl(urlsplit(self.path).query)), **args})

            def _reply(self, args: dict[str, Any]) -> None:
                method = urlsplit(self.path).path.removeprefix("/api/").strip("/")
                self.send_json(200, stub._record(method, args))

        return Handler
