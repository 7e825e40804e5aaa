"""Pages: HTML or text turned into lines of text with numbered links."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    """A numbered link on a page. ``domain`` is "" for same-site links."""

    id: int
    text: str
    url: str
    domain: str = ""


@dataclass(frozen=True)
class Page:
    """A page as the browser shows it.

    ``lines`` is the rendered text, links written as ``【id†text†domain】`` (or
    ``【id†text】`` for same-site links) and images as ``[Image: alt]``.
    ``plain`` is the same text with link markup replaced by the link text; quotes are
    matched against it.
    """

    url: str
    title: str
    domain: str
    lines: tuple[str, ...]
    links: tuple[Link, ...]
    plain: str


@dataclass(frozen=True)
class Quote:
    """An extract the browser recorded: the exact page text, with where it came from."""

    title: str
    url: str
    domain: str
    text: str
