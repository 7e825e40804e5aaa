"""Redrafting: a second try at an answer that cites without saying anything.

A small model often writes "The capital is [1]." from a quote that names the capital.
Such a draft would be withdrawn as adding nothing from its quotes; instead it is written
again with decoding that lets a citation open only after its sentence has said
something the quotes say (``CitedClaims``), and the redraft is kept only if it is
grounded and the support judge (the grounding scorer, the policy as its judge) finds
every cited sentence backed by the quotes it cites. Which procedures redraft is theirs
to say (``webqa.procedure``).
"""

from __future__ import annotations

from collections.abc import Sequence

from webqa.answering import CitedClaims, cleaned, ungrounded
from webqa.episode import Episode, answer_request
from webqa.models.base import Policy
from webqa.reading import answer_spans
from webqa.text import (
    find_citations,
    is_decline,
    keywords,
    remove_citations,
    says_all,
    split_sentences,
)
from webqa.values import Event, EventSink


def redraft(
    question: str,
    written: Sequence[Episode],
    texts: dict[int, str],
    policy: Policy,
    *,
    max_tokens: int,
    emit: EventSink,
    read_span: bool = False,
) -> dict[int, str]:
    """The redrafts kept, by episode index, for those of ``written`` (their drafts in
    ``texts``) whose answer adds nothing from its quotes (``max_tokens``: a redraft's
    budget). With ``read_span``, the words of its quotes that answer the question are
    copied out first (``webqa.reading``) and a redraft may cite only once it has said
    them."""
    weak = [
        e
        for e in written
        if (text := cleaned(question, texts[e.index], e.quotes)[0])
        and ungrounded(question, text, e.quotes)
    ]
    if not weak:
        return {}
    for e in weak:
        emit(Event("answering", e.index, "again: the draft cited without saying anything"))
    spans = _spans(question, weak, policy, emit) if read_span else [None] * len(weak)
    return _rewritten(question, weak, spans, policy, max_tokens)


def reread(
    question: str,
    written: Sequence[Episode],
    texts: dict[int, str],
    policy: Policy,
    *,
    max_tokens: int,
    emit: EventSink,
) -> dict[int, str]:
    """The rewrites kept, by episode index, for those of ``written`` whose answer (in
    ``texts``; one that answers: grounded, not a decline) does not say the words of its
    quotes that answer the question, as the policy copies them out (``webqa.reading``):
    the answer is written again under decoding that lets it cite only once it has said
    them, and kept where it is grounded, says them and the support judge backs it."""
    answers = {e.index: cleaned(question, texts[e.index], e.quotes)[0] for e in written}
    shown = [
        e
        for e in written
        if (text := answers[e.index])
        and not is_decline(remove_citations(text))
        and not ungrounded(question, text, e.quotes)
    ]
    if not shown:
        return {}
    misread = [
        (e, span)
        for e, span in zip(shown, _spans(question, shown, policy, emit), strict=True)
        if span is not None and not says(question, answers[e.index], span)
    ]
    if not misread:
        return {}
    for e, span in misread:
        emit(Event("answering", e.index, f"again: the answer does not say {span!r}"))
    return _rewritten(
        question, [e for e, _ in misread], [s for _, s in misread], policy, max_tokens
    )


def says(question: str, text: str, span: str) -> bool:
    """Whether ``text`` says every keyword of ``span`` that ``question`` does not."""
    return says_all(keywords(span) - keywords(question), text)


def _spans(
    question: str, episodes: Sequence[Episode], policy: Policy, emit: EventSink
) -> list[str | None]:
    """Each episode's words of its quotes that answer ``question`` (``answer_spans``)."""
    spans = answer_spans(
        question, [e.quotes for e in episodes], policy, seeds=[e.seed for e in episodes]
    )
    for e, span in zip(episodes, spans, strict=True):
        if span is not None:
            emit(Event("answering", e.index, f"the quotes' words that answer it: {span}"))
    return spans


def _rewritten(
    question: str,
    episodes: Sequence[Episode],
    spans: Sequence[str | None],
    policy: Policy,
    max_tokens: int,
) -> dict[int, str]:
    """Each episode's answer written again under ``CitedClaims`` (its span required),
    by episode index, where the new one is grounded, says its span and every cited
    sentence is backed by the quotes it cites (the support judge: MiniLM plus the
    policy's yes/no)."""
    from webqa.models.embed import shared_embedder
    from webqa.models.grounding import GroundingScorer

    requests = [
        answer_request(question, e, max_tokens, CitedClaims(question, e.quotes, span or ""))
        for e, span in zip(episodes, spans, strict=True)
    ]
    judge = GroundingScorer(shared_embedder(), judge=policy)
    kept: dict[int, str] = {}
    for e, span, g in zip(episodes, spans, policy.generate(requests), strict=True):
        quotes = e.quotes
        text = cleaned(question, g.text, quotes)[0]
        claims = [s for s in split_sentences(text) if find_citations(s)]
        if (
            claims
            and not ungrounded(question, text, quotes)
            and (span is None or says(question, text, span))
            and all(
                judge.supported(s, [quotes[n - 1] for n in set(find_citations(s))]) for s in claims
            )
        ):
            kept[e.index] = g.text
    return kept
