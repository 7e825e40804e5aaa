"""Best-of-n's choice: score every candidate in one call, then pick the best.

A candidate's ranking is its reward, plus (``consensus``) its agreement with the other
answers; the greedy episode's answer (the policy's likeliest) gets ``greedy_prior``
more, so that a sampled one replaces it only when clearly better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from webqa.models.base import RewardModel
from webqa.text import is_decline, new_keywords, remove_citations
from webqa.values import Candidate, Event, EventSink, Quote


def scored(
    question: str,
    candidates: Sequence[Candidate],
    quotes: Sequence[Sequence[Quote]],
    reward: RewardModel,
    *,
    emit: EventSink,
) -> list[Candidate]:
    """``candidates`` with their rewards (``quotes``: each one's), all in one call."""
    values = reward.score(
        question, [(q, c.answer) for q, c in zip(quotes, candidates, strict=True)]
    )
    if len(values) != len(candidates):
        raise ValueError(
            f"the reward model {reward.name!r} gave {len(values)} scores "
            f"for {len(candidates)} answers"
        )
    for i, value in enumerate(values):
        emit(Event("scored", i, f"{value:.3f}"))
    return [replace(c, score=v) for c, v in zip(candidates, values, strict=True)]


def with_agreement(question: str, candidates: Sequence[Candidate]) -> list[Candidate]:
    """``candidates`` with each one's agreement with the others (see ``agreements``)."""
    agreement = agreements(question, [c.answer for c in candidates])
    return [replace(c, agreement=a) for c, a in zip(candidates, agreement, strict=True)]


def agreements(question: str, answers: Sequence[str]) -> list[float]:
    """For each answer, its mean agreement with the others, in [0, 1]: the overlap
    (Jaccard) of the keywords each adds to the question. Declines and answers that add
    nothing agree with nothing (finding nothing is no finding to agree on; the reward
    model scores them). Best-of-n leans towards what most episodes found, the way
    self-consistency and minimum-Bayes-risk selection do."""
    news = [
        set() if is_decline(remove_citations(a)) else new_keywords(question, a) for a in answers
    ]

    def same(a: set[str], b: set[str]) -> float:
        return len(a & b) / len(a | b) if a and b else 0.0

    if len(answers) < 2:
        return [0.0] * len(answers)
    return [
        sum(same(news[i], news[j]) for j in range(len(answers)) if j != i) / (len(answers) - 1)
        for i in range(len(answers))
    ]


def choose(
    candidates: Sequence[Candidate], *, consensus: float = 0.0, greedy_prior: float = 0.0
) -> int:
    """The index of best-of-n's answer: the highest ranking (reward + ``consensus`` x
    agreement), candidate 0 (the greedy episode) getting ``greedy_prior`` more; the
    first on ties, unscored candidates lowest (none scored: candidate 0)."""
    rankings = [c.ranking(consensus) for c in candidates]
    if greedy_prior and rankings and rankings[0] is not None:
        rankings[0] += greedy_prior
    return best_index(rankings)


def best_index(scores: Sequence[float | None]) -> int:
    """The index of the highest score (the first on ties; unscored counts as lowest)."""
    best = 0
    for i, s in enumerate(scores):
        current = scores[best]
        if s is not None and (current is None or s > current):
            best = i
    return best
