"""A reward model that learns from few comparisons: a scalar head over features.

WebGPT's reward model was its policy with a scalar head; webqa's cross-encoder
(``webqa.models.reward_train``) is the same idea on a small encoder. Both need thousands
of comparisons: on the 132 decided comparisons a bootstrap run gave (100 questions,
41 minutes here), the fine-tuned MiniLM cross-encoder ranked held-out pairs at 46%,
chance. This model is the other choice the issue names: a linear head over features
an episode already has, which a few hundred comparisons can fit.

The features (``FEATURES``) read only the question, the answer and the quotes, as
every reward model does, so comparisons from people, from a bootstrap run and from a
log all train it:

- the grounding scorer's terms (``webqa.models.grounding``): how well the cited
  quotes back each sentence, the question-quote similarity, uncited claims;
- whether the answer declines, with or without quotes;
- what the quotes cover of the question: its keywords, and its names (a quote about
  Blue Nile does not answer a question about the Nile);
- what the answer adds: the share of its new words the quotes say, and how near, in
  a quote, they stand to the question's words ("highest point: Tena Kourou" for "the
  highest point in Burkina Faso", not "capital ... Ouagadougou");
- whether a question that asks for a number or a date got one.

Training (``train_features``) fits the weights with the pairwise Bradley-Terry loss
(ties half each way, as the cross-encoder) and an L2 penalty, on standardized features,
by L-BFGS: a second or two. The folder holds only ``webqa-reward.json``: its report,
settings, the features' means and scales, and the weights.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from webqa.comparisons import Comparison, pairs
from webqa.errors import InputError, ModelError
from webqa.models.base import Scorable
from webqa.models.grounding import GroundingDetails, GroundingScorer
from webqa.models.reward_train import (
    MAX_HOLDOUT,
    OUTPUT,
    Eval,
    Progress,
    TrainReport,
    split,
    split_fields,
    with_domains,
)
from webqa.models.trained import REWARD_RECORD
from webqa.text import (
    is_decline,
    keywords,
    meets,
    names,
    new_keywords,
    relation,
    remove_citations,
    split_sentences,
    stem,
    unnamed,
)
from webqa.values import Quote

DEFAULT_L2 = 0.1  # on the bootstrap comparisons, 0.01-1 moved held-out accuracy by a few points
KIND = "features"  # the record's "kind": what `--reward-model DIR` loads it as
BASE = "features: the grounding scorer's terms and more"  # a report's "base"
FEATURES = (
    "declined",
    "declined_without_quotes",
    "grounding",
    "support",
    "relevance",
    "uncited",
    "question_covered",
    "names_covered",
    "news_quoted",
    "news_near_question",
    "no_news",
    "number_asked_given",
    "number_asked_missing",
    "answer_words",
    "declined_question_covered",
    "declined_names_covered",
    "relation_covered",
    "declined_relation_covered",
)
NEAR_WORDS = 8  # answer words this many words from a question word in a quote count as near
_WORD = re.compile(r"\w+")
_DIGIT = re.compile(r"\d")
# questions that ask for a quantity, a date or a year
_NUMBER_ASKED = re.compile(
    r"\b(?:how (?:many|much|long|tall|high|deep|large|big|old|far|wide)|when|what year|"
    r"which year|in what year|what date|which date|on what date|what percentage|"
    r"what share|population|area)\b",
    re.IGNORECASE,
)


def features(
    question: str, quotes: Sequence[Quote], answer: str, g: GroundingDetails
) -> list[float]:
    """The ``FEATURES`` of one answer (``g``: its grounding details), in that order."""
    declined = g.declined or (
        bool(answer.strip()) and all(is_decline(s) for s in split_sentences(answer)[:1])
    )
    claims = [s for s in g.sentences if s.claim]
    text = " ".join(f"{q.title} {q.text}" for q in quotes)
    said = keywords(text)
    asked = keywords(question)
    covered = len(meets(asked, said)) / len(asked) if asked else 0.0
    names_missing = unnamed(question, quotes) if quotes else []
    named = names(question)
    names_covered = 1.0 - len(names_missing) / len(named) if named else 1.0
    # what the question asks of what it names ("highest point", "hospital", "born")
    asks = relation(question)
    related = len(meets(asks, said)) / len(asks) if asks else 0.0
    news = new_keywords(question, answer)
    quoted_news = meets(news, said)
    news_quoted = len(quoted_news) / len(news) if news else 0.0
    wants_number = bool(_NUMBER_ASKED.search(question))
    has_number = bool(_DIGIT.search(remove_citations(answer)))
    words = len(_WORD.findall(remove_citations(answer)))
    return [
        float(declined),
        float(declined and not quotes),
        0.0 if declined else g.score,
        0.0 if declined else g.support,
        0.0 if declined else g.relevance,
        g.uncited / len(claims) if claims else 0.0,
        0.0 if declined else covered,
        0.0 if declined else names_covered,
        0.0 if declined else news_quoted,
        0.0 if declined else _nearness(asks, quoted_news, quotes),
        float(not declined and not news),
        float(not declined and wants_number and has_number),
        float(not declined and wants_number and not has_number),
        0.0 if declined else math.log1p(words),
        # a decline is right where the quotes miss what the question asks: these carry
        # the quotes' cover into a decline's reward (a linear head cannot cross them)
        covered if declined else 0.0,
        names_covered if declined else 0.0,
        0.0 if declined else related,
        related if declined else 0.0,
    ]


def _nearness(asked: set[str], news: set[str], quotes: Sequence[Quote]) -> float:
    """How near, in the quotes, the answer's quoted new words stand to the question's
    words: 1 / (1 + d / NEAR_WORDS) for the smallest distance d (in words) between an
    occurrence of one and of the other in one quote; 0 where none share a quote."""
    if not news or not asked:
        return 0.0
    best: int | None = None
    for q in quotes:
        stems = [stem(w.lower()) for w in _WORD.findall(q.text)]
        ask_at = [i for i, s in enumerate(stems) if s in asked and s not in news]
        new_at = [i for i, s in enumerate(stems) if s in news]
        if not ask_at or not new_at:
            continue
        d = min(abs(a - b) for a in ask_at for b in new_at)
        best = d if best is None else min(best, d)
    return 0.0 if best is None else 1.0 / (1.0 + best / NEAR_WORDS)


def feature_matrix(
    scorer: GroundingScorer, question: str, answers: Sequence[Scorable]
) -> np.ndarray:
    """The features of each of ``answers`` to ``question``: one row each."""
    details = scorer.details_many(question, answers)
    rows = [
        features(question, quotes, answer, g)
        for (quotes, answer), g in zip(answers, details, strict=True)
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(answers), len(FEATURES))


@dataclass(frozen=True)
class Head:
    """The learned part: standardize (``mean``, ``scale``), then ``weights`` . x + 0."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "weights": [round(float(v), 6) for v in self.weights],
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Head:
        try:
            names = data["features"]
            arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "weights")]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where}: not a feature reward model's head ({exc})") from None
        if list(names) != list(FEATURES):
            raise ModelError(
                f"{where}: trained on features {names}, this webqa computes {list(FEATURES)}; "
                "train it again"
            )
        if any(a.shape != (len(FEATURES),) or not np.all(np.isfinite(a)) for a in arrays):
            raise ModelError(f"{where}: the head's numbers are not {len(FEATURES)} finite values")
        return cls(*arrays)


