"""The grounding scorer, the embedded default reward model: is each sentence of an
answer backed by the quotes it cites? MiniLM similarity, plus a policy's yes/no
judgement when one is given. All the answers to a question are scored in one call: one
embedding batch and one batch of judge questions for every sentence of every answer."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from webqa.models.base import Message, Policy, Scorable
from webqa.text import (
    find_citations,
    is_decline,
    keywords,
    new_keywords,
    remove_citations,
    split_sentences,
)
from webqa.values import Quote

JUDGE_PROMPT = (
    "Quote:\n{quote}\n\nStatement: {statement}\n\n"
    "Does the quote support the statement? Answer yes or no."
)
CLAUSE_WORDS = 6  # quote clauses shorter than this are merged with the next one
JUDGE_QUOTE_CHARS = 1500  # each quote is cut to this many characters in the judge prompt


@dataclass(frozen=True)
class GroundingWeights:
    """How the grounding score is put together. Scores land roughly in [-1.5, 1.6]."""

    # Positive terms.
    support: float = 1.0  # x mean support over claim sentences (uncited ones count 0)
    relevance: float = 0.3  # x mean cosine(question, cited quote) x mean support: on-topic
    # quotes count only as far as the answer is backed by them
    grounded_news: float = 0.3  # x share of the answer's new keywords (not in the question)
    # that occur in the quotes it cites: the answer's own content comes from its sources
    # Penalties (a claim cited to quotes that do not back it costs as much as no citation).
    uncited: float = 0.5  # x share of claim sentences citing no existing quote
    unsupported: float = 0.5  # x sum of (1 - support) over cited claims / number of claims
    bad_citation: float = 0.2  # per citation of a quote number that does not exist ...
    max_bad_citations: int = 3  # ... counted up to this many
    empty: float = 1.0  # an empty answer scores -empty
    no_news: float = 0.5  # an answer that adds no keyword to the question's ("It is [1].")
    # An answer that only declines ("I could not find ...") scores a constant:
    decline_no_quotes: float = 0.2  # nothing was quoted: declining is the right call
    # quotes exist: a weakly supported answer should not beat owning up that they do not
    # answer the question (on dev, sampled answers to unanswerable questions scored 0.37-0.42)
    decline_with_quotes: float = 0.3
    # A cited sentence's support, in [0, 1].
    judge_share: float = 0.6  # judge's P(yes) share when a judge is given; rest is similarity
    sim_floor: float = 0.25  # MiniLM cosine at or below this gives similarity support 0
    sim_ceil: float = 0.75  # ... at or above this gives 1 (linear between)
    supported_threshold: float = 0.5  # support at or above this counts as "supported"
    # An uncited sentence with fewer words (a heading, "In short:") is not a claim.
    min_claim_words: int = 4


@dataclass(frozen=True)
class SentenceSupport:
    """How one answer sentence fared."""

    text: str  # as written, citation marks included
    citations: tuple[int, ...]  # numbers cited, repeats kept
    valid: tuple[int, ...]  # the cited numbers that name a quote, sorted, unique
    claim: bool  # False for declines and short uncited sentences (not scored)
    similarity: float | None = None  # best cosine against the cited quotes
    judge: float | None = None  # judge's P(yes), when a judge is given
    support: float = 0.0  # combined support in [0, 1] (0 for uncited claims)
    supported: bool = False  # support >= the threshold


@dataclass(frozen=True)
class GroundingDetails:
    """Every component of a grounding score, for logs and the quality benchmark."""

    score: float
    sentences: tuple[SentenceSupport, ...] = ()
    support: float = 0.0  # mean support over claim sentences
    relevance: float = 0.0  # mean question-quote cosine over the quotes considered
    uncited: int = 0  # claim sentences citing no existing quote
    bad_citations: int = 0  # citations of quote numbers that do not exist
    declined: bool = False  # the answer only declines
    empty: bool = False

    @property
    def cited(self) -> int:
        """Sentences citing at least one existing quote."""
        return sum(1 for s in self.sentences if s.valid)

    @property
    def supported(self) -> int:
        """Cited sentences whose quotes support them."""
        return sum(1 for s in self.sentences if s.valid and s.supported)

    @property
    def citation_support(self) -> float | None:
        """Share of cited sentences whose quotes support them (None when none cite)."""
        return self.supported / self.cited if self.cited else None


class TextEmbedder(Protocol):
    """What the scorer needs from an embedder (``webqa.models.embed.Embedder``)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length rows, one per text."""
        ...


@dataclass
class GroundingScorer:
    """Reward = how well the answer's sentences are backed by the quotes they cite.

    score = support * S + relevance * R * S - uncited * (uncited claims / claims)
            - unsupported * (sum of 1 - support over cited claims / claims)
            - bad_citation * citations of missing quotes
            + grounded_news * G - no_news * [the claims add no keyword to the question],
    where S is the mean support over claim sentences (uncited ones count 0) and R the
    mean question-quote similarity of the cited quotes and G the share of the claims' new
    keywords (those not in the question) that occur in the cited quotes,
    with empty answers and pure declines handled apart (see ``GroundingWeights``).
    A cited sentence's support mixes MiniLM similarity to its best-matching cited quote
    (the whole quote, one of its sentences or one of its clauses) with, when ``judge``
    is given, the judge's P(yes) for "does the quote support the statement?".
    """

    embedder: TextEmbedder | None = None  # None: the shared all-MiniLM-L6-v2 (first use)
    judge: Policy | None = None
    weights: GroundingWeights = field(default_factory=GroundingWeights)
    name: str = field(init=False, default="grounding")

    def __post_init__(self) -> None:
        if self.judge is not None:
            self.name = f"grounding+judge:{self.judge.name}"
        if self.embedder is None:  # the process's one MiniLM, the passage ranker's too
            from webqa.models.embed import shared_embedder

            self.embedder = shared_embedder()
        self._embedder: TextEmbedder = self.embedder

    @classmethod
    def default(cls, judge: Policy | None = None) -> GroundingScorer:
        """MiniLM from its package, with ``judge`` (a policy) when given."""
        return cls(None, judge=judge)

    def score(self, question: str, answers: Sequence[Scorable]) -> list[float]:
        """Each answer's score, given with the quotes it may cite; all in one batch."""
        return [d.score for d in self.details_many(question, answers)]

    def supported(self, sentence: str, quotes: Sequence[Quote]) -> bool:
        """Whether ``quotes`` (all taken as cited) support ``sentence``."""
        if not quotes or not remove_citations(sentence):
            return False
        pairs = [(remove_citations(sentence), list(quotes))]
        vectors = self._vectors(_texts(pairs))
        sim, judged = self._similarities(pairs, vectors)[0], self._judge(pairs)[0]
        return self._combine(sim, judged) >= self.weights.supported_threshold

    def details(self, question: str, quotes: Sequence[Quote], answer: str) -> GroundingDetails:
        """Every component of one answer's score."""
        return self.details_many(question, [(quotes, answer)])[0]

    def details_many(self, question: str, answers: Sequence[Scorable]) -> list[GroundingDetails]:
        """Every component of each answer's score: every answer's cited sentences are
        embedded (with the question and the quotes) in one batch and judged in one."""
        w = self.weights
        parsed = [self._sentences(quotes, answer) for quotes, answer in answers]
        pairs = [
            (row[3], [quotes[n - 1] for n in row[2]])
            for (quotes, _), one in zip(answers, parsed, strict=True)
            for row in (one[0] if one is not None else ())
            if row[2]
        ]
        considered = [
            [quotes[n - 1] for n in sorted({n for row in one[0] for n in row[2]})] or list(quotes)
            for (quotes, _), one in zip(answers, parsed, strict=True)
            if one is not None
        ]
        relevant = [c for c in considered if c and question.strip()]
        texts = _texts(pairs) + ([question] if relevant else [])
        texts += [c for quotes in relevant for q in quotes for c in _chunks(q.text)]
        vectors = self._vectors(texts) if texts else {}
        measured = iter(zip(self._similarities(pairs, vectors), self._judge(pairs), strict=True))
        relevances = iter([self._relevance(question, c, vectors) for c in considered])
        return [
            GroundingDetails(score=-w.empty, empty=True)
            if one is None
            else self._details(question, quotes, one, measured, next(relevances))
            for (quotes, _), one in zip(answers, parsed, strict=True)
        ]

    # -- internals ----------------------------------------------------------------

    def _sentences(self, quotes: Sequence[Quote], answer: str) -> _Parsed | None:
        """The answer's sentences as rows, and whether it declines (None: it is empty)."""
        w = self.weights
        sentences = split_sentences(answer)
        if not sentences:
            return None
        rows: list[_Row] = []
        declines = False
        for sentence in sentences:
            cites = tuple(find_citations(sentence))
            clean = remove_citations(sentence)
            if not clean.strip(".!?…"):  # citation marks alone: nothing to support
                rows.append((sentence, cites, (), clean, False))
                continue
            valid = tuple(sorted({n for n in cites if 1 <= n <= len(quotes)}))
            declines = declines or (not cites and is_decline(clean))
            exempt = is_decline(clean) or len(clean.split()) < w.min_claim_words
            rows.append((sentence, cites, valid, clean, bool(cites) or not exempt))
        if not declines and not any(row[4] for row in rows):
            # only short sentences ("Canberra."): a short answer is still a claim
            rows = [(a, b, c, d, bool(d.strip(".!?…"))) for a, b, c, d, _ in rows]
        return rows, declines

    def _details(
        self,
        question: str,
        quotes: Sequence[Quote],
        parsed: _Parsed,
        measured: Iterator[tuple[float, float | None]],
        relevance: float,
    ) -> GroundingDetails:
        """One answer's score from its sentences, the support of its cited ones (taken
        from ``measured`` in order) and its quotes' relevance."""
        w = self.weights
        rows, declines = parsed
        bad = sum(1 for row in rows for n in row[1] if not 1 <= n <= len(quotes))
        results: list[SentenceSupport] = []
        for sentence, cites, valid, _clean, claim in rows:
            if not valid:
                results.append(SentenceSupport(sentence, cites, valid, claim))
                continue
            sim, judge = next(measured)
            support = self._combine(sim, judge)
            results.append(
                SentenceSupport(
                    sentence,
                    cites,
                    valid,
                    claim,
                    similarity=sim,
                    judge=judge,
                    support=support,
                    supported=support >= w.supported_threshold,
                )
            )

        cited_numbers = sorted({n for s in results for n in s.valid})
        claims = [s for s in results if s.claim]
        bad_penalty = w.bad_citation * min(bad, w.max_bad_citations)
        if not claims:
            base = w.decline_no_quotes if not quotes else w.decline_with_quotes
            return GroundingDetails(
                score=base - bad_penalty,
                sentences=tuple(results),
                relevance=relevance,
                bad_citations=bad,
                declined=declines,
            )
        support = float(np.mean([s.support for s in claims]))
        uncited = sum(1 for s in claims if not s.valid)
        unbacked = sum(1.0 - s.support for s in claims if s.valid)
        news = new_keywords(question, " ".join(s.text for s in claims))
        cited_words = set().union(*(keywords(quotes[n - 1].text) for n in cited_numbers))
        grounded = len(news & cited_words) / len(news) if news else 0.0
        score = (
            w.grounded_news * grounded
            - (w.no_news if not news else 0.0)
            + w.support * support
            + w.relevance * relevance * support
            - w.uncited * uncited / len(claims)
            - w.unsupported * unbacked / len(claims)
            - bad_penalty
        )
        return GroundingDetails(
            score=float(score),
            sentences=tuple(results),
            support=support,
            relevance=relevance,
            uncited=uncited,
            bad_citations=bad,
        )

    def _combine(self, similarity: float, judge: float | None) -> float:
        w = self.weights
        ramp = (similarity - w.sim_floor) / (w.sim_ceil - w.sim_floor)
        sim_support = float(min(1.0, max(0.0, ramp)))
        if judge is None:
            return sim_support
        return w.judge_share * judge + (1.0 - w.judge_share) * sim_support

    def _vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Each text's embedding, in one batch."""
        unique = list(dict.fromkeys(texts))
        return dict(zip(unique, self._embedder.embed(unique), strict=True))

    def _similarities(
        self, pairs: Sequence[tuple[str, list[Quote]]], vectors: dict[str, np.ndarray]
    ) -> list[float]:
        """For each (statement, cited quotes): the best cosine to a quote's chunk."""
        chunks = {q.text: _chunks(q.text) for _, qs in pairs for q in qs}
        sims: list[float] = []
        for statement, cited in pairs:
            quote_rows = np.stack([vectors[c] for q in cited for c in chunks[q.text]])
            sims.append(float(np.max(quote_rows @ vectors[statement])))
        return sims

    def _judge(self, pairs: Sequence[tuple[str, list[Quote]]]) -> list[float | None]:
        """For each (statement, cited quotes): the judge's P(yes), in one batch (None
        each without a judge)."""
        if self.judge is None or not pairs:
            return [None] * len(pairs)
        chats = [
            [Message("user", JUDGE_PROMPT.format(quote=_judge_quotes(cited), statement=s))]
            for s, cited in pairs
        ]
        return [float(p) for p in self.judge.yes_probability(chats)]

    def _relevance(
        self, question: str, quotes: Sequence[Quote], vectors: dict[str, np.ndarray]
    ) -> float:
        if not quotes or not question.strip():
            return 0.0
        chunks = [_chunks(q.text) for q in quotes]
        best = [max(float(vectors[c] @ vectors[question]) for c in cs) for cs in chunks]
        return float(np.clip(np.mean(best), 0.0, 1.0))


