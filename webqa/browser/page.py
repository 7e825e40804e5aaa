"""Pages: HTML or text turned into lines of text with numbered links."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from urllib.parse import quote_plus, urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString

from webqa.web.base import Document, SearchResult, domain_of

WRAP_WIDTH = 100  # characters per page line; link markers are never split
SEARCH_SCHEME = "search:"  # URL prefix of search results pages
# Readability's output is replaced by the raw body when it keeps less than this share
# of the raw text and is shorter than FALLBACK_MAX_CHARS (it can drop short pages).
FALLBACK_RATIO = 0.3
FALLBACK_MAX_CHARS = 2000


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
    matched against it. ``headings`` numbers the lines of ``plain`` that were HTML
    headings (h1-h6), which tell a passage what section it belongs to.
    """

    url: str
    title: str
    domain: str
    lines: tuple[str, ...]
    links: tuple[Link, ...]
    plain: str
    headings: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Quote:
    """An extract the browser recorded: the exact page text, with where it came from."""

    title: str
    url: str
    domain: str
    text: str


# ---------------------------------------------------------------------------- text


_WS = re.compile(r"\s+")
_MARKER = re.compile(r"【(\d+)†([^†】]*)(?:†[^】]*)?】")
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Characters the browser's own markup uses: page text must not be able to forge a link
# marker or an observation section ("●Next action"), so they are replaced.
_SANITIZE = str.maketrans({"【": "[", "】": "]", "●": "•"})


def sanitize(text: str) -> str:
    """Untrusted text with control characters and browser markup characters replaced."""
    return _CONTROL.sub(" ", text.translate(_SANITIZE))


def one_line(text: str) -> str:
    """``text`` with every run of whitespace collapsed to one space, stripped."""
    return _WS.sub(" ", text).strip()


def plain_line(line: str) -> str:
    """A rendered line with link markers replaced by their link text."""
    return _MARKER.sub(r"\2", line)


def normalize(text: str) -> str:
    """Case- and whitespace-folded text (one char per char, whitespace runs to one space)."""
    if text.isascii():
        return _WS.sub(" ", text.lower())
    return _WS.sub(" ", "".join(_lower(c) for c in text))


def _lower(c: str) -> str:
    low = c.lower()
    return low if len(low) == 1 else c


def _normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """``normalize(text)`` and, for each of its characters, the index it came from."""
    out: list[str] = []
    offsets: list[int] = []
    in_space = False
    for i, c in enumerate(text):
        if c.isspace():
            if not in_space:
                out.append(" ")
                offsets.append(i)
            in_space = True
        else:
            out.append(_lower(c))
            offsets.append(i)
            in_space = False
    return "".join(out), offsets


def quote_needle(text: str) -> str:
    """The normalized form of a quote the model wrote (link markup removed, stripped)."""
    return normalize(plain_line(text)).strip()


def match_quote(plain: str, start: str, end: str | None = None) -> str | None:
    """The exact span of ``plain`` that ``start`` (through ``end``) matches, or None.

    Matching ignores case, runs of whitespace and link markup. With ``end`` the span runs
    from the first match of ``start`` to the end of the first match of ``end`` after it.
    """
    needle = quote_needle(start)
    if not needle:
        return None
    norm, offsets = _normalize_with_offsets(plain)
    i = norm.find(needle)
    if i < 0:
        return None
    stop = i + len(needle)
    if end is not None:
        tail = quote_needle(end)
        j = norm.find(tail, stop) if tail else -1
        if j < 0:
            return None
        stop = j + len(tail)
    return plain[offsets[i] : offsets[stop - 1] + 1]


def is_search_page(page: Page) -> bool:
    """Whether ``page`` is a search results page (its text cannot be quoted)."""
    return page.url.startswith(SEARCH_SCHEME)


# ---------------------------------------------------------------------------- lines


def _wrap(line: str, width: int, size: Callable[[str], int] = len) -> list[str]:
    """Greedy word wrap by display ``size``; a word (maybe a whole link marker) stays whole."""
    out: list[str] = []
    current: list[str] = []
    used = 0
    for word in line.split(" "):
        n = size(word)
        if current and used + 1 + n > width:
            out.append(" ".join(current))
            current, used = [], 0
        used += n + (1 if current else 0)
        current.append(word)
    if current:
        out.append(" ".join(current))
    return out


