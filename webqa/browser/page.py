"""Pages: HTML or text turned into lines of text with numbered links.

Pages are untrusted: text a person would not see (hidden by attributes, inline styles or
the page's own stylesheet, see ``webqa.browser.css``) is dropped, characters that could
forge browser markup or hide in the text are replaced, and the work one page may cost is
bounded (``MAX_*`` below); a page cut short says so in ``Page.notice``.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote_plus, urldefrag, urljoin, urlsplit

from lxml import etree

from webqa.browser.css import (
    Computed,
    Matcher,
    cascade,
    element_info,
    media_applies,
    parse_declarations,
    read_stylesheets,
)
from webqa.browser.css import removes as css_removes
from webqa.web.base import Document, SearchResult, domain_of

WRAP_WIDTH = 100  # characters per page line; link markers are never split
SEARCH_SCHEME = "search:"  # URL prefix of search results pages
# Readability's output is replaced by the raw body when it keeps less than this share
# of the raw text and is shorter than FALLBACK_MAX_CHARS (it can drop short pages).
FALLBACK_RATIO = 0.3
FALLBACK_MAX_CHARS = 2000
# What one page may cost: any page under the fetcher's 5 MB cap renders in under 2 s and
# 120 MB here (benchmarks/hostile_pages.py).
MAX_HTML_CHARS = 5_000_000  # HTML read per page
MAX_ELEMENTS = 20_000  # HTML elements read per page; the rest of the page is cut
MAX_LINKS = 5_000  # links numbered per page; later links are shown as their text
MAX_PAGE_CHARS = 500_000  # characters of text per page
MAX_TITLE_CHARS = 300  # characters of a page title, a link's text or an image's alt text
MAX_SNIPPET_CHARS = 1_000  # characters of a search result's snippet
MAX_URL_CHARS = 8_192  # a longer link is skipped
MAX_DEPTH = 2_048  # levels of nesting libxml2's tree mode reads (see _parse)


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
    headings (h1-h6), which tell a passage what section it belongs to. ``notice`` says
    how a page too large to read whole was cut (shown after its last line).
    """

    url: str
    title: str
    domain: str
    lines: tuple[str, ...]
    links: tuple[Link, ...]
    plain: str
    headings: frozenset[int] = frozenset()
    notice: str = ""  # why the page is incomplete ("" when it is whole); not quotable


# ---------------------------------------------------------------------------- text


_WS = re.compile(r"\s+")
_MARKER = re.compile(r"【(\d+)†([^†】]*)(?:†[^】]*)?】")
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
# Terminal escape sequences (CSI, OSC, two-character) and characters that hide in text or
# reorder it: soft hyphen, zero-width and bidirectional controls, invisible operators,
# the byte-order mark, interlinear annotations, tag characters and variation selectors
# supplement (both used to smuggle invisible instructions). They are removed.
_REMOVE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[@-_]"  # OSC: titles, links; others
    r"|[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    r"\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
# Other C0 and C1 control characters (newline and tab are kept) become spaces.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters the browser's own markup uses: page text must not be able to forge a link
# marker or an observation section ("●Next action"), so they are replaced.
_SANITIZE = str.maketrans({"【": "[", "】": "]", "●": "•"})


def clean_text(text: str) -> str:
    """``text`` without escape sequences, invisible or reordering characters and control
    characters (newline and tab kept): what a person sees is what the model reads."""
    if text.isascii() and _CONTROL.search(text) is None:
        return text  # the common case, and every character to remove is a control or not ASCII
    return _CONTROL.sub(" ", _REMOVE.sub("", text))


def sanitize(text: str) -> str:
    """Untrusted text cleaned (``clean_text``) and browser markup characters replaced."""
    text = clean_text(text)
    if "【" in text or "】" in text or "●" in text:
        return text.translate(_SANITIZE)
    return text


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with "…" if longer."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def label(text: str, limit: int = 300) -> str:
    """Untrusted ``text`` sanitized, on one line, at most ``limit`` characters (titles,
    link texts, alt texts, snippets); only its start is read."""
    return clip(sanitize(text[: limit * 4]), limit)


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


_LONG_WORD = re.compile(rf"[^ ]{{{WRAP_WIDTH + 1},}}")
_PIECES = re.compile(rf"\x00\d+\x00|[^\x00]{{1,{WRAP_WIDTH}}}")


