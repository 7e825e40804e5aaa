"""THE hostile server: one 127.0.0.1 HTTP server that serves every hostile case by path.

Fetch, search and browse tests all use this one fixture, so each hostile case is written
once. It builds on ``tests.web.server.FixtureServer`` (a test may still add its own
routes with ``route``/``page``):

    from tests.hostile_server import HostileServer, hostile  # noqa: F401 (the fixture)

    def test_x(hostile: HostileServer) -> None:
        fetcher.fetch(hostile.url("/gzip-truncated"))            # a page case
        SearxngSearch(hostile.engine("deep-json")).search("q")   # an engine case

Page cases live at ``/<name>`` (``PAGES``), search-engine cases at
``/engine/<name>/search`` (``ENGINES``): ``hostile.engine(name)`` is the base URL to
give ``SearxngSearch``, ``hostile.engine(name) + "/search"`` the one to give Brave.
``RENDERABLE`` lists the page cases that fetch fine under the default 5 MB cap: what a
renderer benchmark should render.

Slow cases trickle for at most ``trickle_limit`` seconds (default 20) and stall for at
most ``stall_limit`` (default 60), then hang up, so a test run against code without a
deadline fails instead of hanging forever; every slow case ends when the server stops.
"""

from __future__ import annotations

import functools
import gzip
import json
import time
import zlib
from collections.abc import Callable, Iterator

import brotli
import pytest

from tests.web.server import FixtureServer, Request

HTML = "text/html; charset=utf-8"
JSON = "application/json"
MB = 1_000_000

# ------------------------------------------------------------------ building blocks


