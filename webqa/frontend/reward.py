"""`webqa reward train COMPARISONS.jsonl -o DIR`: train a reward model on comparisons.

The file is read whole first (``webqa.comparisons.read_comparisons``: a bad row is one
InputError naming the file and line, before any training); then the model trains with a
progress bar on stderr (pairs, rate, ETA), and the report ends on stdout: a few lines,
or one JSON object with ``--json``. The folder written is what ``--reward-model DIR``
loads: a linear head over features (``--architecture features``, the default:
``webqa.models.feature_reward``) or a fine-tuned MiniLM cross-encoder
(``webqa.models.reward_train``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any

from rich.console import Console

from webqa.comparisons import read_comparisons
from webqa.errors import InputError
from webqa.frontend.bootstrap import add_bootstrap_parser
from webqa.frontend.terminal import add_report_options, printable, progress_bar
from webqa.models.feature_reward import DEFAULT_L2, train_features
from webqa.models.reward_train import DEFAULT_LR, MAX_HOLDOUT, TrainReport, train_reward

ARCHITECTURES = ("features", "cross-encoder")
# the cross-encoder's own options, and their defaults
CROSS_ONLY = ("base", "epochs", "batch_size", "lr", "max_length", "seed")
EPOCHS, BATCH, MAX_LENGTH = 1, 8, 256


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def add_reward_parser(
    sub: Any, model_options: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.ArgumentParser:
    """Register ``reward train`` and ``reward bootstrap`` on ``sub`` (an
    ``add_subparsers()`` object; ``model_options`` adds `ask`'s model options to
    bootstrap's parser); the ``reward`` parser, whose ``reward_command`` is "train" or
    "bootstrap"."""
    reward = sub.add_parser(
        "reward", help="train a reward model on comparisons; make comparisons without people"
    )
    reward_sub = reward.add_subparsers(dest="reward_command", required=True)
    train = reward_sub.add_parser(
        "train",
        help="train a reward model (for --reward-model DIR) on a comparisons file",
        description="Train a reward model on comparisons of two answers (the WebGPT "
        "comparisons schema, one JSON object a line) with the pairwise Bradley-Terry "
        "loss; the folder it writes is what `webqa ask --reward-model DIR` loads.",
    )
    train.add_argument("comparisons", metavar="COMPARISONS.jsonl", help="the comparisons file")
    train.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="the folder to write (new or empty)"
    )
    train.add_argument(
        "--architecture",
        choices=ARCHITECTURES,
        default="features",
        help="features (default): a linear head over the grounding scorer's terms and a "
        "few more, fit in seconds, for hundreds of comparisons; cross-encoder: MiniLM "
        "fine-tuned on (question, quotes, answer), for thousands",
    )
    train.add_argument(
        "--l2",
        type=float,
        default=DEFAULT_L2,
        help=f"features: the weights' L2 penalty (default {DEFAULT_L2:g})",
    )
    train.add_argument(
        "--base",
        metavar="FOLDER",
        help="cross-encoder: a local model folder to start from (default: the packaged "
        "MiniLM encoder, with a fresh scalar head)",
    )
    train.add_argument(
        "--holdout",
        type=_share,
        default=0.1,
        metavar="SHARE",
        help="share of the questions held out to measure pairwise accuracy "
        f"(0 to {MAX_HOLDOUT}; default 0.1)",
    )
    train.add_argument(
        "--epochs", type=int, help=f"cross-encoder: passes over the data (default {EPOCHS})"
    )
    train.add_argument(
        "--batch-size", type=int, help=f"cross-encoder: comparisons per step (default {BATCH})"
    )
    train.add_argument(
        "--lr", type=float, help=f"cross-encoder: peak learning rate (default {DEFAULT_LR:g})"
    )
    train.add_argument(
        "--max-length",
        type=int,
        help=f"cross-encoder: tokens of quotes and answer read (default {MAX_LENGTH}; "
        "longer quotes are cut)",
    )
    train.add_argument(
        "--seed",
        type=int,
        help="cross-encoder: the fresh head and the order of the pairs (default 0)",
    )
    add_report_options(train)
    bootstrap = add_bootstrap_parser(reward_sub)
    if model_options is not None:
        model_options(bootstrap)
    return reward


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= MAX_HOLDOUT):
        raise argparse.ArgumentTypeError(f"expected a share from 0 to {MAX_HOLDOUT}, not {text!r}")
    return value


def run_reward(
    args: argparse.Namespace, out: Console | None = None, err: Console | None = None
) -> int:
    """Run ``reward train`` as ``args`` say; 0 once the folder is written."""
    out = out or Console(highlight=False, soft_wrap=True)
    err = err or Console(stderr=True, highlight=False, soft_wrap=True)
    if getattr(args, "reward_command", "train") != "train":
        raise InputError(f"unknown reward command {args.reward_command!r}")
    features = args.architecture == "features"
    if features:
        given = [
            f"--{name.replace('_', '-')}"
            for name in CROSS_ONLY
            if getattr(args, name, None) is not None
        ]
        if given:
            raise InputError(
                f"{', '.join(given)}: only for --architecture cross-encoder "
                "(the features architecture takes --l2 and --holdout)"
            )
    comparisons = read_comparisons(args.comparisons)
    if not comparisons:
        raise InputError(f"{args.comparisons}: no comparisons in it")
    show = getattr(args, "progress", None)
    unit = "questions" if features else "pairs"  # the features are read a question at a time
    with progress_bar("training", unit, err, show) as bar:
        task = bar.add_task("training", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = (
            train_features(
                comparisons, args.output, holdout=args.holdout, l2=args.l2, progress=progress
            )
            if features
            else train_reward(
                comparisons,
                args.output,
                base=args.base,
                holdout=args.holdout,
                epochs=_or(args.epochs, EPOCHS),
                batch_size=_or(args.batch_size, BATCH),
                lr=_or(args.lr, DEFAULT_LR),
                max_length=_or(args.max_length, MAX_LENGTH),
                seed=_or(args.seed, 0),
                progress=progress,
            )
        )
    if getattr(args, "json", False):
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for line in summary(report):
            out.print(line, markup=False)
    return 0


def summary(report: TrainReport) -> list[str]:
    """The report in a few lines, as a person reads it."""

    def accuracy(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    skipped = (
        f", {report.skipped_identical} skipped (both answers the same text)"
        if report.skipped_identical
        else ""
    )
    lines = [
        f"{report.comparisons} comparisons: {report.train_pairs} pairs trained on "
        f"({report.train_questions} questions), {report.heldout_pairs} held out "
        f"({report.heldout_questions} questions), {report.ties} ties{skipped}",
        f"trained {report.epochs} epoch(s), {report.steps} steps in {report.seconds:.1f} s "
        f"({report.pairs_per_second:.2f} pairs/s); train loss "
        f"{report.train_loss_start:.3f} -> {report.train_loss:.3f}",
    ]
    start = "untrained"
    if report.base.startswith("features"):
        start = "the grounding scorer"
        lines[1] = (
            f"fit in {report.seconds:.2f} s; train loss {report.train_loss_start:.3f} -> "
            f"{report.train_loss:.3f}"
        )
    if report.heldout_accuracy is None:
        lines.append(f"held-out accuracy {report.heldout_note}")
    else:
        lines.append(
            f"held-out accuracy {accuracy(report.heldout_accuracy_start)} {start} -> "
            f"{accuracy(report.heldout_accuracy)} on {report.heldout_scored} non-tie pairs "
            f"(loss {report.heldout_loss_start:.3f} -> {report.heldout_loss:.3f})"
        )
    lines.append(f"saved {printable(report.out_dir)} (use: webqa ask --reward-model DIR)")
    return lines
