"""The web seam: what the browser needs from any web, offline corpus or live.

A ``Web`` answers two calls: ``search(query, k)`` and ``fetch(url)``. The browser turns
search results into a results page and fetched documents into pages; it never talks to
the network or the corpus any other way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit


@dataclass(frozen=True)
class SearchResult:
    """One search hit."""

    title: str
    url: str
    snippet: str = ""


@dataclass(frozen=True)
class Document:
    """A fetched resource, before it becomes a browser page.

    ``body`` is HTML when ``content_type`` is ``text/html``, else plain text.
    ``clean`` says the HTML is already simple article markup (offline corpus pages), so
    Readability is skipped; live pages are simplified with Readability first.
    """

    url: str
    title: str
    body: str
    content_type: str = "text/html"
    clean: bool = False


@runtime_checkable
class Web(Protocol):
    """A place to search and fetch from."""

    name: str

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """The top ``k`` results for ``query``; raises SearchError on failure."""
        ...

    def fetch(self, url: str) -> Document:
        """The document at ``url``; raises FetchError (or BlockedURLError) on failure."""
        ...


_C = TypeVar("_C", bound="Closing")


class Closing:
    """A mixin for things that hold a resource: ``with thing:`` calls ``thing.close()``
    at the end of the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def domain_of(url: str) -> str:
    """The domain shown for a URL: host without ``www.``; for ``zim://NAME/...`` NAME."""
    parts = urlsplit(url)
    host = parts.hostname or parts.netloc or ""
    return host[4:] if host.startswith("www.") else host
