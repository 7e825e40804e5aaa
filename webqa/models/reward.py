"""Reward models: score an answer given its question and the quotes it may cite.

- ``GroundingScorer`` (the embedded default): is each sentence backed by the quotes it
  cites? MiniLM similarity, plus a policy's yes/no judgement when one is given.
- ``HFRewardModel``: any local Hugging Face sequence-classification model with one
  output (for example OpenAssistant's DeBERTa reward models).
- ``load_reward_model(spec)`` picks one.

``split_sentences``, ``find_citations`` and ``remove_citations`` are the small text tools
the scorer is built on; answer post-processing reuses them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from webqa.errors import ModelError
from webqa.models.base import Message, Policy, RewardModel
from webqa.text import (  # noqa: F401  (re-exported: the scorer's text tools)
    CITATION_RE,
    find_citations,
    is_decline,
    keywords,
    new_keywords,
    remove_citations,
    split_sentences,
)
from webqa.values import Quote

# -- the grounding scorer -----------------------------------------------------------

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

    def score(self, question: str, quotes: Sequence[Quote], answer: str) -> float:
        return self.details(question, quotes, answer).score

    def supported(self, sentence: str, quotes: Sequence[Quote]) -> bool:
        """Whether ``quotes`` (all taken as cited) support ``sentence``."""
        if not quotes or not remove_citations(sentence):
            return False
        sims, judged = self._support([(remove_citations(sentence), list(quotes))])
        return self._combine(sims[0], judged[0]) >= self.weights.supported_threshold

    def details(self, question: str, quotes: Sequence[Quote], answer: str) -> GroundingDetails:
        w = self.weights
        sentences = split_sentences(answer)
        if not sentences:
            return GroundingDetails(score=-w.empty, empty=True)

        rows: list[tuple[str, tuple[int, ...], tuple[int, ...], str, bool]] = []
        bad = 0
        declines = False
        for sentence in sentences:
            cites = tuple(find_citations(sentence))
            bad += sum(1 for n in cites if not 1 <= n <= len(quotes))
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

        cited = [i for i, row in enumerate(rows) if row[2]]
        sims, judged = self._support(
            [(rows[i][3], [quotes[n - 1] for n in rows[i][2]]) for i in cited]
        )
        measured = dict(zip(cited, zip(sims, judged, strict=True), strict=True))
        results: list[SentenceSupport] = []
        for i, (sentence, cites, valid, _clean, claim) in enumerate(rows):
            if i not in measured:
                results.append(SentenceSupport(sentence, cites, valid, claim))
                continue
            sim, judge = measured[i]
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
        considered = [quotes[n - 1] for n in cited_numbers] or list(quotes)
        relevance = self._relevance(question, considered)
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

    # -- internals ----------------------------------------------------------------

    def _combine(self, similarity: float, judge: float | None) -> float:
        w = self.weights
        ramp = (similarity - w.sim_floor) / (w.sim_ceil - w.sim_floor)
        sim_support = float(min(1.0, max(0.0, ramp)))
        if judge is None:
            return sim_support
        return w.judge_share * judge + (1.0 - w.judge_share) * sim_support

    def _support(
        self, pairs: Sequence[tuple[str, list[Quote]]]
    ) -> tuple[list[float], list[float | None]]:
        """For each (statement, cited quotes): best cosine, and the judge's P(yes)."""
        if not pairs:
            return [], []
        chunks = {q.text: _chunks(q.text) for _, qs in pairs for q in qs}
        texts = list(
            dict.fromkeys([s for s, _ in pairs] + [c for cs in chunks.values() for c in cs])
        )
        vectors = dict(zip(texts, self._embedder.embed(texts), strict=True))
        sims: list[float] = []
        for statement, cited in pairs:
            quote_rows = np.stack([vectors[c] for q in cited for c in chunks[q.text]])
            sims.append(float(np.max(quote_rows @ vectors[statement])))
        if self.judge is None:
            return sims, [None] * len(pairs)
        chats = [
            [Message("user", JUDGE_PROMPT.format(quote=_judge_quotes(cited), statement=s))]
            for s, cited in pairs
        ]
        judged: list[float | None] = [float(p) for p in self.judge.yes_probability(chats)]
        return sims, judged

    def _relevance(self, question: str, quotes: Sequence[Quote]) -> float:
        if not quotes or not question.strip():
            return 0.0
        chunks = [_chunks(q.text) for q in quotes]
        texts = list(dict.fromkeys([question] + [c for cs in chunks for c in cs]))
        vectors = dict(zip(texts, self._embedder.embed(texts), strict=True))
        best = [max(float(vectors[c] @ vectors[question]) for c in cs) for cs in chunks]
        return float(np.clip(np.mean(best), 0.0, 1.0))


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


