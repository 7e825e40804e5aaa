"""A scripted OpenAI-compatible chat completions server on 127.0.0.1, for tests.

    with StubServer(lambda body: Reply("Search cats")) as server:
        policy = OpenAIPolicy("stub", api_base=server.api_base)

The responder sees each request's JSON body and returns a ``Reply``. The server records
every body, counts the most requests it held at once, can answer ``fail_status`` to the
first ``fail_first`` requests, and can wait ``delay`` seconds before answering (a wait
that ends early when the server closes).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    content: str | None = "ok"
    status: int = 200
    delay: float = 0.0  # seconds to wait before answering
    top_logprobs: tuple[tuple[str, float], ...] | None = None  # first token's alternatives
    usage: tuple[int, int] | None = (7, 3)  # (prompt_tokens, completion_tokens); None: omit
    error: str = "scripted failure"  # message for a non-200 status


Responder = Callable[[dict[str, Any]], Reply]


def echo(body: dict[str, Any]) -> Reply:
    """Replies with the last message's content."""
    return Reply(content=body["messages"][-1]["content"])


class StubServer:
    def __init__(self, responder: Responder = echo) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_first = 0
        self.fail_status = 500
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def api_base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def answer(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            failing = len(self.requests) <= self.fail_first
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = Reply(status=self.fail_status) if failing else self.responder(body)
            wait = max(self.delay, reply.delay)
            if wait:
                self.closing.wait(wait)
            return reply
        finally:
            with self._lock:
                self.in_flight -= 1


def completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": reply.content},
        "finish_reason": "stop",
    }
    if reply.top_logprobs is not None and body.get("logprobs"):
        alternatives = [{"token": t, "logprob": lp} for t, lp in reply.top_logprobs]
        top = alternatives[: int(body.get("top_logprobs") or 0)] or alternatives[:1]
        choice["logprobs"] = {"content": [{**alternatives[0], "top_logprobs": top}]}
    data: dict[str, Any] = {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "model": body.get("model", ""),
        "choices": [choice],
    }
    if reply.usage is not None:
        prompt, completion_tokens = reply.usage
        data["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }
    return data


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here


def _handler_for(server: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            reply = server.answer(body, dict(self.headers.items()))
            if server.closing.is_set():
                return
            if reply.status != 200:
                self._send(reply.status, {"error": {"message": reply.error}})
            else:
                self._send(200, completion(body, reply))

        def _send(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler
