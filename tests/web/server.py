"""A threaded HTTP server on 127.0.0.1 (random port) for tests that must not touch the net.

    with FixtureServer() as server:
        server.page("/hello", "<title>Hi</title>hello")
        server.route("/custom", lambda req: req.send(200, b"raw", {"X-A": "1"}))
        fetch(server.url("/hello"))
        assert server.hits["/hello"] == 1

A handler gets a ``Request`` and writes whatever it likes (status, headers, body,
byte-by-byte trickles); ``server.stopping`` is set on shutdown so endless handlers end.
Responses are HTTP/1.0: the connection closes after each one.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Request:
    """One incoming request, with helpers to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        self.handler = handler
        self.stopping = stopping
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.headers = handler.headers

    def start(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Send the status line and headers."""
        self.handler.send_response(status)
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.end_headers()
        self.handler.wfile.flush()

    def write(self, data: bytes) -> None:
        self.handler.wfile.write(data)
        self.handler.wfile.flush()

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """A whole response with a Content-Length."""
        self.start(status, {"Content-Length": str(len(body)), **(headers or {})})
        self.write(body)

    def stream(self, status: int, chunks: Iterable[bytes], headers: dict[str, str]) -> None:
        """A response without Content-Length whose body is ``chunks`` (until close)."""
        self.start(status, headers)
        for chunk in chunks:
            if self.stopping.is_set():
                return
            self.write(chunk)


Handler = Callable[[Request], None]


class FixtureServer:
    """Routes by path (query string ignored); counts hits per path in ``hits``."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                request = Request(self, server.stopping)
                with server._lock:
                    server.hits[request.path] += 1
                    server.requests.append(request)
                handler = server.routes.get(request.path)
                if handler is None:
                    request.send(404, b"not found", {"Content-Type": "text/plain"})
                else:
                    handler(request)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            # The default backlog of 5 overflows when 8 threads connect at once; the kernel
            # then drops a SYN and the client retries after 1 s (a flaky fetch timeout).
            request_queue_size = 128

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that hang up mid-response are expected here

        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def page(
        self,
        path: str,
        body: str | bytes,
        *,
        content_type: str = "text/html; charset=utf-8",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Serve a fixed response at ``path``."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        all_headers = {"Content-Type": content_type, **(headers or {})}
        self.route(path, lambda req: req.send(status, data, all_headers))

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.route(path, lambda req: req.send(status, b"", {"Location": location}))

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
