"""Live search backends: SearXNG, DuckDuckGo (through ``ddgs``) and the Brave Search API.

Each is a ``SearchBackend``: ``search(query, k) -> list[SearchResult]``. All share one
policy, webqa's (``webqa.retry``): rate limits (429), server errors and timeouts are
retried with exponential backoff, then a ``SearchError`` says what happened; an empty
list means the engine really found nothing, never that it failed quietly. Results are
cached (``SEARCH_TTL``).

Every search ends within ``deadline`` seconds of wall clock (default 30), retries and
``Retry-After`` waits included (a wait that would pass the deadline fails at once), and
each try within ``timeout`` (default 15), however slowly the engine trickles its reply.
A JSON reply is read like a page: at most ``max_bytes`` (5 MB) after decompression, a
truncated compressed reply is refused, and JSON nested too deeply is a ``SearchError``.

The search endpoint is the one the user configured, so the SSRF guard does not apply to
it; it applies to every page fetched from the results. Result URLs that are not http(s)
are dropped here, and result text is cut to plain, bounded, printable text.
"""

from __future__ import annotations

import html
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from webqa.errors import FetchError, SearchError
from webqa.retry import GaveUp, Retryable, RetryPolicy, raise_if_retryable
from webqa.text import strip_unprintable
from webqa.web.base import SearchResult
from webqa.web.cache import SEARCH_TTL, Cache
from webqa.web.decompress import read_capped
from webqa.web.transport import USER_AGENT, deadline, deadline_client, time_left

if TYPE_CHECKING:  # typing.Unpack is Python 3.11+
    from typing_extensions import Unpack

BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"
BRAVE_KEY_ENV = "BRAVE_API_KEY"

TIMEOUT = 15.0  # seconds one try may take, however the engine trickles
DEADLINE = 30.0  # seconds a whole search may take, retries and Retry-After waits included
MAX_REPLY_BYTES = 5_000_000  # an engine's reply after decompression, as for pages
MAX_TITLE = 300  # characters kept of a result's title
MAX_SNIPPET = 1000  # characters kept of a result's snippet
MAX_URL = 2048  # longer result URLs are dropped


class Options(TypedDict, total=False):
    """The options every backend takes (see ``_RetryingBackend``)."""

    cache: Cache | None
    timeout: float
    deadline: float
    retries: int
    backoff: float
    max_retry_after: float
    max_bytes: int


@runtime_checkable
class SearchBackend(Protocol):
    """A search engine: one call."""

    name: str

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """The top ``k`` results; raises SearchError on failure."""
        ...


_TAG = re.compile(r"<[^<>]*>")  # not <[^>]*>: that is quadratic on "<<<<..."


def _plain(text: Any, limit: int = MAX_SNIPPET) -> str:
    """Snippet text without markup (engines send ``<strong>`` and entities), printable,
    on one line and at most ``limit`` characters."""
    if not isinstance(text, str):
        return ""
    text = text[: limit * 20]  # markup and entities shrink; nothing useful lies beyond
    plain = " ".join(strip_unprintable(html.unescape(_TAG.sub("", text))).split())
    return plain[:limit].rstrip()


def _clean_url(url: Any) -> str | None:
    """An absolute http(s) URL with a host, without whitespace or control characters,
    at most ``MAX_URL`` characters; else None."""
    if not isinstance(url, str):
        return None
    url = url.strip().replace(" ", "%20")
    if len(url) > MAX_URL or strip_unprintable(url) != url or any(ch.isspace() for ch in url):
        return None
    if not re.match(r"https?://[^/\s]", url, re.I):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return None
    return url if parts.hostname else None