def _break_long_words(line: str) -> str:
    """``line`` with every word wider than a page line broken into pieces (for display
    only: a line of 100,000 letters must not fill the observation). Link placeholders
    stay whole."""

    def pieces(m: re.Match[str]) -> str:
        return " ".join(_PIECES.findall(m.group(0)))

    return _LONG_WORD.sub(pieces, line)


def _domain(url: str) -> str:
    """``domain_of(url)`` made safe to show (it is inside link markers), or "" for a URL
    that does not parse (``http://[::1``)."""
    try:
        domain = domain_of(url)
    except ValueError:
        return ""
    if domain.isascii() and domain.isprintable():
        return domain[:MAX_TITLE_CHARS]
    return label(domain, MAX_TITLE_CHARS).replace("†", "+")


def _build(
    url: str,
    title: str,
    domain: str,
    raw_lines: Sequence[str],
    links: Sequence[Link],
    headings: Collection[int] = (),
    notice: str = "",
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
        parts = _wrap(
            _break_long_words(raw), WRAP_WIDTH, lambda word: len(_PLACEHOLDER.sub(marker, word))
        )
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
        notice=notice,
    )


def _cut_notice(what: str) -> str:
    return f"Page cut: {what}."


def page_from_text(url: str, text: str, title: str) -> Page:
    """A page from plain text: one line per non-blank input line, wrapped."""
    notice = ""
    if len(text) > MAX_PAGE_CHARS:
        text = text[:MAX_PAGE_CHARS]
        notice = _cut_notice(f"only its first {MAX_PAGE_CHARS:,} characters are shown")
    raw = [one_line(sanitize(line)) for line in text.splitlines()]
    name = label(title, MAX_TITLE_CHARS) or url
    return _build(url, name, _domain(url), [r for r in raw if r], [], notice=notice)


def search_results_page(query: str, results: Sequence[SearchResult], *, domain: str) -> Page:
    """The results page for ``query``: each result a link line, then its snippet."""
    raw: list[str] = []
    links: list[Link] = []
    for i, result in enumerate(results):
        text = label(result.title, MAX_TITLE_CHARS) or label(result.url, MAX_TITLE_CHARS)
        text = text.replace("†", "+")
        links.append(Link(id=i, text=text, url=result.url, domain=_domain(result.url)))
        raw.append(f"\x00{i}\x00")
        snippet = label(result.snippet, MAX_SNIPPET_CHARS)
        if snippet:
            raw.append(snippet)
    if not results:
        raw.append("No results found.")
    title = f"Search results for: {one_line(sanitize(query))}"
    return _build(f"{SEARCH_SCHEME}{quote_plus(query)}", title, domain, raw, links)


# ---------------------------------------------------------------------------- HTML


# Never shown. Not <head> itself: libxml2 leaves elements it does not know (<section>,
# <details>, custom elements) in <head> when a page has no <body> tag.
_DROP = frozenset(
    "script style noscript template title meta link base svg canvas iframe object embed "
    "button input select textarea option datalist".split()
)
_BLOCK = frozenset(
    "p div section article main header footer nav aside h1 h2 h3 h4 h5 h6 ul ol dl dt dd "
    "table thead tbody tfoot tr caption blockquote pre figure figcaption address details "
    "summary form fieldset hr br body html center".split()
)
_CELL = frozenset({"td", "th"})
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
_PAGE_BOXES = frozenset({"html", "body"})  # never hidden: pages hide them until scripts run
_SKIP_SCHEMES = ("javascript:", "vbscript:", "mailto:", "tel:", "data:", "about:", "blob:")
_COLOURS = frozenset({"color", "background", "background-color", "background-image"})
_GONE = "webqa-removed"  # the tag of an element emptied because it is hidden
_TAG_START = re.compile(r"<[A-Za-z]")

Element = Any  # an lxml element (lxml ships no type information)
# Readability logs each page it cannot simplify with a traceback; page_from_html handles
# that (the whole page is shown), so its log would only alarm.
logging.getLogger("readability.readability").setLevel(logging.CRITICAL)


