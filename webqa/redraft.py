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
from webqa.text import find_citations, split_sentences
from webqa.values import Event, EventSink


def redraft(
    question: str,
    written: Sequence[Episode],
    texts: dict[int, str],
    policy: Policy,
    *,
    max_tokens: int,
    emit: EventSink,
) -> dict[int, str]:
    """The redrafts kept, by episode index, for those of ``written`` (their drafts in
    ``texts``) whose answer adds nothing from its quotes (``max_tokens``: a redraft's
    budget)."""
    weak = [
        e
        for e in written
        if (text := cleaned(question, texts[e.index], e.quotes)[0])
        and ungrounded(question, text, e.quotes)
    ]
    if not weak:
        return {}
    from webqa.models.embed import shared_embedder
    from webqa.models.grounding import GroundingScorer

    for e in weak:
        emit(Event("answering", e.index, "again: the draft cited without saying anything"))
    requests = [
        answer_request(question, e, max_tokens, CitedClaims(question, e.quotes)) for e in weak
    ]
    judge = GroundingScorer(shared_embedder(), judge=policy)
    kept: dict[int, str] = {}
    for e, g in zip(weak, policy.generate(requests), strict=True):
        quotes = e.quotes
        text = cleaned(question, g.text, quotes)[0]
        claims = [s for s in split_sentences(text) if find_citations(s)]
        if (
            claims
            and not ungrounded(question, text, quotes)
            and all(
                judge.supported(s, [quotes[n - 1] for n in set(find_citations(s))]) for s in claims
            )
        ):
            kept[e.index] = g.text
    return kept
