"""A small in-memory ``Web`` for tests: a dict of documents and a canned search."""

from __future__ import annotations

from collections.abc import Iterable

from webqa.errors import FetchError, SearchError
from webqa.web.base import Document, SearchResult


class FakeWeb:
    """Fetches from ``docs`` by URL; searches ``results`` by exact query, else by words.

    Every call is recorded in ``searches`` / ``fetches``. ``search_error`` (if set) makes
    every search fail; URLs not in ``docs`` fail to fetch.
    """

    def __init__(
        self,
        docs: Iterable[Document] = (),
        results: dict[str, list[SearchResult]] | None = None,
        *,
        name: str = "fake",
        search_error: str | None = None,
    ) -> None:
        self.name = name
        self.docs = {doc.url: doc for doc in docs}
        self.results = dict(results or {})
        self.search_error = search_error
        self.searches: list[str] = []
        self.fetches: list[str] = []

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """Canned results for ``query``, else documents whose title or body has every word."""
        self.searches.append(query)
        if self.search_error is not None:
            raise SearchError(self.search_error)
        if query in self.results:
            return self.results[query][:k]
        words = query.lower().split()
        hits = [
            SearchResult(doc.title, doc.url, doc.body[:80])
            for doc in self.docs.values()
            if all(w in f"{doc.title} {doc.body}".lower() for w in words)
        ]
        return hits[:k]

    def fetch(self, url: str) -> Document:
        """The document at ``url``; FetchError if there is none."""
        self.fetches.append(url)
        if url not in self.docs:
            raise FetchError(f"404 Not Found: {url}", url=url)
        return self.docs[url]