def gzip_bomb(total: int = 1 << 30) -> Iterator[bytes]:
    """``total`` bytes of zeros as a gzip stream, made in milliseconds: after a full
    flush the compressor state resets, so every further 1 MiB block compresses the same."""
    block = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    yield c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    repeat = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    for _ in range(total // len(block) - 1):
        yield repeat


@functools.cache
def big(size: int, head: bytes = b"<p>", fill: bytes = b"x", tail: bytes = b"") -> bytes:
    """``head``, ``size`` bytes of ``fill``, ``tail`` (made once)."""
    return head + fill * size + tail


def chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` bytes (a streamed body without Content-Length)."""
    return (data[i : i + size] for i in range(0, len(data), size))


@functools.cache
def brotli_bomb() -> bytes:
    """256 MiB of zeros as brotli (about 50 KB)."""
    c = brotli.Compressor(quality=1)
    block = bytes(1 << 20)
    return b"".join(c.process(block) for _ in range(256)) + c.finish()


ARTICLE = (
    "<html><head><title>Truncated article</title></head><body>"
    + "<p>Paragraph of the article that goes on and on.</p>" * 2000
    + "</body></html>"
).encode()


@functools.cache
def truncated(coding: str) -> bytes:
    """``ARTICLE`` compressed with ``coding``, cut off after half its bytes."""
    if coding == "gzip":
        data = gzip.compress(ARTICLE)
    elif coding == "deflate":
        data = zlib.compress(ARTICLE)
    else:
        data = brotli.compress(ARTICLE)
    return data[: len(data) // 2]


SEARXNG_OK = {
    "query": "q",
    "results": [
        {
            "title": "Canberra",
            "url": "https://en.wikipedia.org/wiki/Canberra",
            "content": "The capital",
        },
        {"title": "Second", "url": "https://example.org/2", "content": "two"},
    ],
    "unresponsive_engines": [],
}

# Odd but parseable: wrong types, dangerous schemes, terminal escapes, bidi overrides.
SEARXNG_ODD = {
    "results": [
        "not a dict",
        7,
        {"title": ["a list"], "url": "https://ok.example/1", "content": {"a": 1}},
        {"title": "js", "url": "javascript:alert(1)"},
        {"title": "\x1b[2J\x1b[31mred\u202egnp.exe", "url": "https://ok.example/2"},
        {"title": "bad host", "url": "http://[::1/"},
        {"title": "bad port", "url": "http://example.com:99999/"},
        {"title": "t" * 100_000, "url": "https://ok.example/3", "content": "s" * 100_000},
    ],
    "unresponsive_engines": 5,
}


def trickle_body(
    first: bytes, every: float, limit: float, stopping: Callable[[float], bool]
) -> Iterator[bytes]:
    """``first``, then one space every ``every`` s for at most ``limit`` s."""
    yield first
    end = time.monotonic() + limit
    while time.monotonic() < end and not stopping(every):
        yield b" "


# ------------------------------------------------------------------ the server


class HostileServer(FixtureServer):
    """A ``FixtureServer`` with every hostile case routed (see the module doc)."""

    def __init__(
        self, *, trickle_every: float = 0.05, trickle_limit: float = 20.0, stall_limit: float = 60.0
    ) -> None:
        super().__init__()
        self.trickle_every = trickle_every
        self.trickle_limit = trickle_limit
        self.stall_limit = stall_limit
        for name, handler in self._pages().items():
            self.route(f"/{name}", handler)
        for name, handler in self._engines().items():
            self.route(f"/engine/{name}/search", handler)

    def engine(self, name: str) -> str:
        """The base URL of engine case ``name`` (SearXNG appends ``/search``)."""
        return self.url(f"/engine/{name}")

    # -------------------------------------------------------------- slow

    def silent(self, req: Request) -> None:
        """Never sends even the status line."""
        req.stopping.wait(self.stall_limit)

    def stall(
        self, req: Request, content_type: str = HTML, first: bytes = b"<title>slow</title>"
    ) -> None:
        """Headers and a little body, then nothing."""
        req.start(200, {"Content-Type": content_type})
        req.write(first)
        req.stopping.wait(self.stall_limit)

    def trickle(
        self, req: Request, content_type: str = HTML, first: bytes = b"<title>t</title>"
    ) -> None:
        """One byte every ``trickle_every`` s: every read is quick, the whole never ends."""
        body = trickle_body(first, self.trickle_every, self.trickle_limit, req.stopping.wait)
        req.stream(200, body, {"Content-Type": content_type})

    def short_body(self, req: Request) -> None:
        """Content-Length promises 100,000 bytes; 100 come, then the connection closes."""
        req.start(200, {"Content-Type": HTML, "Content-Length": "100000"})
        req.write(ARTICLE[:100])

    # -------------------------------------------------------------- cases

    def _pages(self) -> dict[str, Callable[[Request], None]]:
        def fixed(
            body: bytes, content_type: str = HTML, status: int = 200, **headers: str
        ) -> Callable[[Request], None]:
            return lambda req: req.send(status, body, {"Content-Type": content_type, **headers})

        return {
            "silent": self.silent,
            "stall": self.stall,
            "trickle": self.trickle,
            # 20 MB with no Content-Length; and with one, refused before reading
            "huge": lambda req: req.stream(200, chunks(big(20 * MB)), {"Content-Type": HTML}),
            "huge-declared": lambda req: req.send(200, big(20 * MB), {"Content-Type": HTML}),
            "gzip-bomb": lambda req: req.stream(
                200, gzip_bomb(), {"Content-Type": HTML, "Content-Encoding": "gzip"}
            ),
            "brotli-bomb": lambda req: req.send(
                200, brotli_bomb(), {"Content-Type": HTML, "Content-Encoding": "br"}
            ),
            "gzip-truncated": lambda req: req.send(
                200, truncated("gzip"), {"Content-Type": HTML, "Content-Encoding": "gzip"}
            ),
            "deflate-truncated": lambda req: req.send(
                200, truncated("deflate"), {"Content-Type": HTML, "Content-Encoding": "deflate"}
            ),
            "brotli-truncated": lambda req: req.send(
                200, truncated("br"), {"Content-Type": HTML, "Content-Encoding": "br"}
            ),
            "short-body": self.short_body,
            # UTF-7 would turn +ADw-script+AD4- into <script>
            "utf7-meta": fixed(
                b'<meta charset="utf-7"><title>seven</title>+ADw-b+AD4-bold+ADw-/b+AD4-',
                "text/html",
            ),
            "utf7-header": fixed(b"<title>seven</title>+ADw-i+AD4-x", "text/html; charset=utf-7"),
            "utf16-no-bom": fixed(
                "<title>sixteen</title>".encode("utf-16-le"), "text/html; charset=utf-16"
            ),
            "python-codec": fixed(b"<title>rot</title>uryyb", "text/html; charset=rot13"),
            "retry-after": fixed(b"slow down", "text/plain", 429, **{"Retry-After": "3600"}),
            "redirect-loop": lambda req: req.send(302, b"", {"Location": "/redirect-loop-2"}),
            "redirect-loop-2": lambda req: req.send(302, b"", {"Location": "/redirect-loop"}),
            "redirect-metadata": lambda req: req.send(
                302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}
            ),
            # Under the 5 MB cap, hard to render
            "deep-html": fixed(b"<title>deep</title>" + b"<div>" * 100_000 + b"bottom"),
            "many-links": fixed(
                b"<title>links</title>"
                + b"".join(b'<a href="/l%d">link %d</a> ' % (i, i) for i in range(50_000))
            ),
            "long-word": fixed(b"<title>word</title><p>" + b"a" * (4 * MB) + b"</p>"),
            "many-paragraphs": fixed(b"<title>paras</title>" + b"<p>words and words</p>" * 200_000),
            # regex bombs: an unclosed <title> 700,000 times, and 4 MB of "<"
            "many-titles": fixed(b"<title>" * 700_000),
            "lt-flood": fixed(b"<title>lt</title><p>" + b"<" * (4 * MB)),
            "control-chars": fixed(
                b"<title>\x1b[2Jctl\x00</title><p>nul\x00 bell\x07 esc\x1b[31m"
                b" bidi \xe2\x80\xae txt.exe</p>"
            ),
        }

    def _engines(self) -> dict[str, Callable[[Request], None]]:
        def reply(data: object, status: int = 200, **headers: str) -> Callable[[Request], None]:
            body = json.dumps(data).encode()
            return lambda req: req.send(status, body, {"Content-Type": JSON, **headers})

        def raw(body: bytes, **headers: str) -> Callable[[Request], None]:
            return lambda req: req.send(200, body, {"Content-Type": JSON, **headers})

        return {
            "ok": reply(SEARXNG_OK),
            "odd": reply(SEARXNG_ODD),
            "silent": self.silent,
            "stall": lambda req: self.stall(req, JSON, b'{"results": ['),
            "trickle": lambda req: self.trickle(req, JSON, b'{"results": ['),
            "retry-after": reply({}, 429, **{"Retry-After": "3600"}),
            "unavailable": reply({}, 503),
            "deep-json": raw(b"[" * 200_000 + b"]" * 200_000),
            "huge-json": lambda req: req.stream(
                200, chunks(big(20 * MB, b'{"results": [', b" ", b"]}")), {"Content-Type": JSON}
            ),
            "gzip-bomb": lambda req: req.stream(
                200, gzip_bomb(300 << 20), {"Content-Type": JSON, "Content-Encoding": "gzip"}
            ),
            "gzip-truncated": raw(
                gzip.compress(json.dumps(SEARXNG_OK).encode() * 50)[:200],
                **{"Content-Encoding": "gzip"},
            ),
            "not-json": lambda req: req.send(200, b"<html>captcha</html>", {"Content-Type": HTML}),
        }


PAGES = (
    "silent trickle stall huge huge-declared gzip-bomb brotli-bomb gzip-truncated"
    " deflate-truncated brotli-truncated short-body utf7-meta utf7-header utf16-no-bom python-codec"
    " retry-after redirect-loop redirect-loop-2 redirect-metadata deep-html many-links"
    " long-word many-paragraphs many-titles lt-flood control-chars"
).split()
ENGINES = (
    "ok odd silent stall trickle retry-after unavailable deep-json huge-json gzip-bomb"
    " gzip-truncated not-json"
).split()
RENDERABLE = (
    "utf7-meta utf7-header utf16-no-bom python-codec deep-html many-links long-word"
    " many-paragraphs many-titles lt-flood control-chars"
).split()


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A running ``HostileServer`` (stopped after the test)."""
    server = HostileServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
