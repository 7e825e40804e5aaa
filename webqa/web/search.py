"""Live search backends: SearXNG, DuckDuckGo (through ``ddgs``) and the Brave Search API.

Each is a ``SearchBackend``: ``search(query, k) -> list[SearchResult]``. All share one
policy: rate limits (429), server errors and timeouts are retried with exponential
backoff, then a ``SearchError`` says what happened; an empty list means the engine
really found nothing, never that it failed quietly. Results are cached (``SEARCH_TTL``).

The search endpoint is the one the user configured, so the SSRF guard does not apply to
it; it applies to every page fetched from the results. Result URLs that are not http(s)
are dropped here.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from typing import Any, Protocol, runtime_checkable

import httpx

from webqa.errors import SearchError
from webqa.web.base import SearchResult
from webqa.web.cache import SEARCH_TTL, Cache
from webqa.web.fetch import DEFAULT_USER_AGENT, Retryable, parse_retry_after, retry_delay

BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"
BRAVE_KEY_ENV = "BRAVE_API_KEY"


@runtime_checkable
class SearchBackend(Protocol):
    """A search engine: one call."""

    name: str

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """The top ``k`` results; raises SearchError on failure."""
        ...


def _plain(text: Any) -> str:
    """Snippet text without markup (engines send ``<strong>`` and entities)."""
    if not isinstance(text, str):
        return ""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", text)).split())


def clean_results(raw: list[tuple[Any, Any, Any]], k: int) -> list[SearchResult]:
    """(title, url, snippet) triples to at most ``k`` results: http(s) URLs only, no
    duplicate URLs, text without markup."""
    results: list[SearchResult] = []
    seen: set[str] = set()
    for title, url, snippet in raw:
        if not isinstance(url, str):
            continue
        url = url.strip()
        if not re.match(r"https?://[^/\s]", url, re.I) or url in seen:
            continue
        seen.add(url)
        results.append(SearchResult(title=_plain(title) or url, url=url, snippet=_plain(snippet)))
        if len(results) >= k:
            break
    return results


class _RetryingBackend:
    """Caching and the retry policy; subclasses implement ``_search_once``."""

    name = "search"

    def __init__(
        self,
        *,
        cache: Cache | None = None,
        timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
    ) -> None:
        self.cache = cache
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after

    def _endpoint(self) -> str:
        return ""

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """The top ``k`` results for ``query``; raises SearchError after the last retry."""
        query = " ".join(query.split())
        if not query:
            raise SearchError("empty search query")
        if k < 1:
            return []
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
        attempt = 0
        while True:
            try:
                return self._search_once(query, k)
            except Retryable as exc:
                failure = exc
            attempt += 1
            if attempt > self.retries:
                raise SearchError(
                    f"{self.name} search for {query!r} failed: {failure} "
                    f"(gave up after {attempt} attempts)"
                )
            time.sleep(
                retry_delay(attempt - 1, self.backoff, failure.retry_after, self.max_retry_after)
            )

    def _search_once(self, query: str, k: int) -> list[SearchResult]:
        raise NotImplementedError

    def _get_json(self, url: str, *, params: dict[str, str], headers: dict[str, str]) -> Any:
        """GET a JSON API; 429/5xx/timeouts become Retryable, other errors SearchError."""
        try:
            with httpx.Client(timeout=self.timeout, trust_env=False) as client:
                resp = client.get(
                    url, params=params, headers={"User-Agent": DEFAULT_USER_AGENT, **headers}
                )
        except httpx.TransportError as exc:
            raise Retryable(f"cannot reach {url}: {exc or type(exc).__name__}") from exc
        status = resp.status_code
        if status == 429 or status >= 500:
            raise Retryable(
                f"HTTP {status} {resp.reason_phrase} from {url}",
                parse_retry_after(resp.headers.get("retry-after")),
            )
        if status >= 400:
            raise SearchError(self._client_error(resp))
        try:
            return resp.json()
        except ValueError as exc:
            raise SearchError(
                f"{self.name} at {url} did not return JSON (a captcha or error page?)"
            ) from exc

    def _client_error(self, resp: httpx.Response) -> str:
        return f"{self.name} refused the search: HTTP {resp.status_code} {resp.reason_phrase}"


class SearxngSearch(_RetryingBackend):
    """A SearXNG instance's JSON API (``/search?q=...&format=json``).

    The instance must allow the ``json`` format (``search.formats`` in settings.yml).
    """

    name = "searxng"

    def __init__(
        self,
        base_url: str,
        *,
        cache: Cache | None = None,
        timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
    ) -> None:
        super().__init__(
            cache=cache,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_retry_after=max_retry_after,
        )
        if not re.match(r"https?://", base_url, re.I):
            raise SearchError(f"SearXNG URL must start with http:// or https://: {base_url!r}")
        self.base_url = base_url.rstrip("/")

    def _endpoint(self) -> str:
        return self.base_url

    def _search_once(self, query: str, k: int) -> list[SearchResult]:
        data = self._get_json(
            f"{self.base_url}/search", params={"q": query, "format": "json"}, headers={}
        )
        raw = data.get("results") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise SearchError(f"SearXNG at {self.base_url} returned JSON without 'results'")
        results = clean_results(
            [(r.get("title"), r.get("url"), r.get("content")) for r in raw if isinstance(r, dict)],
            k,
        )
        broken = data.get("unresponsive_engines") or []
        if not raw and broken:  # nothing found because the engines failed, not because none exist
            names = ", ".join(
                ": ".join(map(str, e)) if isinstance(e, list) else str(e) for e in broken
            )
            raise Retryable(f"SearXNG engines did not answer ({names})")
        return results

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
        self,
        api_key: str | None = None,
        *,
        base_url: str = BRAVE_URL,
        cache: Cache | None = None,
        timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
    ) -> None:
        super().__init__(
            cache=cache,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_retry_after=max_retry_after,
        )
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
            params={"q": query, "count": str(min(k, 20))},
            headers={"Accept": "application/json", "X-Subscription-Token": self.api_key},
        )
        web = data.get("web") if isinstance(data, dict) else None
        raw = web.get("results", []) if isinstance(web, dict) else []
        if not isinstance(raw, list):
            raise SearchError("Brave returned JSON with malformed 'web.results'")
        rows = [
            (r.get("title"), r.get("url"), r.get("description")) for r in raw if isinstance(r, dict)
        ]
        return clean_results(rows, k)

    def _client_error(self, resp: httpx.Response) -> str:
        if resp.status_code in (401, 403):
            return f"Brave rejected the API key (HTTP {resp.status_code}); check {BRAVE_KEY_ENV}"
        return super()._client_error(resp)


class DuckDuckGoSearch(_RetryingBackend):
    """DuckDuckGo and friends through the ``ddgs`` package (no key needed).

    ``backend`` is ddgs's: ``"auto"`` spreads over several engines, ``"duckduckgo"`` asks
    only DuckDuckGo.
    """

    name = "duckduckgo"

    def __init__(
        self,
        *,
        backend: str = "auto",
        region: str = "us-en",
        cache: Cache | None = None,
        timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
    ) -> None:
        super().__init__(
            cache=cache,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_retry_after=max_retry_after,
        )
        self.backend = backend
        self.region = region

    def _endpoint(self) -> str:
        return f"ddgs:{self.backend}:{self.region}"

    def _search_once(self, query: str, k: int) -> list[SearchResult]:
        from ddgs import DDGS
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        try:
            raw = DDGS(timeout=max(1, round(self.timeout))).text(
                query, max_results=k, backend=self.backend, region=self.region
            )
        except RatelimitException as exc:
            raise Retryable(f"rate limited: {exc}") from exc
        except TimeoutException as exc:
            raise Retryable(f"timed out: {exc}") from exc
        except DDGSException as exc:
            if str(exc) == "No results found.":  # ddgs's way of saying zero results
                return []
            raise Retryable(str(exc) or type(exc).__name__) from exc
        rows = [(r.get("title"), r.get("href"), r.get("body")) for r in raw if isinstance(r, dict)]
        return clean_results(rows, k)
