"""The live web: a search backend plus the guarded fetcher, behind the ``Web`` seam."""

from __future__ import annotations

from collections.abc import Iterable

from webqa.errors import SearchError
from webqa.web.base import Closing, Document, SearchResult
from webqa.web.cache import Cache
from webqa.web.fetch import Fetcher
from webqa.web.guard import IPNetwork
from webqa.web.search import (
    DEADLINE,
    BraveSearch,
    DuckDuckGoSearch,
    Options,
    SearchBackend,
    SearxngSearch,
)

ENGINES = ("duckduckgo", "searxng", "brave")


class LiveWeb(Closing):
    """Search with ``search_backend``, fetch with ``fetcher`` (a ``Web``)."""

    def __init__(self, search_backend: SearchBackend, fetcher: Fetcher) -> None:
        self.search_backend = search_backend
        self.fetcher = fetcher
        self.name = f"live web ({search_backend.name})"

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """The top ``k`` results; raises SearchError on failure."""
        return self.search_backend.search(query, k)

    def fetch(self, url: str) -> Document:
        """The page at ``url``; raises FetchError (or BlockedURLError) on failure."""
        return self.fetcher.fetch(url)

    def close(self) -> None:
        self.fetcher.close()


def make_live_web(
    *,
    engine: str | None = None,
    searxng_url: str | None = None,
    brave_api_key: str | None = None,
    allow_private: bool | Iterable[str | IPNetwork] = False,
    cache: bool | Cache = True,
    timeout: float = 15.0,
    search_deadline: float = DEADLINE,
) -> LiveWeb:
    """A ``LiveWeb`` for ``engine`` ("duckduckgo", "searxng" or "brave").

    ``engine=None`` picks SearXNG when ``searxng_url`` is given, else DuckDuckGo.
    ``cache=True`` uses the shared on-disk cache, ``False`` none, or pass a ``Cache``.
    ``allow_private`` opens private addresses to fetching (see ``URLGuard``).
    ``timeout`` bounds each page fetch (wall clock, retries included) and each search
    try; ``search_deadline`` bounds a whole search, retries and ``Retry-After`` included.
    """
    chosen = (engine or ("searxng" if searxng_url else "duckduckgo")).strip().lower()
    store = Cache() if cache is True else (cache if isinstance(cache, Cache) else None)
    limits: Options = {"cache": store, "timeout": timeout, "deadline": search_deadline}
    backend: SearchBackend
    if chosen == "searxng":
        if not searxng_url:
            raise SearchError("the searxng engine needs a SearXNG URL (--searxng URL)")
        backend = SearxngSearch(searxng_url, **limits)
    elif chosen == "brave":
        backend = BraveSearch(brave_api_key, **limits)
    elif chosen == "duckduckgo":
        backend = DuckDuckGoSearch(**limits)
    else:
        raise SearchError(f"unknown search engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return LiveWeb(backend, Fetcher(allow_private=allow_private, cache=store, timeout=timeout))
