"""The full-text index kept beside a ZIM: tantivy, BM25, questions as queries.

Whole questions make poor conjunctive queries (libzim's Xapian index wants every term),
so a query here is the question's words, stop words dropped, OR-ed under BM25; adjacent
words also score as a phrase. Pages are indexed as passages of about 2,000 characters,
each holding the page title three times, and a page scores as its best passage, so a
long Factbook page competes fairly with a short summary. The best pages are re-ranked:
a page whose whole title the query names ("Who painted the Mona Lisa?") gains in
proportion to how much of the query's weight (IDF) its title carries.

The query is built from analysed terms with tantivy's query objects, never parsed from
a string, so quotes, colons and parentheses in a question cannot cause syntax errors.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy

from webqa.errors import CorpusError, SearchError
from webqa.text import (
    KIN_PREFIX,
    KIN_TAIL,
    STOP_WORDS,
    analyzer,
    core_title,
    same_thing,
    split_sentences,
)

ANALYZER_NAME = "webqa_en"
META_FILE = "webqa-index.json"
INDEX_FORMAT = 1


_WORD = re.compile(r"\w+")
TITLE_REPEAT = 3  # the title (and aliases) count this many times in the body
PHRASE_BOOST = 1.0  # two adjacent query words found next to each other
TITLE_NAMED_BONUS = 1.0  # re-rank: the page's whole title appears in the query
RERANK_DEPTH = 100  # passages fetched, then merged into pages and re-ranked
TITLE_LOOKUP = 200  # passages whose titles hold the query's words, for pages it names
PASSAGE_CHARS = 2000  # short pages stay whole; long ones are cut
SNIPPET_CHARS = 200


@dataclass(frozen=True)
class IndexDoc:
    """A page to index. ``aliases`` are other names of the page, searched like a title."""

    path: str
    title: str
    body: str
    aliases: str = ""


@dataclass(frozen=True)
class Hit:
    """A page found by the index."""

    path: str
    title: str
    score: float
    snippet: str


def query_words(query: str) -> list[str]:
    """The words of ``query`` that carry meaning: stop words and single letters dropped."""
    words = []
    for word in _WORD.findall(query):
        low = word.lower()
        if low in STOP_WORDS or (len(low) == 1 and not low.isdigit()):
            continue
        words.append(word)
    return words


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("path", stored=True, tokenizer_name="raw")
    builder.add_text_field("title", stored=True, tokenizer_name=ANALYZER_NAME)
    builder.add_text_field("body", stored=True, tokenizer_name=ANALYZER_NAME)
    return builder.build()


def passages(text: str, size: int | None = None) -> list[str]:
    """``text`` cut at line ends into passages of about ``size`` characters.

    A passage is only closed once it holds a third of ``size``, so a heading stays with
    the long line that follows it.
    """
    size = size or PASSAGE_CHARS
    out: list[str] = []
    current: list[str] = []
    length = 0
    for line in text.split("\n"):
        if current and length >= size // 3 and length + len(line) > size:
            out.append("\n".join(current))
            current, length = [], 0
        current.append(line)
        length += len(line) + 1
    if current:
        out.append("\n".join(current))
    return [p for p in out if p.strip()] or [text]


def write_index(directory: Path, docs: Iterable[IndexDoc], *, zim_uuid: str) -> int:
    """Index ``docs`` into a fresh ``directory``, tagged with the ZIM's uuid; returns count.

    A long page is indexed as passages of about ``PASSAGE_CHARS`` characters, each
    carrying the page's title; a page scores as its best passage. BM25 would otherwise
    bury a long page (a Factbook country) under short ones that repeat a query word.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    index = tantivy.Index(_schema(), path=str(directory))
    index.register_tokenizer(ANALYZER_NAME, analyzer())
    writer = index.writer(heap_size=128_000_000, num_threads=1)
    count = 0
    for doc in docs:
        # The title is repeated inside the body rather than kept as a separately boosted
        # field: one field means one document frequency per term, so a common word
        # is not mistaken for a rare one because few titles hold it ("Year", "Dating").
        names = [doc.title, doc.aliases] if doc.aliases else [doc.title]
        for passage in passages(doc.body):
            body = names * TITLE_REPEAT + [passage]
            writer.add_document(tantivy.Document(path=doc.path, title=doc.title, body=body))
        count += 1
    writer.commit()
    writer.wait_merging_threads()
    meta = {"format": INDEX_FORMAT, "zim_uuid": zim_uuid, "documents": count}
    (directory / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return count


class TextIndex:
    """A tantivy index opened for searching."""

    def __init__(self, directory: Path) -> None:
        try:
            meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
            if meta.get("format") != INDEX_FORMAT:
                raise ValueError(f"index format {meta.get('format')}, expected {INDEX_FORMAT}")
            self._index = tantivy.Index.open(str(directory))
            self._index.register_tokenizer(ANALYZER_NAME, analyzer())
            self._index.reload()
        except (OSError, ValueError) as exc:
            raise CorpusError(f"cannot open search index {directory}: {exc}") from exc
        self.directory = directory
        self.zim_uuid: str = str(meta.get("zim_uuid", ""))
        self._schema = self._index.schema
        self._analyzer = analyzer()
        self._searcher = self._index.searcher()

    @property
    def num_docs(self) -> int:
        return int(self._searcher.num_docs)

    def _idf(self, term: str) -> float:
        """BM25's inverse document frequency of an analysed body term."""
        n = self.num_docs
        df = int(self._searcher.doc_freq("body", term))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def _terms(self, words: Sequence[str]) -> list[list[str]]:
        return [self._analyzer.analyze(word) for word in words]

    def _query(self, query: str) -> tuple[tantivy.Query, list[str]] | None:
        words = query_words(query)
        groups = [terms for terms in self._terms(words) if terms]
        terms = list(dict.fromkeys(term for group in groups for term in group))
        if not terms:
            return None
        should = tantivy.Occur.Should
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
        for term in terms:
            clauses.append((should, tantivy.Query.term_query(self._schema, "body", term)))
        for pair in _adjacent_pairs(query, words, groups):
            phrase = tantivy.Query.phrase_query(self._schema, "body", list(pair))
            clauses.append((should, tantivy.Query.boost_query(phrase, PHRASE_BOOST)))
        return tantivy.Query.boolean_query(clauses), terms

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The best ``k`` pages for ``query`` (a question or keywords); [] if no words."""
        if k <= 0:
            return []
        built = self._query(query)
        if built is None:
            return []
        tquery, terms = built
        try:
            found = self._searcher.search(tquery, max(k, RERANK_DEPTH)).hits
        except (ValueError, RuntimeError) as exc:
            raise SearchError(f"search index failed on {query!r}: {exc}") from exc
        if not found:
            return []
        query_terms = self._analyzer.analyze(query)
        weight = {term: self._idf(term) for term in terms}
        total_weight = sum(weight.values()) or 1.0
        top = found[0][0] or 1.0
        pages: dict[str, _Page] = {}
        docs = [(score, self._searcher.doc(address)) for score, address in found]
        seen = {str(doc.get_first("path")) for _, doc in docs}
        looked_up = self._named_pages(tquery, terms, query_terms, seen)
        for score, doc in [*docs, *((score, self._searcher.doc(a)) for score, a in looked_up)]:
            path = str(doc.get_first("path"))
            values = doc["body"]
            passage = str(values[-1]) if values else ""
            if path in pages:  # hits come best first: the page has its score already
                pages[path].passages.append(passage)
                continue
            title = str(doc.get_first("title") or "")
            title_terms = self._analyzer.analyze(core_title(title))
            bonus = 0.0
            named = _title_named(title_terms, query_terms)
            if named:
                site = self._analyzer.analyze(title[len(core_title(title)) :])
                if site:  # "... according to the World Factbook"
                    named |= _title_named([t for t in site if t not in STOP_WORDS], query_terms)
                bonus = TITLE_NAMED_BONUS * sum(weight.get(t, 0.0) for t in named) / total_weight
            pages[path] = _Page(score / top + bonus, title, set(title_terms), [passage])
        ranked = sorted(pages.items(), key=lambda item: -item[1].score)[:k]
        return [
            Hit(path, page.title, page.score, self._snippet(page, terms, weight))
            for path, page in ranked
        ]

    def _named_pages(
        self,
        tquery: tantivy.Query,
        terms: Sequence[str],
        query_terms: Sequence[str],
        seen: Container[str],
    ) -> list[tuple[float, Any]]:
        """Passages of the pages whose whole title the query names but that the body
        search missed (their paths not in ``seen``), scored under ``tquery`` (best
        first).

        "How large is Austria in square kilometres?" finds a hundred passages on square
        kilometres before any of Austria's: the pages named "Austria" are looked up by
        title and scored like the rest, so the re-rank's title bonus can reach them.
        """
        should = tantivy.Occur.Should
        by_title = tantivy.Query.boolean_query(
            [(should, tantivy.Query.term_query(self._schema, "title", t)) for t in terms]
            + [
                # title words that name the same thing ("Belgium" for "Belgian")
                (should, tantivy.Query.regex_query(self._schema, "title", pattern))
                for t in terms
                if (pattern := _kin_pattern(t))
            ]
        )
        missing: list[str] = []
        checked: set[str] = set()  # a page's passages share its title: checked once
        for _, address in self._searcher.search(by_title, TITLE_LOOKUP).hits:
            doc = self._searcher.doc(address)
            path = str(doc.get_first("path"))
            if path in seen or path in checked:
                continue
            checked.add(path)
            title = self._analyzer.analyze(core_title(str(doc.get_first("title") or "")))
            if _title_named(title, query_terms):
                missing.append(path)
        if not missing:
            return []
        only = tantivy.Query.const_score_query(
            tantivy.Query.term_set_query(self._schema, "path", missing), 0.0
        )
        scoped = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, only), (tantivy.Occur.Must, tquery)]
        )
        return list(self._searcher.search(scoped, RERANK_DEPTH).hits)

    def _snippet(self, page: _Page, terms: Sequence[str], weights: Mapping[str, float]) -> str:
        """The best sentence of the page's matching passages.

        Every passage holds the title, so title words count for little here: the
        snippet should show where the other words of the query are.
        """
        weights = {t: w * (0.1 if t in page.title_terms else 1.0) for t, w in weights.items()}
        text = "\n".join(page.passages)
        return make_snippet(text, terms, self._analyzer, weights=weights, skip={page.title})


@dataclass
class _Page:
    score: float
    title: str
    title_terms: set[str]
    passages: list[str]


def _adjacent_pairs(
    query: str, words: Sequence[str], groups: Sequence[list[str]]
) -> list[tuple[str, str]]:
    """Pairs of analysed terms whose words stand next to each other in ``query``."""
    if len(words) != len(groups):  # some word analysed to nothing: skip phrases
        return []
    all_words = [w.lower() for w in _WORD.findall(query)]
    kept = {i for i, w in enumerate(all_words) if w not in STOP_WORDS and len(w) > 1 or w.isdigit()}
    pairs = []
    index_of_kept = [i for i in range(len(all_words)) if i in kept]
    for n in range(len(index_of_kept) - 1):
        if index_of_kept[n + 1] == index_of_kept[n] + 1:
            left, right = groups[n], groups[n + 1]
            if len(left) == 1 and len(right) == 1:
                pairs.append((left[0], right[0]))
    return list(dict.fromkeys(pairs))


def _kin_pattern(term: str) -> str | None:
    """A regular expression for the terms that may be ``same_thing`` as ``term`` (its
    first ``KIN_PREFIX`` letters, then up to as many letters as ``term`` has after them
    plus ``KIN_TAIL``), or None for a term too short or not all letters."""
    if len(term) < KIN_PREFIX or not term.isalpha():
        return None
    return f"{re.escape(term[:KIN_PREFIX])}[a-z]{{0,{len(term) - KIN_PREFIX + KIN_TAIL}}}"


def _title_named(title_terms: Sequence[str], query_terms: Sequence[str]) -> set[str]:
    """The query terms that name ``title_terms``, each in turn (``same_thing``), where
    the query names the whole title; else an empty set."""
    n = len(title_terms)
    if n == 0 or n > len(query_terms):
        return set()
    for i in range(len(query_terms) - n + 1):
        window = query_terms[i : i + n]
        if all(same_thing(t, q) for t, q in zip(title_terms, window, strict=True)):
            return set(window)
    return set()


def make_snippet(
    body: str,
    terms: Sequence[str],
    text_analyzer: tantivy.TextAnalyzer,
    *,
    weights: Mapping[str, float] | None = None,
    skip: Container[str] = (),
    max_chars: int = SNIPPET_CHARS,
) -> str:
    """The sentence (or line) of ``body`` that best matches the query terms, shortened.

    A sentence scores the summed ``weights`` (default 1) of the distinct ``terms`` it
    holds; sentences in ``skip`` (the bare title) are passed over.
    """
    wanted = set(terms)
    prefixes = {term[:4] for term in wanted}
    weights = weights or {}
    best, best_score = "", 0.0
    for sentence in split_sentences(body):
        if not sentence or sentence in skip:
            continue
        low = sentence.lower()
        if low.isascii() and not any(p in low for p in prefixes):
            continue  # cheap test first: no query term can be in this sentence
        found = wanted.intersection(text_analyzer.analyze(sentence))
        score = sum(weights.get(term, 1.0) for term in found)
        if score > best_score:
            best, best_score = sentence, score
    if not best:
        lines = (line.strip() for line in body.split("\n"))
        best = next((line for line in lines if line and line not in skip), "")
    return _shorten(" ".join(best.split()), wanted, text_analyzer, max_chars)


def _shorten(
    sentence: str, wanted: set[str], text_analyzer: tantivy.TextAnalyzer, max_chars: int
) -> str:
    """``sentence`` cut to ``max_chars``, keeping the first query term in view."""
    if len(sentence) <= max_chars:
        return sentence
    start = 0
    for word in _WORD.finditer(sentence):
        if wanted.intersection(text_analyzer.analyze(word.group())):
            start = max(0, word.start() - max_chars // 4)
            break
    if start + max_chars > len(sentence):
        start = max(0, len(sentence) - max_chars)
    if start:
        start = sentence.find(" ", start) + 1 or start
    text = sentence[start : start + max_chars]
    if start + max_chars < len(sentence):
        text = text.rsplit(" ", 1)[0] + "…"
    return ("…" if start else "") + text
