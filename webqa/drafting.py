"""Drafting: each episode's answer written from its quotes, then checked.

The answers of all episodes that quoted something are written in one batched call; each
is cleaned of thinking and of citations to quotes that do not exist, and (``abstain``)
an answer that adds nothing from its quotes becomes a decline. Episodes that declined
or found nothing get the fixed text that says so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from webqa import prompting
from webqa.answering import (
    DECLINED,
    NOT_IN_QUOTES,
    NOTHING_FOUND,
    CitedClaims,
    clean_citations,
    format_quotes,
    references,
    ungrounded,
)
from webqa.browsing import Episode
from webqa.models.base import GenerationRequest, Message, Policy
from webqa.text import strip_think
from webqa.values import Candidate, Event, EventSink, Quote, Reference

DECLINES = {
    "nonsense": "it does not make sense as asked",
    "controversial": "it is too controversial to answer from sources",
}


def answer_chat(question: str, quotes: Sequence[Quote]) -> list[Message]:
    """The exact messages the policy sees when writing the answer."""
    return [
        Message("system", prompting.render("answer_system")),
        Message(
            "user", prompting.render("answer", question=question, quotes=format_quotes(quotes))
        ),
    ]


def to_write(episodes: Sequence[Episode]) -> list[Episode]:
    """The episodes that get an answer written: they quoted something and did not decline."""
    return [e for e in episodes if e.quotes and e.end_reason not in DECLINES]


def write(
    question: str,
    episodes: Sequence[Episode],
    policy: Policy,
    *,
    max_tokens: int,
    emit: EventSink,
) -> dict[int, str]:
    """Each episode's answer as the policy wrote it, by episode index, in one batch."""
    if not episodes:
        return {}
    for e in episodes:
        emit(Event("answering", e.index, f"{len(e.quotes)} quote(s)"))
    requests = [answer_request(question, e, max_tokens) for e in episodes]
    return {e.index: g.text for e, g in zip(episodes, policy.generate(requests), strict=True)}


def answer_request(
    question: str, e: Episode, max_tokens: int, constraint: CitedClaims | None = None
) -> GenerationRequest:
    """The request that writes ``e``'s answer (under ``constraint``, if given)."""
    return GenerationRequest(
        chat=answer_chat(question, e.quotes),
        max_new_tokens=max_tokens,
        temperature=e.temperature,
        seed=e.seed,
        constraint=constraint,
    )


def cleaned(text: str, quotes: Sequence[Quote]) -> tuple[str, int]:
    """A drafted answer without thinking and without citations of missing quotes, and
    how many citations went."""
    return clean_citations(strip_think(text), len(quotes))


def candidates(
    question: str,
    episodes: Sequence[Episode],
    texts: dict[int, str],
    *,
    abstain: bool,
    emit: EventSink,
) -> list[Candidate]:
    """Each episode as a candidate, its answer from ``texts`` (by episode index) checked."""
    out = []
    for e in episodes:
        quotes = e.quotes
        removed = 0
        if e.end_reason in DECLINES:
            answer = DECLINED.format(reason=DECLINES[e.end_reason])
            refs: tuple[Reference, ...] = ()
        elif not quotes:
            answer, refs = NOTHING_FOUND, ()
        else:
            answer, removed = cleaned(texts[e.index], quotes)
            if not answer:
                answer = NOTHING_FOUND
            elif abstain and ungrounded(question, answer, quotes):
                answer = NOT_IN_QUOTES
            refs = tuple(references(quotes))
        emit(Event("answer", e.index, answer))
        out.append(
            Candidate(
                answer=answer,
                references=refs,
                steps=tuple(e.steps),
                visited=e.env.visited_urls,
                end_reason=e.end_reason,
                removed_citations=removed,
                score=None,
                seconds=time.perf_counter() - e.started,
            )
        )
    return out
