"""Search backends against fake engines on 127.0.0.1 (and a fake ddgs)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import ddgs
import pytest
from ddgs.exceptions import DDGSException, RatelimitException

from tests.web.server import FixtureServer, Request
from webqa.errors import SearchError
from webqa.web.base import SearchResult
from webqa.web.cache import Cache
from webqa.web.search import (
    BraveSearch,
    DuckDuckGoSearch,
    SearchBackend,
    SearxngSearch,
    clean_results,
)

SEARXNG_ANSWER = {
    "query": "capital of australia",
    "results": [
        {
            "title": "Canberra",
            "url": "https://en.wikipedia.org/wiki/Canberra",
            "content": "The capital",
        },
        {"title": "Evil", "url": "javascript:alert(1)", "content": "x"},
        {"title": "Local", "url": "file:///etc/passwd", "content": "x"},
        {"title": "Canberra again", "url": "https://en.wikipedia.org/wiki/Canberra", "content": ""},
        {
            "title": "A &amp; <b>B</b>",
            "url": "http://example.org/ab",
            "content": "<em>one</em>  two",
        },
        {"title": "Third", "url": "https://example.com/3"},
    ],
    "unresponsive_engines": [],
}


def json_reply(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    body = json.dumps(data).encode()
    return lambda req: req.send(
        status, body, {"Content-Type": "application/json", **(headers or {})}
    )


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as srv:
        yield srv


def test_searxng_results(server: FixtureServer) -> None:
    server.route("/search", json_reply(SEARXNG_ANSWER))
    engine = SearxngSearch(server.url("/") + "/", backoff=0.01, timeout=2.0)
    assert isinstance(engine, SearchBackend)
    results = engine.search("  capital of\naustralia ", k=3)
    assert results == [
        SearchResult("Canberra", "https://en.wikipedia.org/wiki/Canberra", "The capital"),
        SearchResult("A & B", "http://example.org/ab", "one two"),
        SearchResult("Third", "https://example.com/3", ""),
    ]
    assert server.requests[0].query == {"q": "capital of australia", "format": "json"}
    assert engine.search("capital of australia", k=1) == results[:1]


def test_searxng_really_empty_is_an_empty_list(server: FixtureServer) -> None:
    server.route("/search", json_reply({"results": [], "unresponsive_engines": []}))
    assert SearxngSearch(server.url(), backoff=0.01, timeout=2.0).search("zxqv") == []


def test_searxng_engines_failing_is_an_error_not_empty(server: FixtureServer) -> None:
    broken = {"results": [], "unresponsive_engines": [["google", "CAPTCHA"], ["bing", "timeout"]]}
    server.route("/search", json_reply(broken))
    with pytest.raises(SearchError) as info:
        SearxngSearch(server.url(), retries=1, backoff=0.01, timeout=2.0).search("q")
    assert str(info.value) == (
        "searxng search for 'q' failed: SearXNG engines did not answer"
        " (google: CAPTCHA, bing: timeout) (gave up after 2 attempts)"
    )
    assert server.hits["/search"] == 2


def test_searxng_rate_limit_then_success(server: FixtureServer) -> None:
    replies = [json_reply({}, 429, {"Retry-After": "0"}), json_reply({}, 502)]
    ok = json_reply(SEARXNG_ANSWER)

    def handle(req: Request) -> None:
        (replies.pop(0) if replies else ok)(req)

    server.route("/search", handle)
    assert len(SearxngSearch(server.url(), backoff=0.01, timeout=2.0).search("q")) == 3
    assert server.hits["/search"] == 3


def test_searxng_persistent_rate_limit(server: FixtureServer) -> None:
    server.route("/search", json_reply({}, 429))
    with pytest.raises(SearchError) as info:
        SearxngSearch(server.url(), retries=2, backoff=0.01, timeout=2.0).search("q")
    assert str(info.value) == (
        f"searxng search for 'q' failed: HTTP 429 Too Many Requests from {server.url('/search')}"
        " (gave up after 3 attempts)"
    )
    assert server.hits["/search"] == 3


def test_searxng_json_disabled(server: FixtureServer) -> None:
    server.route("/search", lambda r: r.send(403, b"Forbidden", {"Content-Type": "text/html"}))
    with pytest.raises(SearchError) as info:
        SearxngSearch(server.url(), backoff=0.01, timeout=2.0).search("q")
    assert str(info.value) == (
        f"SearXNG at {server.url('')} refused the JSON format (HTTP 403):"
        " add 'json' to search.formats in its settings.yml"
    )
    assert server.hits["/search"] == 1


def test_searxng_html_instead_of_json(server: FixtureServer) -> None:
    server.page("/search", "<html>captcha</html>")
    with pytest.raises(SearchError, match="did not return JSON"):
        SearxngSearch(server.url(), backoff=0.01, timeout=2.0).search("q")


def test_searxng_unreachable_or_stalled_never_hangs(server: FixtureServer) -> None:
    def stall(req: Request) -> None:
        req.stopping.wait(30)

    server.route("/search", stall)
    start = time.monotonic()
    with pytest.raises(SearchError, match=r"\(gave up after 2 attempts\)$"):
        SearxngSearch(server.url(), retries=1, backoff=0.01, timeout=0.3).search("q")
    assert time.monotonic() - start < 1.5


def test_searxng_bad_url() -> None:
    with pytest.raises(SearchError, match="must start with http"):
        SearxngSearch("localhost:8080")


def test_empty_query() -> None:
    with pytest.raises(SearchError, match="empty search query"):
        SearxngSearch("http://127.0.0.1:9").search("   ")


def test_search_results_are_cached(server: FixtureServer) -> None:
    server.route("/search", json_reply(SEARXNG_ANSWER))
    engine = SearxngSearch(server.url(), cache=Cache(), backoff=0.01, timeout=2.0)
    first = engine.search("capital of australia", k=2)
    assert engine.search("capital   of australia", k=2) == first
    assert server.hits["/search"] == 1
    engine.search("capital of australia", k=3)  # a different k is a different question
    assert server.hits["/search"] == 2


def test_errors_are_not_cached(server: FixtureServer) -> None:
    replies = [json_reply({}, 404)]
    ok = json_reply(SEARXNG_ANSWER)
    server.route("/search", lambda req: (replies.pop(0) if replies else ok)(req))
    engine = SearxngSearch(server.url(), cache=Cache(), backoff=0.01, timeout=2.0)
    with pytest.raises(SearchError, match="HTTP 404"):
        engine.search("q")
    assert len(engine.search("q")) == 3


# ------------------------------------------------------------------ Brave

BRAVE_ANSWER = {
    "web": {
        "results": [
            {
                "title": "Canberra",
                "url": "https://c.example/",
                "description": "<strong>Capital</strong> city",
            },
            {"title": "ftp", "url": "ftp://x.example/", "description": ""},
        ]
    }
}


def test_brave_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    with pytest.raises(SearchError) as info:
        BraveSearch()
    assert str(info.value).startswith("Brave search needs an API key: set BRAVE_API_KEY")


def test_brave_results(server: FixtureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAVE_API_KEY", "secret-key")
    server.route("/res/v1/web/search", json_reply(BRAVE_ANSWER))
    engine = BraveSearch(base_url=server.url("/res/v1/web/search"), backoff=0.01, timeout=2.0)
    assert engine.search("capital", k=50) == [
        SearchResult("Canberra", "https://c.example/", "Capital city")
    ]
    request = server.requests[0]
    assert request.headers["X-Subscription-Token"] == "secret-key"
    assert request.query == {"q": "capital", "count": "20"}


def test_brave_no_web_section_is_zero_results(server: FixtureServer) -> None:
    server.route("/s", json_reply({"query": {"original": "zxqv"}}))
    assert (
        BraveSearch("k", base_url=server.url("/s"), backoff=0.01, timeout=2.0).search("zxqv") == []
    )


def test_brave_bad_key(server: FixtureServer) -> None:
    server.route("/s", json_reply({"error": "bad"}, 401))
    with pytest.raises(SearchError) as info:
        BraveSearch("wrong", base_url=server.url("/s"), backoff=0.01, timeout=2.0).search("q")
    assert str(info.value) == "Brave rejected the API key (HTTP 401); check BRAVE_API_KEY"
    assert server.hits["/s"] == 1


# ------------------------------------------------------------------ DuckDuckGo (ddgs)


class FakeDDGS:
    """Stands in for ``ddgs.DDGS``: replays scripted outcomes, records calls."""

    script: list[Any] = []
    calls: list[dict[str, Any]] = []

    def __init__(self, timeout: int | None = 5, **_: Any) -> None:
        self.timeout = timeout

    def text(self, query: str, **kwargs: Any) -> list[dict[str, str]]:
        FakeDDGS.calls.append({"query": query, "timeout": self.timeout, **kwargs})
        outcome = FakeDDGS.script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return list(outcome)


@pytest.fixture
def fake_ddgs(monkeypatch: pytest.MonkeyPatch) -> type[FakeDDGS]:
    FakeDDGS.script, FakeDDGS.calls = [], []
    monkeypatch.setattr(ddgs, "DDGS", FakeDDGS)
    return FakeDDGS


DDG_ROWS = [
    {"title": "Canberra", "href": "https://en.wikipedia.org/wiki/Canberra", "body": "Capital."},
    {"title": "Bad", "href": "data:text/html,hi", "body": ""},
]


def test_duckduckgo_results(fake_ddgs: type[FakeDDGS]) -> None:
    fake_ddgs.script = [DDG_ROWS]
    results = DuckDuckGoSearch(backoff=0.01, timeout=2.0).search("capital", k=5)
    assert results == [
        SearchResult("Canberra", "https://en.wikipedia.org/wiki/Canberra", "Capital.")
    ]
    assert fake_ddgs.calls == [
        {"query": "capital", "timeout": 2, "max_results": 5, "backend": "auto", "region": "us-en"}
    ]


def test_duckduckgo_rate_limit_retried(fake_ddgs: type[FakeDDGS]) -> None:
    fake_ddgs.script = [RatelimitException("202 Ratelimit"), DDG_ROWS]
    assert len(DuckDuckGoSearch(backoff=0.01, timeout=2.0).search("capital")) == 1
    assert len(fake_ddgs.calls) == 2


def test_duckduckgo_persistent_rate_limit(fake_ddgs: type[FakeDDGS]) -> None:
    fake_ddgs.script = [RatelimitException("202 Ratelimit")] * 3
    with pytest.raises(SearchError) as info:
        DuckDuckGoSearch(retries=2, backoff=0.01, timeout=2.0).search("capital")
    assert str(info.value) == (
        "duckduckgo search for 'capital' failed: rate limited: 202 Ratelimit"
        " (gave up after 3 attempts)"
    )


def test_duckduckgo_no_results(fake_ddgs: type[FakeDDGS]) -> None:
    fake_ddgs.script = [DDGSException("No results found.")]
    assert DuckDuckGoSearch(backoff=0.01, timeout=2.0).search("zxqvzxqv") == []
    assert len(fake_ddgs.calls) == 1


def test_duckduckgo_engine_errors_retried(fake_ddgs: type[FakeDDGS]) -> None:
    fake_ddgs.script = [DDGSException("https://html.duckduckgo.com 403 Forbidden")] * 2
    with pytest.raises(SearchError, match="403 Forbidden \\(gave up after 2 attempts\\)"):
        DuckDuckGoSearch(retries=1, backoff=0.01, timeout=2.0).search("q")


def test_clean_results_limits_and_filters() -> None:
    rows = [("t", "HTTPS://A.example/", "s"), ("t", None, "s"), ("", "http://b.example", "")]
    assert clean_results(rows, 10) == [
        SearchResult("t", "HTTPS://A.example/", "s"),
        SearchResult("http://b.example", "http://b.example", ""),
    ]