def clean_results(raw: Sequence[tuple[Any, Any, Any]], k: int) -> list[SearchResult]:
    """(title, url, snippet) triples to at most ``k`` results: http(s) URLs only, no
    duplicate URLs, text without markup (see ``_plain``)."""
    results: list[SearchResult] = []
    seen: set[str] = set()
    for title, url, snippet in raw:
        clean = _clean_url(url)
        if clean is None or clean in seen:
            continue
        seen.add(clean)
        results.append(
            SearchResult(
                title=_plain(title, MAX_TITLE) or clean[:MAX_TITLE],
                url=clean,
                snippet=_plain(snippet, MAX_SNIPPET),
            )
        )
        if len(results) >= k:
            break
    return results


def _rows(items: Any, *fields: str) -> list[tuple[Any, Any, Any]]:
    """``fields`` of each dict in ``items`` (a list), as triples; other items skipped."""
    if not isinstance(items, list):
        return []
    return [
        (item.get(fields[0]), item.get(fields[1]), item.get(fields[2]))
        for item in items
        if isinstance(item, dict)
    ]


def parse_json(body: bytes, where: str) -> Any:
    """A JSON reply's value; SearchError naming ``where`` if it is not JSON or is nested
    too deeply to parse (a 200,000-deep array)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise SearchError(f"{where} returned JSON nested too deeply to read") from None
    except ValueError as exc:  # includes UnicodeDecodeError
        raise SearchError(f"{where} did not return JSON (a captcha or error page?)") from exc


def _engine_names(broken: list[Any]) -> str:
    """SearXNG's ``unresponsive_engines`` (``[name, reason]`` pairs) as one short line."""
    names = []
    for entry in broken[:10]:
        parts = entry if isinstance(entry, list) else [entry]
        text = ": ".join(_plain(p, 100) for p in parts[:2] if isinstance(p, str))
        if text:
            names.append(text)
    return ", ".join(names) or "no reason given"


def parse_searxng(data: Any, k: int, where: str = "SearXNG") -> list[SearchResult]:
    """Results from a SearXNG JSON reply; SearchError if it has no ``results`` list,
    ``Retryable`` if it found nothing because its engines failed."""
    raw = data.get("results") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise SearchError(f"{where} returned JSON without 'results'")
    results = clean_results(_rows(raw, "title", "url", "content"), k)
    broken = data.get("unresponsive_engines") if isinstance(data, dict) else None
    if not raw and isinstance(broken, list) and broken:
        # nothing found because the engines failed, not because nothing exists
        raise Retryable(f"SearXNG engines did not answer ({_engine_names(broken)})")
    return results


def parse_brave(data: Any, k: int) -> list[SearchResult]:
    """Results from a Brave Search API reply (no ``web`` section: zero results)."""
    web = data.get("web") if isinstance(data, dict) else None
    raw = web.get("results", []) if isinstance(web, dict) else []
    if not isinstance(raw, list):
        raise SearchError("Brave returned JSON with malformed 'web.results'")
    return clean_results(_rows(raw, "title", "url", "description"), k)


def parse_ddgs(raw: Any, k: int) -> list[SearchResult]:
    """Results from ``ddgs``'s ``text()`` (a list of dicts with title, href, body)."""
    if not isinstance(raw, list):
        raise SearchError(f"ddgs returned {type(raw).__name__}, not a list of results")
    return clean_results(_rows(raw, "title", "href", "body"), k)