def _build(
    url: str,
    title: str,
    domain: str,
    raw_lines: Sequence[str],
    links: Sequence[Link],
    headings: Collection[int] = (),
) -> Page:
    """A Page from logical lines holding ``\\x00id\\x00`` link placeholders."""
    by_id = {link.id: link for link in links}

    def marker(m: re.Match[str]) -> str:
        link = by_id[int(m.group(1))]
        tail = f"†{link.domain}" if link.domain else ""
        return f"【{link.id}†{link.text}{tail}】"

    def text(m: re.Match[str]) -> str:
        return by_id[int(m.group(1))].text

    lines: list[str] = []
    plain: list[str] = []
    for raw in raw_lines:
        # Wrap before substituting so that a marker (which holds spaces) stays whole.
        parts = _wrap(raw, WRAP_WIDTH, lambda word: len(_PLACEHOLDER.sub(marker, word)))
        lines.extend(_PLACEHOLDER.sub(marker, part) for part in parts)
        plain.append(_PLACEHOLDER.sub(text, raw))
    return Page(
        url=url,
        title=title,
        domain=domain,
        lines=tuple(lines),
        links=tuple(links),
        plain="\n".join(plain),
        headings=frozenset(headings),
    )


def page_from_text(url: str, text: str, title: str) -> Page:
    """A page from plain text: one line per non-blank input line, wrapped."""
    raw = [one_line(sanitize(line)) for line in text.splitlines()]
    return _build(url, one_line(sanitize(title)) or url, domain_of(url), [r for r in raw if r], [])


def search_results_page(query: str, results: Sequence[SearchResult], *, domain: str) -> Page:
    """The results page for ``query``: each result a link line, then its snippet."""
    raw: list[str] = []
    links: list[Link] = []
    for i, result in enumerate(results):
        text = one_line(sanitize(result.title)).replace("†", "+") or result.url
        links.append(Link(id=i, text=text, url=result.url, domain=domain_of(result.url)))
        raw.append(f"\x00{i}\x00")
        snippet = one_line(sanitize(result.snippet))
        if snippet:
            raw.append(snippet)
    if not results:
        raw.append("No results found.")
    title = f"Search results for: {one_line(sanitize(query))}"
    return _build(f"{SEARCH_SCHEME}{quote_plus(query)}", title, domain, raw, links)


# ---------------------------------------------------------------------------- HTML


_DROP = frozenset(
    "script style noscript template head title meta link svg canvas iframe object embed "
    "button input select textarea option datalist".split()
)
_BLOCK = frozenset(
    "p div section article main header footer nav aside h1 h2 h3 h4 h5 h6 ul ol dl dt dd "
    "table thead tbody tfoot tr caption blockquote pre figure figcaption address details "
    "summary form fieldset hr br body html center".split()
)
_CELL = frozenset({"td", "th"})
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|opacity\s*:\s*0(?![.\d])"
    r"|font-size\s*:\s*0(?![.\d])",
    re.IGNORECASE,
)
_SKIP_SCHEMES = ("javascript:", "mailto:", "tel:", "data:", "about:")


def _hidden(tag: Tag) -> bool:
    """Whether ``tag`` is dropped: scripts, styles, form controls, hidden elements."""
    if tag.name in _DROP or tag.has_attr("hidden"):
        return True
    if str(tag.get("aria-hidden", "")).strip().lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(str(tag.get("style", ""))))


def _strip_hidden(soup: BeautifulSoup) -> None:
    """Remove every dropped element (before Readability, which discards style attributes)."""
    for tag in [t for t in soup.find_all(True) if isinstance(t, Tag) and _hidden(t)]:
        tag.extract()


