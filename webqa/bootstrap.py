"""Comparisons without people: best-of-n on questions with known answers, each pair of
candidates judged by the gold answers (issue 14's bootstrap).

For every question of a file with gold answers (``answers``, ``answerable``: the schema
of benchmarks/questions/*.jsonl), best-of-n runs as ``webqa ask -n`` does, each
candidate is graded (``grade``: it contains a gold answer its own quotes state, or
declines a question the corpus cannot answer), and every two candidates whose answers
differ become one comparison: the right one over the wrong one (a decline over a wrong answer
on an unanswerable question, a right answer over a decline on an answerable one), a
tie where both are right or both wrong. Two candidates with the same answer say
nothing and are not compared (counted in ``BootstrapStats.same``).

Never train on the sets you measure with: benchmarks/gen_questions.py ``--train`` draws
questions none of whose facts the dev or heldout files ask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

from webqa.comparisons import Comparison
from webqa.grading import correct, norm
from webqa.values import Candidate, Question, Quote


@dataclass
class BootstrapStats:
    """What a bootstrap run made: questions answered and failed, comparisons (of them
    ties), pairs with the same answer, questions with a right candidate."""

    questions: int = 0
    failed: int = 0
    comparisons: int = 0
    ties: int = 0
    same: int = 0
    with_right: int = 0


def candidate_quotes(c: Candidate) -> tuple[Quote, ...]:
    """A candidate's quotes as its answer cites them ([n] is the n-th)."""
    return tuple(Quote(r.title, r.url, "", r.extract) for r in c.references)


def grade(item: Mapping[str, Any], answer: str, quotes: Sequence[Quote]) -> bool:
    """Whether ``answer`` is right for the question row ``item`` and, where the question
    is answerable, said by its own ``quotes``: a gold answer occurs in them. A right
    answer its quotes do not state (a guess from the model's memory, a nationality
    guessed for a two-hop question) counts as wrong, as WebGPT's labellers judged an
    answer by its support as well as its truth; a reward model taught to prefer such
    guesses learns to reward words the quotes do not carry."""
    if not correct(item, answer):
        return False
    if not item["answerable"]:
        return True
    said = norm(" ".join(q.text for q in quotes))
    return any(g and norm(g) in said for g in item["answers"])


def regrade(item: Mapping[str, Any], comparison: Comparison) -> Comparison:
    """``comparison`` judged again by ``grade`` against ``item``'s gold answers (what
    ``judge_pairs`` would say of the same two candidates)."""
    right_0 = grade(item, comparison.answer_0, comparison.quotes_0)
    right_1 = grade(item, comparison.answer_1, comparison.quotes_1)
    return replace(comparison, score_0=_score(right_0, right_1))


def _score(right_a: bool, right_b: bool) -> float:
    return 0.0 if right_a == right_b else (1.0 if right_a else -1.0)


def judge_pairs(
    item: Mapping[str, Any], candidates: Iterable[Candidate], *, source: str = "bootstrap"
) -> tuple[list[Comparison], int]:
    """The comparisons of one question's candidates (see the module's docstring), and
    how many pairs had the same answer."""
    graded = [(c, grade(item, c.answer, candidate_quotes(c))) for c in candidates]
    out, same = [], 0
    for (a, right_a), (b, right_b) in combinations(graded, 2):
        if " ".join(a.answer.split()) == " ".join(b.answer.split()):
            same += 1
            continue
        score = _score(right_a, right_b)
        extra = {"id": item.get("id"), "kind": item.get("kind")}
        out.append(
            Comparison(
                question=str(item["question"]),
                quotes_0=candidate_quotes(a),
                answer_0=a.answer,
                quotes_1=candidate_quotes(b),
                answer_1=b.answer,
                score_0=score,
                source=source,
                extra={k: v for k, v in extra.items() if v is not None},
            )
        )
    return out, same


def bootstrap(
    items: Sequence[Mapping[str, Any]],
    answer_many: Callable[[list[Question]], Iterable[Any]],
    stats: BootstrapStats | None = None,
) -> Iterator[Comparison]:
    """Comparisons for ``items``, question by question as ``answer_many`` (e.g.
    ``functools.partial(webqa.api.answer_many, n=4)``) finishes them; ``stats`` counts."""
    stats = stats if stats is not None else BootstrapStats()
    by_id = {str(i): item for i, item in enumerate(items)}
    questions = [Question(str(item["question"]), id=str(i)) for i, item in enumerate(items)]
    for done in answer_many(questions):
        item = by_id[done.question.id]
        if done.result is None:
            stats.failed += 1
            continue
        stats.questions += 1
        candidates = done.result.candidates
        stats.with_right += any(grade(item, c.answer, candidate_quotes(c)) for c in candidates)
        made, same = judge_pairs(item, candidates)
        stats.same += same
        stats.comparisons += len(made)
        stats.ties += sum(c.score_0 == 0 for c in made)
        yield from made
