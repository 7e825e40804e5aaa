"""Turning quotes into a cited answer, and checking the answer's citations."""

from __future__ import annotations

import re
from collections.abc import Sequence

from webqa import prompting
from webqa.models.base import Message
from webqa.text import (
    CITATION_RE,
    close_up,
    find_citations,
    is_decline,
    keywords,
    last_sentence,
    meets,
    new_keywords,
    remove_citations,
    said_by,
    says_all,
    sentence_ends,
    split_sentences,
    strip_think,
    unnamed,
)
from webqa.tidying import tidy
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


def answer_chat(question: str, quotes: Sequence[Quote]) -> list[Message]:
    """The exact messages the policy sees when writing the answer."""
    return [
        Message("system", prompting.render("answer_system")),
        Message(
            "user", prompting.render("answer", question=question, quotes=format_quotes(quotes))
        ),
    ]


def states_answer(question: str, draft: str, quotes: Sequence[Quote]) -> bool:
    """Whether ``draft``, an answer the policy wrote from ``quotes`` (``answer_chat``;
    where the procedure redrafts, already written again if it added nothing from them:
    ``webqa.redraft``), would be shown as an answer: once tidied of what echoes its
    prompt (``cleaned``) it says something, its first sentence does not
    decline, the quotes name what the question names, and it adds something they say
    (not ``ungrounded``: "The capital is [1]." does not). The guided procedure's judge
    of whether the quotes so far answer the question: where they do not, it searches
    again before the answer is written."""
    text = cleaned(question, draft, quotes)[0]
    first = split_sentences(remove_citations(text))[:1]
    if not first or is_decline(first[0]) or unnamed(question, quotes):
        return False
    return not ungrounded(question, text, quotes)


def cleaned(question: str, text: str, quotes: Sequence[Quote]) -> tuple[str, int]:
    """A drafted answer without thinking, without citations of missing quotes and
    without echoes of its prompt (``webqa.tidying.tidy``; "" if nothing else was in
    it), and how many citations went."""
    text, removed = clean_citations(strip_think(text), len(quotes))
    return recite(question, tidy(question, text, quotes), quotes), removed


def recite(question: str, answer: str, quotes: Sequence[Quote]) -> str:
    """``answer`` with each sentence that cites quotes saying none of what it adds to
    the question cited instead to the one quote that says the most of it, where one
    does. The 0.5B wrote "... is Snezka 1,602 m [1]." from a first quote about a
    Czech commander and a second, Czechia's, that says "highest point: Snezka 1,602 m":
    the fact is the quotes', the number is wrong, and read as written the answer added
    nothing its citation says. A sentence that cites nothing, or whose words no quote
    says, is left as it is."""
    if len(quotes) < 2 or not find_citations(answer):
        return answer
    said = [said_by([q]) for q in quotes]
    out, start = [], 0
    for end in [*sentence_ends(answer), len(answer)]:
        sentence = answer[start:end]
        start = end
        cited = {n for n in find_citations(sentence) if 1 <= n <= len(quotes)}
        news = new_keywords(question, sentence)
        if not cited or not news or any(meets(news, said[n - 1]) for n in cited):
            out.append(sentence)
            continue
        best = max(range(len(quotes)), key=lambda i: len(meets(news, said[i])))
        first = CITATION_RE.search(sentence)
        if first is None or not meets(news, said[best]):
            out.append(sentence)
            continue
        rest = CITATION_RE.sub("", sentence[first.end() :])  # its other marks go
        sentence = f"{sentence[: first.start()]}[{best + 1}]{rest}"
        out.append(close_up(sentence))
    return "".join(out)


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


class CitedClaims:
    """A decoding constraint for answers: a citation mark ("[") may open only once its
    sentence has said something the quotes say that the question does not (one of
    ``new_keywords``), so a citation cannot stand in for the fact ("It is [1].").

    With ``required`` (the words of the quotes that answer the question, as
    ``webqa.reading.answer_spans`` copies them out), the first citation may open only
    once the answer has also said each keyword of them that the question does not.

    Anything else is free, newlines included (``multiline``), and any text is complete:
    the answer may also decline without citing.
    """

    multiline = True

    def __init__(self, question: str, quotes: Sequence[Quote], required: str = "") -> None:
        self._question = keywords(question)
        self._sources = said_by(quotes)
        self._required = keywords(required) - self._question
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
            known = bool(meets(said, self._sources)) and (
                not self._required or says_all(self._required, before)
            )
            self._checked[before] = known
        return known