def fit(
    first: np.ndarray, second: np.ndarray, p: np.ndarray, *, l2: float = 0.1
) -> tuple[Head, float]:
    """Weights minimizing the mean Bradley-Terry loss of r(first) - r(second) given
    p = P(first is better), plus ``l2`` x |w|^2 / 2, on features standardized over
    both sides; the head and its final mean loss."""
    import torch

    both = np.concatenate([first, second])
    mean = both.mean(axis=0)
    scale = both.std(axis=0)
    scale[scale < 1e-6] = 1.0
    a = torch.tensor((first - mean) / scale)
    b = torch.tensor((second - mean) / scale)
    target = torch.tensor(p)
    w = torch.zeros(len(FEATURES), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def loss_of() -> Any:
        margin = (a - b) @ w
        pairwise = -(target * torch.nn.functional.logsigmoid(margin))
        pairwise = pairwise - (1 - target) * torch.nn.functional.logsigmoid(-margin)
        return pairwise.mean() + l2 * (w * w).sum() / 2

    def closure() -> Any:
        optimizer.zero_grad()
        loss = loss_of()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        final = float(loss_of())
    return Head(mean, scale, w.detach().numpy().copy()), final


class FeatureRewardModel:
    """A ``webqa reward train --architecture features`` folder, as a reward model."""

    def __init__(self, folder: str | Path, record: dict[str, Any]) -> None:
        self.source = str(folder)
        self.name = f"features:{self.source}"
        self.head = Head.from_json(record.get("head"), f"{self.source}")
        self._scorer: GroundingScorer | None = None
        self._lock = threading.Lock()

    def _grounding(self) -> GroundingScorer:
        with self._lock:
            if self._scorer is None:
                self._scorer = GroundingScorer()  # no judge: the features were fit without one
            return self._scorer

    def score(self, question: str, answers: Sequence[Scorable]) -> list[float]:
        if not answers:
            return []
        x = feature_matrix(self._grounding(), question, answers)
        return [float(v) for v in self.head(x)]


def check_l2(l2: float) -> None:
    if not (math.isfinite(l2) and l2 >= 0):
        raise InputError(f"--l2 must be a number, 0 or more, not {l2}")


def elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 3)