# -- Hugging Face sequence-classification reward models -----------------------------


def format_context(question: str, quotes: Sequence[Quote]) -> str:
    """The first segment an ``HFRewardModel`` reads: the question, then the numbered quotes.

    Question: <question>

    [1] <title> (<domain>): <text>
    [2] ...
    """
    lines = [f"Question: {question}", ""]
    lines += [f"[{n}] {q.title} ({q.domain}): {q.text}" for n, q in enumerate(quotes, 1)]
    return "\n".join(lines).rstrip()


class HFRewardModel:
    """A local sequence-classification model with one output; the score is that logit.

    Input pair: ``format_context(question, quotes)`` as the first segment, the answer as
    the second (truncated longest-first to ``max_length`` tokens, so long quotes give way
    before the answer does). Loaded on first use from a folder or the local Hugging Face
    cache; nothing is downloaded.
    """

    def __init__(self, id_or_dir: str | Path, *, max_length: int = 512) -> None:
        self.source = str(id_or_dir)
        self.name = f"hf:{self.source}"
        self.max_length = max_length
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                from transformers import (
                    AutoConfig,
                    AutoModelForSequenceClassification,
                    AutoTokenizer,
                )

                from webqa.models.embed import quiet_transformers

                try:
                    config = AutoConfig.from_pretrained(self.source, local_files_only=True)
                except (OSError, ValueError) as exc:
                    raise ModelError(
                        f"reward model {self.source!r} not found locally "
                        f"(a folder or a model in the Hugging Face cache): {_first_line(exc)}"
                    ) from None
                if getattr(config, "num_labels", None) != 1:
                    raise ModelError(
                        f"reward model {self.source!r} has {config.num_labels} outputs; "
                        "a reward model needs a scalar head (num_labels=1)"
                    )
                import torch

                from webqa.models.hardware import machine_float_dtype

                # bf16 only where this CPU multiplies it natively, else float32
                dtype = machine_float_dtype()
                try:
                    with quiet_transformers():
                        tokenizer = AutoTokenizer.from_pretrained(
                            self.source, local_files_only=True
                        )
                        model = AutoModelForSequenceClassification.from_pretrained(
                            self.source, dtype=getattr(torch, dtype), local_files_only=True
                        )
                except (OSError, ValueError) as exc:
                    raise ModelError(
                        f"cannot load reward model {self.source!r}: {_first_line(exc)}"
                    ) from None
                model.eval()
                self._tokenizer, self._model = tokenizer, model
            return self._tokenizer, self._model

    def score(self, question: str, quotes: Sequence[Quote], answer: str) -> float:
        import torch

        tokenizer, model = self._load()
        encoded = tokenizer(
            format_context(question, quotes),
            answer,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = model(**encoded).logits
        return float(logits.reshape(-1)[0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- choosing one -------------------------------------------------------------------


def load_reward_model(
    spec: str = "grounding", *, policy: Policy | None = None, embedder: Any = None
) -> RewardModel:
    """``"grounding"`` (default; ``policy``, when given, is its judge) or a local
    Hugging Face model folder or id for ``HFRewardModel``."""
    if spec in ("", "grounding"):
        return GroundingScorer(embedder, judge=policy)
    return HFRewardModel(spec)
