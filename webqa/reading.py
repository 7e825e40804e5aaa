"""Reading the quotes: the words in them that answer the question, copied out first.

Asked for an answer sentence, the 0.5B often writes one that cites without saying
anything ("The median age in Burma is [1]." from a quote that gives "total: 31.1
years"). Asked only to copy the words of the quotes that answer the question, it
copies "31.1 years". ``answer_spans`` asks that, under decoding that keeps what it
writes a stretch of the quotes that begins and ends on word boundaries and adds
something to the question (``QuoteSpan``); a redraft (``webqa.redraft``) must then say
those words before it may cite (``webqa.answering.CitedClaims``'s ``required``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from webqa import prompting
from webqa.answering import format_quotes
from webqa.models.base import GenerationRequest, Message, Policy
from webqa.text import keywords
from webqa.values import Quote

SPAN_MAX_TOKENS = 24  # a name, a number with its unit, a date: a few words
SPAN_MAX_CHARS = 120

_SPACE = re.compile(r"\s+")


def flat(text: str) -> str:
    """``text`` lower-cased, each run of spaces one space, none at its start: how a span
    and the quotes are compared."""
    return _SPACE.sub(" ", text.lower()).lstrip()


def _word_char(text: str, at: int) -> bool:
    return 0 <= at < len(text) and text[at].isalnum()


class QuoteSpan:
    """A decoding constraint: the output is a stretch of one of the quotes (case and
    spacing aside) that starts at a word's start, at most ``SPAN_MAX_CHARS`` long; it is
    complete where it also ends at a word's end and says a keyword the question does
    not (a span of the question's own words answers nothing)."""

    def __init__(self, question: str, quotes: Sequence[Quote]) -> None:
        self._texts = [flat(q.text) for q in quotes]
        self._question = keywords(question)

    def _starts(self, text: str) -> list[tuple[str, int]]:
        """Each (quote, offset) where ``text`` occurs starting at a word's start."""
        found = []
        for quote in self._texts:
            at = quote.find(text)
            while at >= 0:
                if not _word_char(quote, at - 1):
                    found.append((quote, at))
                at = quote.find(text, at + 1)
        return found

    def allows(self, text: str) -> bool:
        span = flat(text)
        return not span or (len(span) <= SPAN_MAX_CHARS and bool(self._starts(span)))

    def complete(self, text: str) -> bool:
        span = flat(text).rstrip()
        if not span or len(span) > SPAN_MAX_CHARS or not keywords(span) - self._question:
            return False
        return any(not _word_char(q, at + len(span)) for q, at in self._starts(span))


def span_chat(question: str, quotes: Sequence[Quote]) -> list[Message]:
    """The exact messages the policy sees when copying out the answer's words."""
    return [
        Message("system", prompting.render("span_system")),
        Message("user", prompting.render("span", question=question, quotes=format_quotes(quotes))),
    ]


def answer_spans(
    question: str, quoted: Sequence[Sequence[Quote]], policy: Policy, *, seeds: Sequence[int]
) -> list[str | None]:
    """For each set of quotes, the words of them that answer ``question`` as the policy
    copies them out (greedy, in one batch), or None where it copied no whole span."""
    if not quoted:
        return []
    constraints = [QuoteSpan(question, quotes) for quotes in quoted]
    requests = [
        GenerationRequest(
            chat=span_chat(question, quotes),
            max_new_tokens=SPAN_MAX_TOKENS,
            constraint=constraint,
            seed=seed,
        )
        for quotes, constraint, seed in zip(quoted, constraints, seeds, strict=True)
    ]
    out: list[str | None] = []
    for constraint, generation in zip(constraints, policy.generate(requests), strict=True):
        span = generation.text.strip()
        out.append(span if constraint.complete(span) else None)
    return out
