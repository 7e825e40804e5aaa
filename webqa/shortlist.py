"""Guided browsing's shortlist: which passages of a page a quote may start with.

A small model cannot find the sentence that answers a question on a long page, so in
guided mode a page's passages are ranked against the question and a quote must start
at one of the best (the model still decides where it ends, and everything else). The
rank mixes a dense ranker (MiniLM cosine) with keyword overlap: the share of the
question's keywords, weighted by how rare they are on the page, that the passage and
its section heading contain.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from webqa.browser.page import Page, is_search_page
from webqa.text import keyword_overlap, split_sentences

# Scores passages for relevance to the question (higher is better), e.g. MiniLM cosine.
PassageRanker = Callable[[str, Sequence[str]], Sequence[float]]
KEYWORD_WEIGHT = 0.3  # keyword overlap (0-1) counts this much against the cosine

_ENDS = (".", "!", "?", ":", ";")


@dataclass(frozen=True)
class Passages:
    # (begin, through): a quote starts where ``begin`` does and runs through ``through``;
    # ``begin`` is a passage, or a heading and the line under it
    starts: list[tuple[str, str]]
    ends: list[str]  # every passage: a whole quote ends where one of them ends
    focus: str  # text of the best passage (the view opens on it, a line above it on top)


class Shortlister:
    """The passages a guided quote may start with, per page (computed once per page).

    Passages are the page's sentences (each line split into sentences). Each is ranked
    with the heading of its section as context, so a line such as "name: Belmopan"
    under a "Capital" heading is read as "Capital name: Belmopan"; a quote of the
    first line under a heading starts at the heading. Pages without marked headings
    (plain text) take a short line above without closing punctuation as its heading.
    Headings, the page's title line and "See also:" lines are not passages.
    """

    CONTEXT_CHARS = 60  # a line above this short is context for the first sentence below
    SECTION_CHARS = 400  # a marked section this short is quoted whole
    PREFILTER = 96  # on pages with more passages, only this many by keyword overlap

    def __init__(self, question: str, ranker: PassageRanker, *, min_chars: int = 20) -> None:
        self.question, self.ranker, self.min_chars = question, ranker, min_chars
        self.cache: dict[str, tuple[list[str], list[_Candidate]]] = {}
        # a question's episodes step in parallel threads: one ranks a page, the rest wait
        self._lock = threading.Lock()

    def __call__(self, page: Page | None, k: int = 1) -> Passages | None:
        """The passages of ``page``, its ``k`` best first (None: no page, a results
        page, or nothing on it to rank)."""
        if page is None or is_search_page(page):
            return None
        return self._rank(page, k)

    def _candidates(self, page: Page) -> tuple[list[str], list[_Candidate]]:
        """Every sentence, and the rankable ones."""
        marked = bool(page.headings - {0})
        passages: list[str] = []
        candidates: list[_Candidate] = []
        sections: list[list[str]] = [[]]  # per section (marked pages): its heading, lines
        heading, previous = "", ""
        for i, line in enumerate(page.plain.splitlines()):
            line = line.strip()
            if not line:
                continue
            if marked and i in page.headings:
                heading = previous = "" if line == page.title else line
                sections.append([heading])
                continue
            sentences = split_sentences(line)
            passages.extend(sentences)
            sections[-1].append(line)
            if not marked:
                short = len(previous) <= self.CONTEXT_CHARS and not previous.endswith(_ENDS)
                heading = previous if short else ""
            first = previous == heading and bool(heading)
            if line == page.title or line.startswith("See also:"):
                previous = ""
                continue
            previous = line
            for k, sentence in enumerate(sentences):
                context = heading if (marked or k == 0) else ""
                if len(context) + len(sentence) >= self.min_chars:
                    candidates.append(
                        _Candidate(context, sentence, heading, first and k == 0, sections[-1])
                    )
        return passages, candidates

    def _rank(self, page: Page, k: int) -> Passages | None:
        with self._lock:
            if page.url not in self.cache:
                self.cache[page.url] = self._order(page)
            passages, ranked = self.cache[page.url]
        if not ranked:
            return None
        starts: list[tuple[str, str]] = []  # best first
        for c in ranked[:k]:
            if self._whole(c):
                # A short section (a Factbook field, say) is quoted whole, heading first
                # (located with its first line: the heading's words may recur below).
                starts.append((f"{c.heading}\n{c.section[1]}", split_sentences(c.section[-1])[-1]))
                continue
            # the first sentence under a heading was ranked with it, and is quoted with it:
            # "American writer (1920-2012)" above "Ray Douglas Bradbury was an American
            # author" holds the years the sentence lacks
            begin = f"{c.heading}\n{c.sentence}" if c.first else c.sentence
            starts.append((begin, c.sentence))
        starts = list(dict.fromkeys(starts))
        best = ranked[0]
        focus = best.section[1] if self._whole(best) else best.sentence
        return Passages(starts, passages, focus)

    def _whole(self, c: _Candidate) -> bool:
        """Whether ``c``'s section (its heading and the lines under it, ``c``'s among
        them) is short enough to be quoted whole."""
        section = c.section
        return (
            bool(c.heading)
            and section[0] == c.heading
            and (len(" ".join(section)) <= self.SECTION_CHARS)
        )

    def _order(self, page: Page) -> tuple[list[str], list[_Candidate]]:
        """Every sentence of the page, and the rankable passages best first."""
        passages, candidates = self._candidates(page)
        if not candidates:
            return passages, []
        # Every passage of a page is about its title, so the title's words say nothing
        # about which passage answers: rank against the question without them too.
        focus = _without_words(self.question, page.title)
        # keyword overlap, rarity weighed over the whole page
        overlap = keyword_overlap(focus, [f"{c.heading} {c.sentence}" for c in candidates])
        if len(candidates) > self.PREFILTER:  # a long page: MiniLM reads the likeliest
            best = sorted(range(len(candidates)), key=lambda i: -overlap[i])[: self.PREFILTER]
            candidates = [candidates[i] for i in sorted(best)]
            overlap = [overlap[i] for i in sorted(best)]
        texts = [f"{c.context} {c.sentence}".strip() for c in candidates]
        scores = list(self.ranker(self.question, texts))
        if focus != self.question:
            scores = [(a + b) / 2 for a, b in zip(scores, self.ranker(focus, texts), strict=True)]
        scores = [s + KEYWORD_WEIGHT * k for s, k in zip(scores, overlap, strict=True)]
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        return passages, [candidates[i] for i in order]


@dataclass(frozen=True)
class _Candidate:
    context: str  # ranked together with the sentence
    sentence: str
    heading: str  # of its section ("" if none)
    first: bool  # the first sentence under the heading
    section: list[str]  # marked pages: the section's heading and lines so far


def _without_words(question: str, title: str) -> str:
    """``question`` without the words of ``title`` (unchanged if under two words remain)."""
    drop = {w.lower() for w in re.findall(r"\w+", title)}
    kept = [w for w in re.findall(r"\w+", question) if w.lower() not in drop]
    return " ".join(kept) if len(kept) >= 2 else question
