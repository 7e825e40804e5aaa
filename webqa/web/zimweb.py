"""A ZIM file as a ``Web``: search its pages, fetch them by ``zim://`` URL.

Pages are addressed as ``zim://<file stem>/<entry path>`` (characters other than
letters, digits, ``.``, ``_`` and ``-`` in the stem become ``-``). An offline corpus never goes
to the network: any other scheme, or another ZIM's name, is a FetchError.

Search engines (``engine=``):
- ``"tantivy"``: the BM25 index webqa builds beside its ZIMs (``NAME.index``); best.
- ``"libzim"``: the ZIM's own Xapian full-text index (real Kiwix ZIMs have one), with
  stop words dropped; if all remaining words together find fewer than ``k`` pages, the
  commonest word is dropped and the search repeated (libzim's parser has no OR).
- ``"libzim-raw"``: the query passed to Xapian unchanged (for comparison).
- ``"titles"``: libzim's title suggestions, for ZIMs without any full-text index.
- ``"auto"``: the first of tantivy, libzim, titles that this ZIM supports.

``urllib.parse.urljoin`` does not resolve relative links against ``zim://`` URLs (it
treats the scheme as non-hierarchical), so ``fetch`` rewrites every link in a page to
an absolute URL, and ``resolve_link`` does the same for one link.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from libzim.reader import Archive, Item
from libzim.search import Query, Searcher
from libzim.suggestion import SuggestionSearcher

from webqa.errors import CorpusError, FetchError, SearchError
from webqa.web.autolink import quote_path
from webqa.web.base import Document, SearchResult
from webqa.web.corpus import CorpusSources, build_default_corpus, default_corpus_path
from webqa.web.textindex import TextIndex, analyzer, make_snippet, query_words
from webqa.web.zimwrite import Progress, index_dir_for, libzim_reason

__all__ = ["ENGINES", "ZimWeb", "default_corpus_path", "open_default_corpus", "resolve_link"]

ENGINES = ("auto", "tantivy", "libzim", "libzim-raw", "titles")
SCHEME = "zim"
MAX_REDIRECTS = 10
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_DROP = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK = re.compile(r"</?(p|h\d|li|tr|br|div)\b[^>]*>", re.IGNORECASE)


def resolve_link(base_url: str, href: str) -> str:
    """``href`` from the page at ``base_url`` as an absolute URL (``zim://`` aware).

    Returns ``href`` unchanged when it cannot be parsed as a URL (``http://[::1``).
    """
    href = href.strip()
    try:
        if href.startswith("//"):
            urlsplit(href)
            return "https:" + href
        if urlsplit(href).scheme:
            return href
        base = urlsplit(base_url)
        if base.scheme != SCHEME:
            return urljoin(base_url, href)
        joined = urljoin(f"http://{base.netloc}{base.path or '/'}", href)
    except ValueError:
        return href
    return SCHEME + joined[len("http") :]


def _archive(path: Path) -> Archive:
    if not path.is_file():
        raise CorpusError(f"no such ZIM file: {path}")
    try:
        return Archive(str(path))
    except (RuntimeError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorpusError(f"not a readable ZIM file: {path} ({reason})") from exc


class ZimWeb:
    """Search and fetch the pages of one ZIM file."""

    def __init__(self, path: str | Path, *, engine: str = "auto") -> None:
        if engine not in ENGINES:
            raise CorpusError(f"unknown search engine {engine!r}; choose from {ENGINES}")
        self.path = Path(path)
        self._archive = _archive(self.path)
        self.name: str = re.sub(r"[^\w.-]+", "-", self.path.stem)  # a valid URL host
        self._index = self._open_index() if engine in ("auto", "tantivy") else None
        if engine == "auto":
            engine = "tantivy" if self._index else "libzim" if self._fulltext() else "titles"
        elif engine == "tantivy" and self._index is None:
            raise CorpusError(f"{self.path} has no matching search index at {self._index_dir}")
        elif engine.startswith("libzim") and not self._fulltext():
            raise CorpusError(f"{self.path} has no full-text index; use engine='titles'")
        self.engine: str = engine
        self._analyzer = analyzer()

    @property
    def _index_dir(self) -> Path:
        return index_dir_for(self.path)

    def _fulltext(self) -> bool:
        return bool(self._archive.has_fulltext_index)

    def _open_index(self) -> TextIndex | None:
        if not self._index_dir.is_dir():
            return None
        try:
            index = TextIndex(self._index_dir)
        except CorpusError:
            return None
        return index if index.zim_uuid == str(self._archive.uuid) else None

    def __repr__(self) -> str:
        return f"ZimWeb({str(self.path)!r}, engine={self.engine!r})"

    # -- URLs ---------------------------------------------------------------------------

    def url_for(self, entry_path: str) -> str:
        """The ``zim://`` URL of an entry path of this ZIM."""
        return f"{SCHEME}://{self.name}/{quote_path(entry_path)}"

    def _entry_path(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != SCHEME:
            raise FetchError(f"an offline corpus cannot fetch {url!r}", url=url)
        if parts.netloc.lower() != self.name.lower():
            raise FetchError(f"{url!r} is not in the corpus {self.name!r}", url=url)
        return unquote(parts.path.lstrip("/"))

    # -- Web protocol -------------------------------------------------------------------

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """The top ``k`` pages for ``query`` (a question or keywords)."""
        if k <= 0 or not query.strip():
            return []
        if self.engine == "tantivy":
            assert self._index is not None
            hits = self._index.search(query, k)
            return [SearchResult(h.title, self.url_for(h.path), h.snippet) for h in hits]
        if self.engine == "titles":
            paths = self._suggest(query, k)
        elif self.engine == "libzim-raw":
            paths = self._xapian(query, k)
        else:
            paths = self._relaxed(query, k)
        terms = [t for w in query_words(query) for t in self._analyzer.analyze(w)]
        return [self._result(path, terms) for path in paths]

    def fetch(self, url: str) -> Document:
        """The page at a ``zim://`` URL of this ZIM (redirects followed, links absolute)."""
        path = self._entry_path(url)
        try:
            entry = self._archive.get_entry_by_path(path) if path else self._archive.main_entry
            for _ in range(MAX_REDIRECTS):
                if not entry.is_redirect:
                    break
                entry = entry.get_redirect_entry()
            item = entry.get_item()
        except KeyError as exc:
            raise FetchError(f"no page {path!r} in {self.name}", url=url) from exc
        except RuntimeError as exc:
            raise self._corrupt(exc, path) from exc
        final = self.url_for(entry.path)
        mimetype = str(item.mimetype).split(";")[0].strip()
        if not mimetype.startswith("text/"):
            raise FetchError(f"{url} is {mimetype}, not a text page", url=url)
        body = self._content(item, entry.path).decode("utf-8", errors="replace")
        if mimetype == "text/html":
            body = absolute_links(body, final)
        return Document(url=final, title=entry.title, body=body, content_type=mimetype, clean=True)

    def _content(self, item: Item, path: str) -> bytes:
        """An item's bytes; a CorpusError naming the file if its data is corrupt."""
        try:
            return bytes(item.content)
        except RuntimeError as exc:  # libzim: "Data corruption detected", a bad cluster
            raise self._corrupt(exc, path) from exc

    def _corrupt(self, exc: Exception, path: str) -> CorpusError:
        return CorpusError(
            f"corrupt ZIM file {self.path}: {libzim_reason(exc)} (reading {path!r}); "
            "download or build it again"
        )

    # -- libzim engines -----------------------------------------------------------------

    def _xapian(self, query: str, k: int) -> list[str]:
        try:
            search = Searcher(self._archive).search(Query().set_query(query))
            return list(search.getResults(0, k))
        except RuntimeError as exc:
            cleaned = " ".join(re.findall(r"\w+", query))  # retry without any syntax
            if not cleaned:
                return []
            if cleaned == query:
                raise SearchError(f"libzim search failed on {query!r}: {exc}") from exc
            return self._xapian(cleaned, k)

    def _relaxed(self, query: str, k: int) -> list[str]:
        """Xapian with every word required, then fewer: the commonest words go first.

        libzim's query parser has no OR, so a long question that no page matches in
        full is retried without its most frequent word until ``k`` pages are found.
        """
        words = list(dict.fromkeys(query_words(query) or query.split()))
        matches = {word: self._matches(word) for word in words}
        words = sorted((w for w in words if matches[w]), key=lambda w: matches[w])
        paths: list[str] = []
        while words and len(paths) < k:
            found = self._xapian(" ".join(words), k)
            paths += [p for p in found if p not in paths][: k - len(paths)]
            words.pop()
        return paths

    def _matches(self, word: str) -> int:
        """About how many pages Xapian finds for one word."""
        try:
            search = Searcher(self._archive).search(Query().set_query(word))
            return int(search.getEstimatedMatches())
        except RuntimeError:
            return 0

    def _suggest(self, query: str, k: int) -> list[str]:
        search = SuggestionSearcher(self._archive).suggest(query)
        return list(search.getResults(0, k))

    def _result(self, path: str, terms: list[str]) -> SearchResult:
        try:
            entry = self._archive.get_entry_by_path(path)
            item = None if entry.is_redirect else entry.get_item()
        except RuntimeError as exc:
            raise self._corrupt(exc, path) from exc
        text = ""
        if item is not None:
            text = page_text(self._content(item, path).decode("utf-8", errors="replace"))
        snippet = make_snippet(text, terms, self._analyzer, skip={entry.title})
        return SearchResult(entry.title, self.url_for(path), snippet)


def absolute_links(page: str, page_url: str) -> str:
    """``page`` with every ``<a href>`` resolved against ``page_url``."""

    def fix(match: re.Match[str]) -> str:
        target = html.unescape(match.group(3))
        if not target.strip():
            return match.group(0)
        absolute = resolve_link(page_url, target)
        return f"{match.group(1)}{match.group(2)}{html.escape(absolute)}{match.group(2)}"

    return _HREF.sub(fix, page)


def page_text(page: str) -> str:
    """Rough plain text of an HTML page, one block per line (for snippets)."""
    page = _DROP.sub(" ", page)
    page = _BLOCK.sub("\n", page)
    return html.unescape(_TAG.sub(" ", page))


def open_default_corpus(
    *,
    engine: str = "auto",
    progress: Progress | None = None,
    sources: CorpusSources | None = None,
) -> ZimWeb:
    """The embedded default corpus as a ``ZimWeb``, built first if missing or stale.

    ``progress`` receives one-line messages while a build runs (once, under a minute);
    ``sources`` is where its records come from (``corpus.CorpusSources``; default: the
    packages).
    """
    return ZimWeb(build_default_corpus(progress=progress, sources=sources), engine=engine)
