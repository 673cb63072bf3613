"""A stub OpenAI-compatible server on 127.0.0.1: POST /v1/chat/completions, non-streaming, replies from a queue."""

import json
import threading
import time
from typing import Any

from loopback import JsonHandler, LoopbackServer


class OpenAIStub(LoopbackServer):
    """A context manager; point a client at `url + "/v1"`. Queue replies in `replies`; set `failing` to answer 500."""

    def __init__(self, *replies: str) -> None:
        self.replies: list[str] = list(replies)  # popped in order; "NOT FOUND" once empty
        self.requests: list[dict[str, Any]] = []  # JSON bodies in arrival order
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.failing = False  # while set, every request gets an HTTP 500
        self._lock = threading.Lock()
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return self.base_url

    def _complete(self, body: dict[str, Any], authorization: str | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(authorization)
            if self.failing:
                return 500, {"error": {"message": "stub is down", "type": "server_error", "code": None}}
            content = self.replies.pop(0) if self.replies else "NOT FOUND"
        return 200, {
            "id": f"chatcmpl-stub-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def _handler(self) -> type[JsonHandler]:
        stub = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                status, reply = stub._complete(json.loads(raw or b"{}"), self.headers.get("Authorization"))
                # retry-after-ms: the OpenAI client's retries of a 500 then cost next to nothing
                self.send_json(status, reply, {"retry-after-ms": "10"} if status >= 500 else None)

        return Handler
