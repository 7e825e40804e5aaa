"""Turning quotes into a cited answer, and checking the answer's citations."""

from __future__ import annotations

import re
from collections.abc import Sequence

from webqa.text import (
    STOP_WORDS,
    core_title,
    find_citations,
    is_decline,
    keywords,
    last_sentence,
    meets,
    new_keywords,
    remove_citations,
    split_sentences,
    stem,
)
from webqa.values import Quote, Reference

_WORD = re.compile(r"\w+")
NOTHING_FOUND = (
    "I could not find an answer to this question: browsing did not turn up any "
    "passage that answers it."
)
DECLINED = "I will not answer this question: {reason}."
NOT_ABOUT = (
    "I could not find the answer: the passages I quoted are about something else (none "
    "of them names {names})."
)
NOT_IN_QUOTES = (
    "I could not find the answer: the passages I quoted do not state it (the answer I "
    "drafted added nothing that they say)."
)


def format_quotes(quotes: Sequence[Quote], *, max_chars: int = 1200) -> str:
    """The numbered quotes as the answer prompt shows them."""
    lines = []
    for n, quote in enumerate(quotes, start=1):
        extract = quote.text if len(quote.text) <= max_chars else quote.text[:max_chars] + "…"
        lines.append(f"[{n}] {quote.title} ({quote.domain}): {extract}")
    return "\n".join(lines)


def clean_citations(answer: str, n_quotes: int) -> tuple[str, int]:
    """Drop citations to quotes that do not exist; return the text and how many went."""
    removed = sum(not 1 <= n <= n_quotes for n in find_citations(answer))
    if not removed:
        return answer.strip(), 0
    return remove_citations(answer, keep=lambda n: 1 <= n <= n_quotes), removed


def cited_numbers(answer: str) -> list[int]:
    """The quote numbers an answer cites, in order of first use."""
    return list(dict.fromkeys(find_citations(answer)))


def references(quotes: Sequence[Quote]) -> list[Reference]:
    """One reference per recorded quote, numbered as the answer prompt numbered them."""
    return [
        Reference(n=n, title=q.title, url=q.url, extract=q.text)
        for n, q in enumerate(quotes, start=1)
    ]


def ungrounded(question: str, answer: str, quotes: Sequence[Quote]) -> bool:
    """Whether ``answer`` adds nothing of its sources to the question: none of its
    keywords that the question lacks occurs in the quotes it cites (all quotes when it
    cites none). "It is [1]." and a name or number the quotes never mention both are.
    Declines are not answers and are never ungrounded."""
    text = remove_citations(answer)
    if not text.strip() or is_decline(text):
        return False
    news = new_keywords(question, text)
    cited = [quotes[n - 1] for n in set(find_citations(answer)) if 1 <= n <= len(quotes)]
    return not meets(news, said_by(cited or quotes))


def names(question: str) -> list[str]:
    """The names ``question`` gives: its capitalised words of three letters or more,
    not stop words, past the first word of their sentence ("Give the year." gives
    none), each once. A question written all in capitals gives none."""
    if question.isupper():
        return []
    found: list[str] = []
    for sentence in split_sentences(question):
        for word in _WORD.findall(sentence)[1:]:
            if word[:1].isupper() and len(word) > 2 and word.lower() not in STOP_WORDS:
                if word not in found:
                    found.append(word)
    return found


def unnamed(question: str, quotes: Sequence[Quote]) -> list[str]:
    """The ``names`` of ``question`` that no quote names, in its text or its page's
    title: quotes about a Yuzuru Hanyu do not answer a question about a Yuzuru
    Kurosawa."""
    have = said_by(quotes, site=True)
    return [n for n in names(question) if not meets([stem(n.lower())], have)]


def said_by(quotes: Sequence[Quote], *, site: bool = False) -> set[str]:
    """The keywords ``quotes`` say: each one's text and its page's title, which the
    answer prompt shows with it (a page about Bratislava that says "Capital and largest
    city of Slovakia" says that Bratislava is the capital), less a site's name after it
    ("- The World Factbook": naming the source is not an answer) unless ``site`` (a
    question that names the site is answered from its pages)."""

    def title(q: Quote) -> str:
        return q.title if site else core_title(q.title)

    return set().union(set(), *(keywords(f"{title(q)} {q.text}") for q in quotes))


class CitedClaims:
    """A decoding constraint for answers: a citation mark ("[") may open only once its
    sentence has said something the quotes say that the question does not (one of
    ``new_keywords``), so a citation cannot stand in for the fact ("It is [1].").

    Anything else is free, newlines included (``multiline``), and any text is complete:
    the answer may also decline without citing.
    """

    multiline = True

    def __init__(self, question: str, quotes: Sequence[Quote]) -> None:
        self._question = keywords(question)
        self._sources = said_by(quotes)
        self._checked: dict[str, bool] = {}  # text before a "[" -> may it open there

    def allows(self, text: str) -> bool:
        at = text.find("[")
        while at >= 0:
            if not self._may_cite(text[:at]):
                return False
            at = text.find("[", at + 1)
        return True

    def complete(self, text: str) -> bool:
        return self.allows(text)

    def _may_cite(self, before: str) -> bool:
        known = self._checked.get(before)
        if known is None:
            sentence = last_sentence(before)
            said = keywords(remove_citations(sentence)) - self._question
            known = self._checked[before] = bool(meets(said, self._sources))
        return known
