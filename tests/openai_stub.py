"""A stub OpenAI-compatible server on 127.0.0.1: POST /v1/chat/completions, non-streaming, replies from a queue."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OpenAIStub:
    """A context manager; point a client at `url + "/v1"`. Queue replies in `replies`; set `failing` to answer 500."""

    def __init__(self, *replies: str) -> None:
        self.replies: list[str] = list(replies)  # popped in order; "NOT FOUND" once empty
        self.requests: list[dict[str, Any]] = []  # JSON bodies in arrival order
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.failing = False  # while set, every request gets an HTTP 500
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> "OpenAIStub":
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                status, reply = stub._complete(json.loads(raw or b"{}"), self.headers.get("Authorization"))
                self._send(status, reply)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                if status >= 500:
                    self.send_header("retry-after-ms", "10")  # the OpenAI client's retries then cost ~nothing
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

        return Handler