class _RetryingBackend:
    """Caching, the retry policy and the deadlines; subclasses implement ``_search_once``.

    ``timeout``: seconds one try may take (wall clock); ``deadline``: seconds the whole
    ``search`` may take, retries and waits included; ``retries`` counts tries after the
    first; ``max_bytes`` caps a reply after decompression.
    """

    name = "search"

    def __init__(
        self,
        *,
        cache: Cache | None = None,
        timeout: float = TIMEOUT,
        deadline: float = DEADLINE,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self.cache = cache
        self.timeout = timeout
        self.deadline = deadline
        self.retry = RetryPolicy(retries, backoff, max_retry_after)
        self.max_bytes = max_bytes

    def _endpoint(self) -> str:
        return ""

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """The top ``k`` results for ``query``; raises SearchError after the last retry,
        or once ``deadline`` seconds have passed."""
        query = " ".join(query.split())
        if not query:
            raise SearchError("empty search query")
        if k < 1:
            raise SearchError(f"the number of results must be at least 1, not {k}")
        key = json.dumps([self.name, self._endpoint(), k, query])
        if self.cache is not None:
            hit = self.cache.get("search", key)
            if isinstance(hit, str):
                return [SearchResult(**r) for r in json.loads(hit)]
        results = self._with_retries(query, k)
        if self.cache is not None:
            rows = [{"title": r.title, "url": r.url, "snippet": r.snippet} for r in results]
            self.cache.put("search", key, json.dumps(rows), SEARCH_TTL)
        return results

    def _with_retries(self, query: str, k: int) -> list[SearchResult]:
        what = f"{self.name} search for {query!r}"

        def once() -> list[SearchResult]:
            if time_left() <= 0:
                raise SearchError(f"{what} timed out after {self.deadline:g} s")
            with deadline(self.timeout):
                return self._search_once(query, k)

        with deadline(self.deadline):
            try:
                return self.retry.call(once, time_left=time_left)
            except GaveUp as stop:
                raise SearchError(f"{what} failed: {stop} ({stop.why(self.deadline)})") from None

    def _search_once(self, query: str, k: int) -> list[SearchResult]:
        raise NotImplementedError

    def _get_json(
        self, url: str, *, params: Sequence[tuple[str, str]], headers: dict[str, str]
    ) -> Any:
        """GET a JSON API within the try's deadline, reading at most ``max_bytes``;
        429/5xx/timeouts become Retryable, other errors SearchError."""
        try:
            with (
                deadline_client() as client,
                client.stream(
                    "GET",
                    url,
                    params=list(params),
                    headers={"User-Agent": USER_AGENT, **headers},
                    timeout=max(time_left(), 0.001),
                ) as resp,
            ):
                status = resp.status_code
                raise_if_retryable(
                    status, f"HTTP {status} {resp.reason_phrase} from {url}", resp.headers
                )
                if status >= 400:
                    raise SearchError(self._client_error(resp))
                body = read_capped(resp, url, self.max_bytes, what=f"{self.name} reply")
        except httpx.TimeoutException as exc:
            raise Retryable(f"no complete reply from {url} in time") from exc
        except httpx.TransportError as exc:
            raise Retryable(f"cannot reach {url}: {exc or type(exc).__name__}") from exc
        except FetchError as exc:  # too large, corrupt or truncated compressed reply
            raise SearchError(str(exc)) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SearchError(f"{self.name} at {url}: {exc}") from exc
        return parse_json(body, f"{self.name} at {url}")

    def _client_error(self, resp: httpx.Response) -> str:
        return f"{self.name} refused the search: HTTP {resp.status_code} {resp.reason_phrase}"


class SearxngSearch(_RetryingBackend):
    """A SearXNG instance's JSON API (``/search?q=...&format=json``).

    The instance must allow the ``json`` format (``search.formats`` in settings.yml).
    ``base_url`` may end in ``/search`` and may carry a query string (``?language=de``,
    a token): its parameters are sent with every search, except ``q`` and ``format``.
    """

    name = "searxng"

    def __init__(self, base_url: str, **options: Any) -> None:
        super().__init__(**options)
        try:
            parts = urlsplit(base_url.strip())
            parts.port  # noqa: B018 (raises ValueError on a bad port)
        except ValueError as exc:
            raise SearchError(f"bad SearXNG URL {base_url!r}: {exc}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise SearchError(f"SearXNG URL must start with http:// or https://: {base_url!r}")
        path = parts.path.rstrip("/")
        path = path.removesuffix("/search")
        self.base_url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        self.search_url = f"{self.base_url}/search"
        self.params = [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if key not in ("q", "format")
        ]

    def _endpoint(self) -> str:
        return f"{self.search_url}?{urlencode(self.params)}" if self.params else self.base_url

    def _search_once(self, query: str, k: int) -> list[SearchResult]:
        data = self._get_json(
            self.search_url, params=[*self.params, ("q", query), ("format", "json")], headers={}
        )
        return parse_searxng(data, k, f"SearXNG at {self.base_url}")

    def _client_error(self, resp: httpx.Response) -> str:
        if resp.status_code == 403:
            return (
                f"SearXNG at {self.base_url} refused the JSON format (HTTP 403): "
                "add 'json' to search.formats in its settings.yml"
            )
        return super()._client_error(resp)


class BraveSearch(_RetryingBackend):
    """The Brave Search API; the key comes from ``api_key`` or ``$BRAVE_API_KEY``."""

    name = "brave"

    def __init__(
        self, api_key: str | None = None, *, base_url: str = BRAVE_URL, **options: Unpack[Options]
    ) -> None:
        super().__init__(**options)
        key = api_key or os.environ.get(BRAVE_KEY_ENV, "")
        if not key.strip():
            raise SearchError(
                f"Brave search needs an API key: set {BRAVE_KEY_ENV} or pass api_key "
                "(free keys: https://brave.com/search/api/)"
            )
        self.api_key = key.strip()
        self.base_url = base_url

    def _endpoint(self) -> str:
        return self.base_url

    def _search_once(self, query: str, k: int) -> list[SearchResult]:
        data = self._get_json(
            self.base_url,
            params=[("q", query), ("count", str(min(k, 20)))],
            headers={"Accept": "application/json", "X-Subscription-Token": self.api_key},
        )
        return parse_brave(data, k)

    def _client_error(self, resp: httpx.Response) -> str:
        if resp.status_code in (401, 403):
            return f"Brave rejected the API key (HTTP {resp.status_code}); check {BRAVE_KEY_ENV}"
        return super()._client_error(resp)


class DuckDuckGoSearch(_RetryingBackend):
    """DuckDuckGo and friends through the ``ddgs`` package (no key needed).

    ``backend`` is ddgs's: ``"auto"`` spreads over several engines, ``"duckduckgo"`` asks
    only DuckDuckGo. ddgs does its own HTTP, so the deadlines cannot cut its sockets: each
    try runs in a daemon thread, and a try still running at its deadline is abandoned
    (ddgs's own per-request timeout ends it later).
    """

    name = "duckduckgo"

    def __init__(
        self,
        *,
        backend: str = "auto",
        region: str = "us-en",
        client: Callable[..., Any] | None = None,
        **options: Unpack[Options],
    ) -> None:
        super().__init__(**options)
        self.backend = backend
        self.region = region
        self.client = client  # makes a ddgs.DDGS-like client from timeout= (a seam)

    def _endpoint(self) -> str:
        return f"ddgs:{self.backend}:{self.region}"

    def _search_once(self, query: str, k: int) -> list[SearchResult]:
        from ddgs import DDGS
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        make = self.client if self.client is not None else DDGS

        def ask() -> Any:
            return make(timeout=max(1, round(self.timeout))).text(
                query, max_results=k, backend=self.backend, region=self.region
            )

        try:
            raw = _within_deadline(ask)
        except RatelimitException as exc:
            raise Retryable(f"rate limited: {exc}") from exc
        except TimeoutException as exc:
            raise Retryable(f"timed out: {exc}") from exc
        except DDGSException as exc:
            if str(exc) == "No results found.":  # ddgs's way of saying zero results
                return []
            raise Retryable(str(exc) or type(exc).__name__) from exc
        return parse_ddgs(raw, k)


def _within_deadline(call: Callable[[], Any]) -> Any:
    """``call()`` in a daemon thread; its result or exception, or ``Retryable`` if it is
    still running when the current deadline passes (the thread is then left to finish)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except Exception as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=run, name="webqa-search", daemon=True)
    thread.start()
    thread.join(max(0.0, min(time_left(), DEADLINE)))
    if thread.is_alive():
        raise Retryable("no reply in time")
    if "error" in box:
        raise box["error"]
    return box.get("value")
