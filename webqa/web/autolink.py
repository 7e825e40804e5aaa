"""Auto-linking: an article title named in another article's text becomes a link to it.

Matching works on word tokens, so every match starts and ends on a word boundary. At
each position the longest title wins; matching is case-sensitive, except that a title of
several words may start in lowercase ("noble gas" for "Noble gas"); a page never links
to itself and links each target at most once. Titles shorter than four characters are
skipped unless they are acronyms ("DNA"). A one-word title is not matched at the start
of a sentence, where capitalisation says nothing ("Music is ..."), nor next to another
capitalised word, where it is part of a longer name ("Magdalena Carmen Frida Kahlo").
"""

from __future__ import annotations

import html
import posixpath
import re
from collections import Counter
from collections.abc import Container, Iterable, Mapping

from webqa.text import END_MARKS

_TOKEN = re.compile(r"&\w+;|\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_BLOCK_TAG = re.compile(r"</?(p|div|li|ul|ol|br|h\d|tr|td|table)\b")
_TAG_SPLIT = re.compile(r"(<[^>]*>)")
# After these a capital says nothing: a sentence or clause may start there, or the word
# continues a name after an abbreviation ("S. Korea", "St. Lucia"). Not webqa.text's
# sentence test on purpose: that one reads "S. Korea" as one sentence, and "Korea" would
# be linked to the peninsula's page.
_SENTENCE_END = frozenset(END_MARKS + ':;"“”')
MAX_TITLE_TOKENS = 12
_UNSAFE = re.compile(r'[%?#"<>\\\s\x00-\x1f\x7f]')


def quote_path(path: str) -> str:
    """A ZIM path as a URL path: only characters that would change its meaning escaped.

    Letters outside ASCII stay readable ("wiki/Galápagos_Islands"); ``unquote`` undoes it.
    """
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), path)


def href(source: str, target: str) -> str:
    """The relative href from ZIM path ``source`` to ZIM path ``target``."""
    return quote_path(posixpath.relpath(target, posixpath.dirname(source) or "."))


def linkable(title: str) -> bool:
    """Whether a title is distinctive enough to link wherever it is named."""
    if not any(ch.isalpha() for ch in title) or title.islower():
        return False
    if len(title) >= 4:
        return True
    return len(title) == 3 and title.isupper() and title.isalnum()


class Linker:
    """Finds titles in text and writes them as links; built once per corpus."""

    def __init__(
        self, targets: Mapping[str, str], *, common_words: Container[str] = frozenset()
    ) -> None:
        """``targets`` maps a name to link (a title or alias) to the ZIM path it links to.

        A one-word name whose lowercase form is in ``common_words`` is not linked: the
        capitalised word is then as likely a sentence start or part of another name.
        """
        self._common = common_words
        self._first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for name, path in targets.items():
            if not linkable(name):
                continue
            tokens = tuple(_TOKEN.findall(name))
            if not tokens or len(tokens) > MAX_TITLE_TOKENS:
                continue
            if len(tokens) == 1 and name.lower() in common_words:
                continue
            self._first.setdefault(tokens[0], []).append((tokens, path))
            if len(tokens) > 1 and _lowercase_tail(tokens):  # "noble gas" for "Noble gas"
                lowered = (tokens[0].lower(), *tokens[1:])
                if " ".join(lowered) not in targets:
                    self._first.setdefault(lowered[0], []).append((lowered, path))
        for options in self._first.values():
            options.sort(key=lambda option: -len(option[0]))

    def link_text(self, text: str, *, source: str, linked: set[str], before: str = "") -> str:
        """Plain ``text`` as escaped HTML with title mentions linked.

        ``source`` is the ZIM path of the page being written (never linked to);
        ``linked`` holds the paths this page already links to and is updated;
        ``before`` is the text just before ``text`` (context, not output).
        """
        text = before + text
        tokens = list(_TOKEN.finditer(text))
        out: list[str] = []
        pos = len(before)
        i = 0
        while i < len(tokens) and tokens[i].start() < pos:
            i += 1
        while i < len(tokens):
            found = self._match(tokens, i, text, source, linked)
            if found is None:
                i += 1
                continue
            n, path = found
            start, end = tokens[i].start(), tokens[i + n - 1].end()
            out.append(html.escape(text[pos:start], quote=False))
            anchor = html.escape(text[start:end], quote=False)
            out.append(f'<a href="{html.escape(href(source, path))}">{anchor}</a>')
            linked.add(path)
            pos = end
            i += n
        out.append(html.escape(text[pos:], quote=False))
        return "".join(out)

    def link_html(self, fragment: str, *, source: str, linked: set[str]) -> str:
        """An HTML ``fragment`` with mentions in its text linked (not inside ``<a>``)."""
        parts = _TAG_SPLIT.split(fragment)
        depth = 0
        before = ""
        for n, part in enumerate(parts):
            if n % 2:  # a tag
                low = part.lower()
                if low.startswith("<a ") or low == "<a>":
                    depth += 1
                elif low.startswith("</a"):
                    depth = max(0, depth - 1)
                elif _BLOCK_TAG.match(low):
                    before = ""
            elif part:
                text = html.unescape(part)
                if depth == 0:
                    parts[n] = self.link_text(text, source=source, linked=linked, before=before)
                before = (before + text)[-40:]
        return "".join(parts)

    def _match(
        self, tokens: list[re.Match[str]], i: int, text: str, source: str, linked: set[str]
    ) -> tuple[int, str] | None:
        options = self._first.get(tokens[i].group())
        if not options:
            return None
        for option, path in options:
            n = len(option)
            if path == source or path in linked or i + n > len(tokens):
                continue
            if any(tokens[i + j].group() != option[j] for j in range(1, n)):
                continue
            if n == 1 and (
                _sentence_start(text, tokens[i].start())
                or self._name_like(tokens, i - 1)
                or self._name_like(tokens, i + 1)
            ):
                continue
            return n, path
        return None

    def _name_like(self, tokens: list[re.Match[str]], i: int) -> bool:
        """Whether token ``i`` is a capitalised word that is not a common word.

        A one-word title next to one is part of a longer name ("Magdalena Carmen Frida
        Kahlo" is not about the opera "Carmen").
        """
        if i < 0 or i >= len(tokens):
            return False
        word = tokens[i].group()
        return word[:1].isupper() and word.isalpha() and word.lower() not in self._common


def _lowercase_tail(tokens: tuple[str, ...]) -> bool:
    """A capitalised first word followed by lowercase words only ("Periodic table")."""
    first, rest = tokens[0], tokens[1:]
    words = [t for t in rest if t[:1].isalpha()]
    return (
        first[:1].isupper()
        and first[1:].islower()
        and bool(words)
        and all(w.islower() for w in words)
    )


def _sentence_start(text: str, start: int) -> bool:
    j = start - 1
    while j >= 0 and text[j].isspace():
        j -= 1
    return j < 0 or text[j] in _SENTENCE_END


def common_words(texts: Iterable[str], *, min_count: int = 3) -> frozenset[str]:
    """Words seen in lowercase at least ``min_count`` times in ``texts``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in _WORD.findall(text) if w.islower())
    return frozenset(w for w, n in counts.items() if n >= min_count)


def link_targets(titles: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A name -> path mapping from (title, path) pairs, first pair winning on a clash."""
    targets: dict[str, str] = {}
    for title, path in titles:
        targets.setdefault(title, path)
    return targets