# one answer sentence: as written, the numbers it cites, those that name a quote (sorted,
# unique), its text without citations, and whether it is a claim
_Row = tuple[str, tuple[int, ...], tuple[int, ...], str, bool]
_Parsed = tuple[list[_Row], bool]  # an answer's sentences, and whether it declines


def _texts(pairs: Sequence[tuple[str, list[Quote]]]) -> list[str]:
    """What the similarities of ``pairs`` need embedded: the statements and the chunks
    of the quotes they cite."""
    chunks = {q.text: _chunks(q.text) for _, qs in pairs for q in qs}
    return [s for s, _ in pairs] + [c for cs in chunks.values() for c in cs]


def _chunks(text: str) -> list[str]:
    """What a statement is compared with: the whole quote, its sentences, their clauses.

    A short claim often matches one clause of a long quote better than the whole of it.
    Clauses are the pieces between commas, semicolons and colons, merged up to
    ``CLAUSE_WORDS`` words.
    """
    whole = " ".join(text.split()) or "(empty)"
    sentences = [s for s in split_sentences(text) if len(s.split()) >= 3]
    pieces = sentences if len(sentences) > 1 else []
    for sentence in sentences:
        clauses: list[str] = []
        current = ""
        for part in re.split(r"(?<=[,;:])\s+", sentence):
            current = f"{current} {part}".strip()
            if len(current.split()) >= CLAUSE_WORDS:
                clauses.append(current)
                current = ""
        if current:
            if clauses:
                clauses[-1] = f"{clauses[-1]} {current}"
            else:
                clauses.append(current)
        if len(clauses) > 1:
            pieces += clauses
    return list(dict.fromkeys([whole, *pieces]))


def _judge_quotes(quotes: Sequence[Quote]) -> str:
    return "\n\n".join(q.text[:JUDGE_QUOTE_CHARS] for q in quotes)