def resolve_url(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base`` without its fragment; None to skip it."""
    href = href.strip()
    if not href or href.startswith("#") or href.lower().startswith(_SKIP_SCHEMES):
        return None
    if urlsplit(href).scheme:
        return urldefrag(href).url
    scheme = urlsplit(base).scheme
    if scheme in ("", "http", "https"):
        return urldefrag(urljoin(base, href)).url
    # urljoin ignores unknown schemes such as zim://; join as http, then restore.
    joined = urljoin("http" + base[len(scheme) :], href)
    return urldefrag(scheme + joined[len("http") :]).url


class _TextBuilder:
    """Walks a parsed tree and collects logical lines and links."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.site = domain_of(url)
        self.lines: list[str] = []
        self.links: list[Link] = []
        self.current: list[str] = []
        self.prefix = ""  # "- " waiting for the next line of a list item
        self.link_url: str | None = None
        self.link_text: list[str] = []
        self.pre = 0
        self.heading = 0  # inside h1-h6
        self.headings: list[int] = []  # indices of lines that are headings

    def flush(self) -> None:
        line = one_line("".join(self.current))
        self.current = []
        if line:
            if self.heading:
                self.headings.append(len(self.lines))
            self.lines.append(self.prefix + line)
            self.prefix = ""

    def emit(self, text: str) -> None:
        if self.link_url is not None:
            self.link_text.append(text)
        elif self.pre and "\n" in text:
            first, *rest = text.split("\n")
            self.current.append(first)
            for part in rest:
                self.flush()
                self.current.append(part)
        else:
            self.current.append(text)

    def start(self, tag: Tag) -> None:
        name = tag.name
        if name == "a" and self.link_url is None:
            href = tag.get("href")
            self.link_url = resolve_url(self.url, href) if isinstance(href, str) else None
            self.link_text = []
        elif name == "img":
            alt = one_line(sanitize(str(tag.get("alt", ""))))
            if alt:
                self.emit(f" [Image: {alt}] ")
        elif name in _CELL:
            started = self.link_url is None and "".join(self.current).strip()
            self.emit(" | " if started else " ")
        elif name in _BLOCK or name == "li":
            if self.link_url is not None:
                self.link_text.append(" ")
                return
            self.flush()
            if name == "li":
                self.prefix = "- "
            if name == "pre":
                self.pre += 1
            elif name in _HEADINGS:
                self.heading += 1

    def end(self, tag: Tag) -> None:
        name = tag.name
        if name == "a" and self.link_url is not None:
            text = one_line("".join(self.link_text)).replace("†", "+")
            url, self.link_url = self.link_url, None
            if text:
                i = len(self.links)
                domain = domain_of(url)
                self.links.append(Link(i, text, url, "" if domain == self.site else domain))
                self.current.append(f"\x00{i}\x00")
        elif (name in _BLOCK or name == "li") and self.link_url is None:
            self.flush()
            if name == "li":
                self.prefix = ""
            if name == "pre":
                self.pre -= 1
            elif name in _HEADINGS:
                self.heading = max(0, self.heading - 1)

    def walk(self, root: Tag) -> None:
        """Visit the tree without recursion (pages can nest very deeply)."""
        stack: list[tuple[object, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            if isinstance(node, Tag):
                if leaving:
                    self.end(node)
                elif not _hidden(node):
                    self.start(node)
                    stack.append((node, True))
                    stack.extend((child, False) for child in reversed(node.contents))
            elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
                self.emit(sanitize(str(node)))
        self.flush()


def _parse(html: str) -> BeautifulSoup:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bs4 warns on markup that looks like a URL
        return BeautifulSoup(html, "lxml")


def _convert(url: str, soup: BeautifulSoup) -> tuple[list[str], list[Link], list[int]]:
    builder = _TextBuilder(url)
    root = soup.body or soup
    builder.walk(root)
    return builder.lines, builder.links, builder.headings


def _readable(html: str) -> BeautifulSoup | None:
    """Readability's main-content summary of ``html``, or None if it fails."""
    from readability import Document as Readable

    try:
        return _parse(Readable(html).summary(html_partial=True))
    except Exception:  # noqa: BLE001 - Readability raises many kinds on odd markup
        return None


def _length(lines: Sequence[str], links: Sequence[Link]) -> int:
    texts = {link.id: link.text for link in links}
    return sum(len(_PLACEHOLDER.sub(lambda m: texts[int(m.group(1))], line)) for line in lines)


def page_from_html(url: str, html: str, *, title: str | None = None, simplify: bool = True) -> Page:
    """A page from HTML: hidden parts dropped, main content kept (Readability), links numbered."""
    soup = _parse(html)
    if title is None:
        head = soup.title.get_text() if soup.title else ""
        h1 = soup.find("h1")
        title = head.strip() or (h1.get_text() if h1 else "")
    _strip_hidden(soup)
    lines, links, headings = _convert(url, soup)
    if simplify and lines:
        summary = _readable(str(soup))
        if summary is not None:
            s_lines, s_links, s_headings = _convert(url, summary)
            kept, total = _length(s_lines, s_links), _length(lines, links)
            if not (kept < FALLBACK_RATIO * total and kept < FALLBACK_MAX_CHARS):
                lines, links, headings = s_lines, s_links, s_headings
    name = one_line(sanitize(title)) or url
    return _build(url, name, domain_of(url), lines, links, headings)


def page_from_document(doc: Document) -> Page:
    """A page from a fetched document (Readability only for pages not already clean)."""
    kind = doc.content_type.split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        return page_from_html(doc.url, doc.body, title=doc.title or None, simplify=not doc.clean)
    return page_from_text(doc.url, doc.body, doc.title)
