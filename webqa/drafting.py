"""Drafting: each episode's answer written from its quotes, then checked.

The answers of all episodes that quoted something are written in one batched call; each
is cleaned of thinking, of citations to quotes that do not exist and of what a small model
echoes of its prompt (``answering.cleaned``, ``webqa.tidying``), and (``abstain``) an
answer that adds nothing from its quotes becomes a decline. Episodes that declined or
found nothing, and drafts that were all echo, get the fixed text that says so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from webqa.answering import (
    DECLINED,
    NOT_ABOUT,
    NOT_IN_QUOTES,
    NOTHING_FOUND,
    cleaned,
    references,
    ungrounded,
)
from webqa.episode import Episode, answer_request
from webqa.models.base import Policy
from webqa.text import unnamed
from webqa.values import Candidate, Event, EventSink, Reference

DECLINES = {
    "nonsense": "it does not make sense as asked",
    "controversial": "it is too controversial to answer from sources",
}


def to_write(question: str, episodes: Sequence[Episode], *, abstain: bool) -> list[Episode]:
    """The episodes that get an answer written: they quoted something, did not decline
    and (``abstain``) their quotes name what the question names (``unnamed``)."""
    return [
        e
        for e in episodes
        if e.quotes
        and e.end_reason not in DECLINES
        and not (abstain and unnamed(question, e.quotes))
    ]


def write(
    question: str,
    episodes: Sequence[Episode],
    policy: Policy,
    *,
    max_tokens: int,
    emit: EventSink,
) -> dict[int, str]:
    """Each episode's answer as the policy wrote it, by episode index, in one batch (an
    answer drafted while browsing from the quotes the episode ended with is that one)."""
    if not episodes:
        return {}
    texts = {e.index: draft for e in episodes if (draft := e.draft) is not None}
    fresh = [e for e in episodes if e.index not in texts]  # not drafted while browsing
    for e in fresh:
        emit(Event("answering", e.index, f"{len(e.quotes)} quote(s)"))
    requests = [answer_request(question, e, max_tokens) for e in fresh]
    texts.update(
        (e.index, g.text)
        for e, g in zip(fresh, policy.generate(requests) if fresh else [], strict=True)
    )
    return texts


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
        elif abstain and (names := unnamed(question, quotes)):
            answer = NOT_ABOUT.format(names=", ".join(names))
            refs = tuple(references(quotes))
        else:
            answer, removed = cleaned(question, texts[e.index], quotes)
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
