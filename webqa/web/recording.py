"""A ``Web`` that remembers every search and fetch made through it, for the log and for
telling "every search failed" apart from "nothing was found" (``webqa.runner``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from webqa.errors import FetchError, SearchError
from webqa.web.base import Document, SearchResult, Web


@dataclass(frozen=True)
class Visit:
    """One search or fetch a browser made."""

    kind: str  # "search" | "fetch"
    target: str  # the query or the URL
    ok: bool
    error: str | None = None


class RecordingWeb:
    """A ``Web`` that passes every call through and remembers it as a ``Visit``."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.name = web.name
        self._visits: list[Visit] = []
        self._lock = threading.Lock()

    @property
    def visits(self) -> tuple[Visit, ...]:
        with self._lock:
            return tuple(self._visits)

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        try:
            results = self.web.search(query, k)
        except SearchError as error:
            self._add(Visit("search", query, False, str(error)))
            raise
        self._add(Visit("search", query, True))
        return results

    def fetch(self, url: str) -> Document:
        try:
            document = self.web.fetch(url)
        except FetchError as error:
            self._add(Visit("fetch", url, False, str(error)))
            raise
        self._add(Visit("fetch", url, True))
        return document

    def _add(self, visit: Visit) -> None:
        with self._lock:
            self._visits.append(visit)