def resolve_url(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base`` without its fragment; None to skip it
    (fragments, script and mail links, and URLs that do not parse, such as
    ``http://[::1``)."""
    href = href.strip()
    if not href or href.startswith("#") or len(href) > MAX_URL_CHARS:
        return None
    try:
        url = _join(base, href)
        parts = urlsplit(url)
        parts.hostname, parts.port  # noqa: B018 - both raise ValueError on a bad authority
    except ValueError:
        return None
    if f"{parts.scheme.lower()}:".startswith(_SKIP_SCHEMES) or href.lower().startswith(
        _SKIP_SCHEMES
    ):
        return None
    return url


def _join(base: str, href: str) -> str:
    if urlsplit(href).scheme:
        return urldefrag(href).url
    scheme = urlsplit(base).scheme
    if scheme in ("", "http", "https"):
        return urldefrag(urljoin(base, href)).url
    # urljoin ignores unknown schemes such as zim://; join as http, then restore.
    joined = urljoin("http" + base[len(scheme) :], href)
    return urldefrag(scheme + joined[len("http") :]).url


# ------------------------------------------------------------- reading the markup


def _cut(html: str) -> tuple[str, list[str]]:
    """``html`` cut to the bounds one page may cost, and what was cut."""
    notes: list[str] = []
    if len(html) > MAX_HTML_CHARS:
        html = html[:MAX_HTML_CHARS]
        notes.append(f"only its first {MAX_HTML_CHARS:,} characters of HTML were read")
    tags = _TAG_START.finditer(html)
    nth = next(itertools.islice(tags, MAX_ELEMENTS, None), None)
    if nth is not None:
        html = html[: nth.start()]
        notes.append(f"only its first {MAX_ELEMENTS:,} elements were read")
    return html, notes


def _parse(html: str) -> tuple[Element | None, bool]:
    """The element tree of ``html`` (its root ``html`` element; None if there is none),
    and whether part of it could not be read because it nests deeper than ``MAX_DEPTH``.

    libxml2's tree mode stops reading at ``MAX_DEPTH`` levels; such a page is read again
    through lxml's event interface (its C ``TreeBuilder``), which has no depth limit but
    gives up on some broken markup (then the first reading, cut, is kept).
    """
    options: dict[str, Any] = dict(
        encoding="utf-8",  # the text is already decoded: a <meta charset> must not matter
        remove_comments=True,
        remove_pis=True,
        no_network=True,
    )
    data = html.encode("utf-8", "replace")
    parser = etree.HTMLParser(huge_tree=True, **options)  # 2,048 levels instead of 256
    try:
        root = etree.fromstring(data, parser)
    except etree.LxmlError:
        return None, False
    if not any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log):
        return root, False
    events = etree.HTMLParser(target=etree.TreeBuilder(), **options)
    try:
        events.feed(data)
        return events.close(), False
    except etree.LxmlError:
        return root, True


def _text_of(el: Element | None, limit: int) -> str:
    """The text of ``el`` and everything in it, cleaned, on one line, at most ``limit``."""
    if el is None:
        return ""
    parts: list[str] = []
    size = 0
    for piece in el.itertext():
        parts.append(piece)
        size += len(piece)
        if size > limit * 4:
            break
    return label("".join(parts), limit)


# --------------------------------------------------------------- hidden content


def _style_texts(root: Element) -> Iterable[str]:
    """The page's own stylesheets (``<style>`` blocks that apply to a screen)."""
    for el in root.iter("style"):
        kind = (el.get("type") or "text/css").strip().lower()
        if kind == "text/css" and media_applies(el.get("media") or ""):
            yield el.text or ""


def _is_hidden(el: Element, name: str) -> bool:
    """Hidden by what it is or by its attributes (not by its style)."""
    if name in _DROP or el.get("hidden") is not None:
        return True
    return (el.get("aria-hidden") or "").strip().lower() == "true"


def _hints(el: Element) -> dict[str, str]:
    """Presentational attributes that colour text (``<font color>``, ``bgcolor``)."""
    hints: dict[str, str] = {}
    color = el.get("color")
    if color is not None and el.tag == "font":
        hints["color"] = color.strip().lower()
    background = el.get("bgcolor")
    if background is not None:
        hints["background-color"] = background.strip().lower()
    return hints


def _declared(el: Element, name: str, matcher: Matcher) -> dict[str, str]:
    """The properties ``el`` declares that can hide text, after the cascade."""
    rules = matcher.matching(el, element_info(el)) if matcher else []
    style = el.get("style")
    inline = parse_declarations(style) if style else []
    hints = _hints(el) if el.attrib else {}
    if not rules and not inline:
        return hints
    return {**hints, **cascade(rules, inline)}


def _empty(el: Element, *, keep_tail: bool) -> None:
    """Empty a hidden element in place (removing it would move its tail text, which is
    slow when thousands of siblings are hidden): its tag becomes ``_GONE``."""
    el.clear(keep_tail=keep_tail)
    el.tag = _GONE


# Characters lxml refuses in text it is given (Readability rebuilds text nodes), which
# character references such as &#1; still put in the tree.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _scrub(el: Element) -> None:
    """Clean (``clean_text``) the text and tail of ``el`` where they hold characters lxml
    refuses (all of them controls, or U+FFFE/U+FFFF, which become spaces)."""
    text, tail = el.text, el.tail
    if text and _NOT_XML.search(text):
        el.text = _NOT_XML.sub(" ", clean_text(text))
    if tail and _NOT_XML.search(tail):
        el.tail = _NOT_XML.sub(" ", clean_text(tail))


def _collapse_details(el: Element) -> None:
    """A closed ``<details>`` shows only its (first) summary."""
    el.text = None
    summary = False
    for child in el:
        if child.tag == "summary" and not summary:
            summary = True
            child.tail = None
        else:
            _empty(child, keep_tail=False)


def _strip_hidden(root: Element) -> None:
    """Empty every element a person cannot see and drop text they cannot read, in place:
    scripts, styles and form controls; ``hidden``, ``aria-hidden``; whatever the inline
    styles or the page's stylesheets hide (``webqa.browser.css``); the body of a closed
    ``<details>``. Runs before Readability, which drops style attributes."""
    matcher = Matcher(read_stylesheets(_style_texts(root)))
    stack: list[tuple[Element, Computed]] = [(root, Computed())]
    seen: list[Element] = []  # see _TextBuilder.walk
    while stack:
        el, inherited = stack.pop()
        seen.append(el)
        _scrub(el)
        tag = el.tag
        if not isinstance(tag, str) or tag == _GONE:  # (the parser drops comments)
            continue
        name = tag.lower()
        box = name in _PAGE_BOXES
        if not box and _is_hidden(el, name):
            _empty(el, keep_tail=True)
            continue
        props = _declared(el, name, matcher)
        if box:
            props = {k: v for k, v in props.items() if k in _COLOURS}
        elif css_removes(props, inherited.font_px):
            _empty(el, keep_tail=True)
            continue
        style = inherited.inherit(props)
        if box and not style.text_visible:
            # the page's own colours are readable (its background may come from a
            # stylesheet not read here): only text set apart from them can be hidden
            style = replace(style, background=None)
        if name == "details" and el.get("open") is None:
            _collapse_details(el)
        if not style.text_visible:
            el.text = None
            for child in el:
                child.tail = None
        stack.extend((child, style) for child in reversed(el))


# ------------------------------------------------------------------ to lines


class _TextBuilder:
    """Walks a parsed tree and collects logical lines and links (within the bounds)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.site = _domain(url)
        self.lines: list[str] = []
        self.links: list[Link] = []
        self.current: list[str] = []
        self.prefix = ""  # "- " waiting for the next line of a list item
        self.link_url: str | None = None
        self.link_text: list[str] = []
        self.pre = 0
        self.heading = 0  # inside h1-h6
        self.headings: list[int] = []  # indices of lines that are headings
        self.chars = 0  # characters of text read so far
        self.full = False  # MAX_PAGE_CHARS reached
        self.links_cut = False  # MAX_LINKS reached

    @property
    def notes(self) -> list[str]:
        notes = []
        if self.full:
            notes.append(f"only its first {MAX_PAGE_CHARS:,} characters of text are shown")
        if self.links_cut:
            notes.append(f"only its first {MAX_LINKS:,} links are numbered")
        return notes

    def flush(self) -> None:
        line = one_line("".join(self.current))
        self.current = []
        if line:
            if self.heading:
                self.headings.append(len(self.lines))
            self.lines.append(self.prefix + line)
            self.prefix = ""

    def emit(self, text: str) -> None:
        """Add untrusted ``text`` (it is sanitized here, once cut to the room left)."""
        room = MAX_PAGE_CHARS - self.chars
        if len(text) >= room:
            text = text[:room]
            self.full = True
        self.chars += len(text)
        text = sanitize(text)
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

    def start(self, el: Element, name: str) -> None:
        if name == "a" and self.link_url is None:
            href = el.get("href")
            if href is not None and len(self.links) >= MAX_LINKS:
                self.links_cut = True
            elif href is not None:
                self.link_url = resolve_url(self.url, href)
            self.link_text = []
        elif name == "img":
            alt = label(el.get("alt") or "", MAX_TITLE_CHARS)
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

    def end(self, name: str) -> None:
        if name == "a" and self.link_url is not None:
            text = clip("".join(self.link_text), MAX_TITLE_CHARS).replace("†", "+")
            url, self.link_url = self.link_url, None
            if text:
                i = len(self.links)
                domain = _domain(url)
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

    def walk(self, root: Element) -> None:
        """Visit the tree without recursion (pages can nest very deeply).

        Every element visited is kept in ``seen`` until the walk ends: lxml frees an
        element's Python proxy by walking up to the nearest ancestor that has one, so
        letting each go at once would cost the depth of the tree per element.
        """
        stack: list[tuple[Element, bool]] = [(root, False)]
        seen: list[Element] = []
        while stack and not self.full:
            el, leaving = stack.pop()
            seen.append(el)
            tag = el.tag
            if leaving:
                self.end(tag.lower())
            elif isinstance(tag, str) and tag != _GONE and tag.lower() not in _DROP:
                name = tag.lower()
                self.start(el, name)
                stack.append((el, True))
                if el.text:
                    self.emit(el.text)
                stack.extend((child, False) for child in reversed(el))
                continue
            if el is not root and el.tail:
                self.emit(el.tail)
        if self.link_url is not None:  # cut inside a link: keep what it says so far
            self.end("a")
        self.flush()


def _convert(url: str, root: Element) -> _TextBuilder:
    builder = _TextBuilder(url)
    builder.walk(root)
    return builder


def _readable(root: Element) -> Element | None:
    """Readability's main-content summary of the tree, or None if it fails."""
    from readability import Document as Readable

    try:
        html = etree.tostring(root, encoding="unicode", method="html")
        return _parse(Readable(html).summary(html_partial=True))[0]
    except Exception:  # noqa: BLE001 - Readability raises many kinds on odd markup
        return None


def _length(lines: Sequence[str], links: Sequence[Link]) -> int:
    texts = {link.id: link.text for link in links}
    return sum(len(_PLACEHOLDER.sub(lambda m: texts[int(m.group(1))], line)) for line in lines)


def page_from_html(url: str, html: str, *, title: str | None = None, simplify: bool = True) -> Page:
    """A page from HTML: hidden parts dropped, main content kept (Readability), links
    numbered; never raises on bad markup, and a page too large to read whole is cut
    (``MAX_*``) with a ``notice`` saying so (a page cut for the length of its text is
    shown without Readability, whose work grows with the text)."""
    html, notes = _cut(html)
    root, deep = _parse(html)
    if deep:
        notes.append(f"only its first {MAX_DEPTH:,} levels of nesting were read")
    if root is None:
        name = label(title or "", MAX_TITLE_CHARS) or url
        return _build(url, name, _domain(url), [], [], notice=_notice(notes))
    if title is None:
        title = _text_of(root.find(".//title"), MAX_TITLE_CHARS)
    _strip_hidden(root)
    if not title.strip():
        title = _text_of(root.find(".//h1"), MAX_TITLE_CHARS)
    built = _convert(url, root)
    lines, links, headings = built.lines, built.links, built.headings
    # Readability's work grows with the text; a page cut for its length is shown whole.
    if simplify and lines and not built.full:
        summary = _readable(root)
        if summary is not None:
            short = _convert(url, summary)
            kept, total = _length(short.lines, short.links), _length(lines, links)
            if not (kept < FALLBACK_RATIO * total and kept < FALLBACK_MAX_CHARS):
                lines, links, headings = short.lines, short.links, short.headings
    name = label(title, MAX_TITLE_CHARS) or url
    notice = _notice(notes + built.notes)
    return _build(url, name, _domain(url), lines, links, headings, notice)


def _notice(notes: Sequence[str]) -> str:
    return _cut_notice("; ".join(notes)) if notes else ""


def page_from_document(doc: Document) -> Page:
    """A page from a fetched document (Readability only for pages not already clean)."""
    kind = doc.content_type.split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        return page_from_html(doc.url, doc.body, title=doc.title or None, simplify=not doc.clean)
    return page_from_text(doc.url, doc.body, doc.title)