@dataclass(frozen=True)
class _Item:
    """One comparison as the features read it: two (quotes, answer) and p, the
    probability that the first is the better."""

    question: str
    first: Scorable
    second: Scorable
    p: float

    @property
    def tie(self) -> bool:
        return self.p == 0.5


def train_features(
    comparisons: Sequence[Comparison],
    out_dir: str | Path,
    *,
    holdout: float = 0.1,
    l2: float = DEFAULT_L2,
    progress: Progress | None = None,
) -> TrainReport:
    """Fit a feature reward model on ``comparisons`` and save it in ``out_dir`` (see the
    module's docstring). The report's "untrained" accuracy and loss are the grounding
    scorer's (the reward model the features start from: the default one), its loss at
    its own scale. ``progress(done, total)`` counts the questions whose answers have
    been read (the features take ~0.05 s an answer; the fit a second or two).

    The split, the checks on ``out_dir`` and what a bad setting raises are the
    cross-encoder's (``webqa.models.reward_train.train_reward``)."""
    started = time.perf_counter()
    check_l2(l2)
    if not (math.isfinite(holdout) and 0 <= holdout <= MAX_HOLDOUT):
        raise InputError(f"--holdout must be from 0 to {MAX_HOLDOUT}, not {holdout}")
    if not comparisons:
        raise InputError("no comparisons to train on")
    target = Path(out_dir)
    OUTPUT.check(target)
    items: list[_Item] = []
    skipped = 0
    for c, chance in pairs(comparisons):
        one = (tuple(with_domains(c.quotes_0)), c.answer_0.strip())
        other = (tuple(with_domains(c.quotes_1)), c.answer_1.strip())
        if one == other:
            skipped += 1
            continue
        items.append(_Item(c.question, one, other, chance))
    if not items:
        raise InputError(
            f"nothing to train on: all {skipped} comparisons have the same text for both answers"
        )
    train, held, note = split(items, holdout)
    rows = _features_of(items, progress)

    def arrays(xs: Sequence[_Item]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        width = len(FEATURES)
        first = np.asarray([rows[(x.question, x.first)] for x in xs]).reshape(len(xs), width)
        second = np.asarray([rows[(x.question, x.second)] for x in xs]).reshape(len(xs), width)
        return first, second, np.asarray([x.p for x in xs], dtype=np.float64)

    first, second, p = arrays(train)
    held_first, held_second, held_p = arrays(held)
    fit_started = time.perf_counter()
    head, train_loss = fit(first, second, p, l2=l2)
    seconds = time.perf_counter() - fit_started
    grounding = FEATURES.index("grounding")
    before = _evaluate(held_first[:, grounding], held_second[:, grounding], held_p)
    after = _evaluate(head(held_first), head(held_second), held_p)
    report = TrainReport(
        base=BASE,
        out_dir=str(target),
        **split_fields(len(comparisons), skipped, train, held, note, before, after),
        epochs=1,
        steps=1,
        train_loss_start=round(math.log(2), 4),  # every weight 0: every margin 0
        train_loss=round(train_loss, 4),
        loss_curve=[round(math.log(2), 4), round(train_loss, 4)],
        seconds=round(seconds, 3),
        pairs_per_second=round(len(train) / seconds, 3) if seconds > 0 else 0.0,
        total_seconds=elapsed(started),
    )
    record = {
        "kind": KIND,
        "report": report.to_dict(),
        "settings": {
            "holdout": holdout,
            "l2": l2,
            "loss": "bradley-terry, p = 0.5 + 0.5 * score_0",
        },
        "head": head.to_json(),
    }
    OUTPUT.save(None, None, target, record)
    return replace(report, total_seconds=elapsed(started))


def _features_of(
    items: Sequence[_Item], progress: Progress | None
) -> dict[tuple[str, Scorable], np.ndarray]:
    """Every distinct answer's features, the answers of one question read together."""
    by_question: dict[str, list[Scorable]] = {}
    for item in items:
        answers = by_question.setdefault(item.question, [])
        for x in (item.first, item.second):
            if x not in answers:
                answers.append(x)
    scorer = GroundingScorer()
    out: dict[tuple[str, Scorable], np.ndarray] = {}
    for done, (question, answers) in enumerate(by_question.items(), 1):
        matrix = feature_matrix(scorer, question, answers)
        out.update({(question, x): row for x, row in zip(answers, matrix, strict=True)})
        if progress is not None:
            progress(done, len(by_question))
    return out


def _evaluate(first: np.ndarray, second: np.ndarray, p: np.ndarray) -> Eval:
    """Pairwise accuracy over the non-tie pairs (strictly above) and the mean loss."""
    if len(p) == 0:
        return Eval(None, None, 0)
    margin = first - second
    loss = -(p * _logsigmoid(margin) + (1 - p) * _logsigmoid(-margin)).mean()
    decided = p != 0.5
    scored = int(decided.sum())
    right = ((margin > 0) == (p > 0.5)) & (margin != 0) & decided
    accuracy = round(float(right.sum()) / scored, 4) if scored else None
    return Eval(accuracy, round(float(loss), 4), scored)


def _logsigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


PACKAGED = "bootstrap"  # `--reward-model bootstrap`: the head that ships with webqa
PACKAGED_FILE = Path(__file__).with_name("bootstrap_reward.json")


def packaged() -> FeatureRewardModel:
    """The feature reward model that ships with webqa (``PACKAGED_FILE``): fit by `webqa
    reward train` on the comparisons `webqa reward bootstrap` made from
    benchmarks/questions/corpus_train.jsonl with qwen-0.5b (its record says how many and
    how well it ranked held-out pairs)."""
    import json

    try:
        record = json.loads(PACKAGED_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"the packaged reward model {PACKAGED_FILE}: {exc}") from None
    return FeatureRewardModel(PACKAGED, record)


def load_features(spec: str | Path) -> FeatureRewardModel | None:
    """The feature reward model in folder ``spec``, or None where ``spec`` is not a
    folder `webqa reward train --architecture features` wrote."""
    import json

    record_file = Path(spec) / REWARD_RECORD
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except OSError:
        return None
    except ValueError as exc:
        raise ModelError(f"{record_file}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("kind") != KIND:
        return None
    return FeatureRewardModel(spec, record)
