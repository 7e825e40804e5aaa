"""Property tests of the result parsers (SearXNG, Brave, ddgs/DuckDuckGo): whatever an
engine sends, a parser returns clean results or raises SearchError, never anything else."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webqa.errors import SearchError
from webqa.retry import Retryable
from webqa.text import strip_unprintable
from webqa.web.base import SearchResult
from webqa.web.search import (
    MAX_SNIPPET,
    MAX_TITLE,
    MAX_URL,
    clean_results,
    parse_brave,
    parse_ddgs,
    parse_json,
    parse_searxng,
)

BOUNDED = settings(max_examples=120, deadline=2000)

# Text an engine might send: markup, entities, control and bidi characters, anything.
hostile_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "<b>bold</b> &amp; &lt;i&gt;",
            "\x1b[2J\x1b[31mred",
            "\u202egnp.exe",
            "\x00\x07\x7f\x85\u2028",
            "&#0;&#x1b;&#xD800;",
            "<script>alert(1)</script>",
            "t" * 5000,
        ]
    ),
)
urlish = st.one_of(
    st.sampled_from(
        [
            "https://example.org/a",
            "http://example.org/a",
            " HTTPS://Example.org/b ",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:text/html,x",
            "http://[::1/",
            "http://example.com:99999/",
            "https://example.org/a b",
            "https://example.org/\x1b[2J",
            "https:///nohost",
            "//example.org/relative",
            "https://example.org/" + "x" * 3000,
        ]
    ),
    st.builds(lambda s: "https://example.org/" + s, st.text(max_size=30)),
    st.text(max_size=40),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), hostile_text
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
field = st.one_of(hostile_text, urlish, json_values)


def row(*names: str) -> st.SearchStrategy[dict[str, Any]]:
    """A result-like dict: the parser's field names with hostile values, some missing."""
    return st.fixed_dictionaries({}, optional={name: field for name in names})


searxng_replies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"results": st.lists(st.one_of(row("title", "url", "content"), json_values), max_size=12)},
        optional={
            "unresponsive_engines": st.one_of(
                json_values,
                st.lists(st.one_of(st.lists(hostile_text, max_size=3), json_values), max_size=4),
            ),
            "query": json_values,
        },
    ),
)
ks = st.integers(min_value=1, max_value=15)


def assert_clean(results: list[SearchResult], k: int) -> None:
    """What every parser promises about what it returns."""
    assert isinstance(results, list) and len(results) <= k
    urls = [r.url for r in results]
    assert len(set(urls)) == len(urls)
    for r in results:
        assert isinstance(r, SearchResult)
        assert re.match(r"https?://", r.url, re.I) and urlsplit(r.url).hostname
        assert len(r.url) <= MAX_URL and not any(ch.isspace() for ch in r.url)
        assert strip_unprintable(r.url) == r.url
        assert r.title and len(r.title) <= MAX_TITLE and len(r.snippet) <= MAX_SNIPPET
        for text in (r.title, r.snippet):
            assert strip_unprintable(text) == text  # no control, bidi or unassigned characters
            assert text == " ".join(text.split())  # one line, no runs of spaces


@BOUNDED
@given(data=searxng_replies, k=ks)
def test_searxng_parser_returns_clean_results_or_a_clear_error(data: Any, k: int) -> None:
    try:
        results = parse_searxng(data, k)
    except SearchError as exc:
        assert str(exc) == "SearXNG returned JSON without 'results'"
        return
    except Retryable as exc:  # found nothing because its engines failed: retried
        assert str(exc).startswith("SearXNG engines did not answer (")
        assert strip_unprintable(str(exc)) == str(exc) and len(str(exc)) < 2500
        return
    assert_clean(results, k)


@BOUNDED
@given(
    broken=st.lists(
        st.one_of(st.lists(hostile_text, min_size=1, max_size=3), hostile_text, json_values),
        min_size=1,
        max_size=30,
    )
)
def test_searxng_engine_failures_are_one_printable_line(broken: list[Any]) -> None:
    with pytest.raises(Retryable) as info:  # nothing found because engines failed: retried
        parse_searxng({"results": [], "unresponsive_engines": broken}, 10)
    message = str(info.value)
    assert message.startswith("SearXNG engines did not answer (") and message.endswith(")")
    assert strip_unprintable(message) == message and len(message) < 2500


@BOUNDED
@given(data=st.lists(st.one_of(row("title", "href", "body"), json_values), max_size=12), k=ks)
def test_ddgs_parser_returns_clean_results(data: Any, k: int) -> None:
    assert_clean(parse_ddgs(data, k), k)


@BOUNDED
@given(data=json_values, k=ks)
def test_ddgs_parser_refuses_what_is_not_a_list(data: Any, k: int) -> None:
    try:
        results = parse_ddgs(data, k)
    except SearchError as exc:
        assert str(exc).startswith("ddgs returned ")
        return
    assert_clean(results, k)


@BOUNDED
@given(
    data=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "web": st.fixed_dictionaries(
                    {"results": st.lists(row("title", "url", "description"))}
                )
            }
        ),
    ),
    k=ks,
)
def test_brave_parser_returns_clean_results_or_a_clear_error(data: Any, k: int) -> None:
    try:
        results = parse_brave(data, k)
    except SearchError as exc:
        assert str(exc) == "Brave returned JSON with malformed 'web.results'"
        return
    assert_clean(results, k)


@BOUNDED
@given(
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.integers(min_value=1, max_value=100_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(min_value=1, max_value=100_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        st.integers(min_value=4301, max_value=20_000).map(lambda n: b"1" * n),  # int too long
    )
)
def test_json_reader_returns_a_value_or_a_clear_error(body: bytes) -> None:
    try:
        parse_json(body, "engine at http://e.example/search")
    except SearchError as exc:
        assert str(exc) in (
            "engine at http://e.example/search did not return JSON (a captcha or error page?)",
            "engine at http://e.example/search returned JSON nested too deeply to read",
        )


# Well-formed results come through unchanged, in order, without duplicates, at most k.
plain_words = st.text(alphabet="abcdefghij XYZ.,-", min_size=1, max_size=40).map(
    lambda s: " ".join(s.split()) or "x"
)
good_rows = st.lists(
    st.tuples(
        plain_words, st.integers(0, 30).map(lambda i: f"https://site{i}.example/p"), plain_words
    ),
    max_size=20,
)


@BOUNDED
@given(rows=good_rows, k=ks)
def test_well_formed_results_survive(rows: list[tuple[str, str, str]], k: int) -> None:
    expected: list[SearchResult] = []
    for title, url, snippet in rows:
        if url not in [r.url for r in expected] and len(expected) < k:
            expected.append(SearchResult(title, url, snippet))
    reply = {"results": [{"title": t, "url": u, "content": s} for t, u, s in rows]}
    assert parse_searxng(json.loads(json.dumps(reply)), k) == expected
    assert clean_results(rows, k) == expected
