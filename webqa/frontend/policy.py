"""`webqa policy demos|train`: behaviour cloning from demonstrations.

``policy demos QUESTIONS.jsonl -o DEMOS.jsonl`` runs the scripted expert
(``webqa.expert``) over a questions file whose answers and evidence are known, on the
embedded corpus (or the web it is given), and writes its demonstrations in the format
``webqa browse`` saves. ``policy train DEMOS.jsonl -o DIR`` turns demonstrations (the
expert's, or people's) into training examples, read whole first (a bad one is one
InputError naming the file and line, before any training), then fine-tunes the base
(``webqa.models.policy_train``) with a progress bar on stderr (examples, rate, ETA).
Either ends with its report on stdout: a few lines, or one JSON object with ``--json``.
The folder ``train`` writes is what ``webqa ask --model DIR`` loads.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from rich.console import Console

from webqa.errors import InputError
from webqa.expert import (
    ExpertReport,
    read_demonstrations,
    read_rows,
    run_expert,
    training_examples,
    write_demonstrations,
)
from webqa.frontend.terminal import add_report_options, printable, progress_bar
from webqa.models.policy_train import (
    DEFAULT_BASE,
    DEFAULT_LORA_LR,
    DEFAULT_LR,
    DEFAULT_MAX_LENGTH,
    LORA_RANK,
    PolicyTrainReport,
    train_policy,
)
from webqa.shortlist import PassageRanker
from webqa.web.base import Web


def add_policy_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``policy train`` and ``policy demos`` on ``sub`` (an
    ``add_subparsers()`` object); the ``policy`` parser, whose ``policy_command`` is
    "train" or "demos"."""
    policy = sub.add_parser(
        "policy", help="train a policy on demonstrations (behaviour cloning); make them"
    )
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    train = policy_sub.add_parser(
        "train",
        help="fine-tune a model on demonstrations (for webqa ask --model DIR)",
        description="Fine-tune a model on demonstrations (as `webqa browse` and `webqa "
        "policy demos` save them): each browsing step's observation -> its command, and "
        "the quotes -> the answer, exactly as the policy sees them; loss on the replies "
        "only. The folder it writes is what `webqa ask --model DIR` loads.",
    )
    train.add_argument("demos", metavar="DEMOS.jsonl", help="the demonstrations file")
    train.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="the folder to write (new or empty)"
    )
    train.add_argument(
        "--base",
        default=DEFAULT_BASE,
        help=f"the model to start from: a preset or a model folder (default {DEFAULT_BASE})",
    )
    train.add_argument(
        "--lora",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train LoRA adapters (merged before saving) instead of all weights "
        "(default: LoRA for a base over 300M parameters)",
    )
    train.add_argument("--epochs", type=int, default=1, help="passes over the data (default 1)")
    train.add_argument(
        "--lr",
        type=float,
        default=None,
        help=f"peak learning rate (default {DEFAULT_LR:g}; with LoRA {DEFAULT_LORA_LR:g})",
    )
    train.add_argument(
        "--max-length",
        type=int,
        default=DEFAULT_MAX_LENGTH,
        help=f"tokens of prompt and reply (default {DEFAULT_MAX_LENGTH}; a longer example "
        "is left out)",
    )
    train.add_argument(
        "--batch-size", type=int, default=8, help="examples per optimiser step (default 8)"
    )
    train.add_argument("--seed", type=int, default=0)
    add_report_options(train)
    demos = policy_sub.add_parser(
        "demos",
        help="make demonstrations with a scripted expert from questions with known answers",
        description="Run a scripted expert over a questions file whose answers and "
        "evidence are known (benchmarks/questions/*.jsonl): it browses as the guided "
        "procedure lets a small model (search the question, open the evidence's page, "
        "quote the evidence, answer citing it) and writes each demonstration it could "
        "make; the rest are counted by why they were skipped.",
    )
    demos.add_argument("questions", metavar="QUESTIONS.jsonl", help="the questions file")
    demos.add_argument(
        "-o", "--output", required=True, metavar="DEMOS.jsonl", help="the file to write"
    )
    demos.add_argument("--limit", type=int, default=None, help="only the first N rows")
    add_report_options(demos)
    return policy


def run_policy(
    args: argparse.Namespace,
    out: Console | None = None,
    err: Console | None = None,
    *,
    open_web: Callable[[], Web] | None = None,
    ranker: Callable[[], PassageRanker] | None = None,
) -> int:
    """Run ``policy train`` or ``policy demos`` as ``args`` say; 0 once written.

    ``policy demos`` browses the web ``open_web()`` gives (default: the embedded
    corpus, ``webqa.api.open_web``) with guided browsing's shortlist ranked by
    ``ranker()`` (default: MiniLM, ``webqa.api.passage_ranker``)."""
    out = out or Console(highlight=False, soft_wrap=True)
    err = err or Console(stderr=True, highlight=False, soft_wrap=True)
    command = getattr(args, "policy_command", None)
    if command == "train":
        return _train(args, out, err)
    if command == "demos":
        return _demos(args, out, err, open_web, ranker)
    raise InputError(f"unknown policy command {command!r}")


def _train(args: argparse.Namespace, out: Console, err: Console) -> int:
    found = training_examples(read_demonstrations(args.demos), str(args.demos))
    if not found.examples:
        raise InputError(
            f"{args.demos}: nothing to train on ({found.demonstrations} demonstration(s), "
            f"{found.unanswered} without an answer)"
        )
    with progress_bar("training", "examples", err, getattr(args, "progress", None)) as bar:
        task = bar.add_task("training", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = train_policy(
            found.examples,
            args.output,
            base=args.base,
            lora=args.lora,
            epochs=args.epochs,
            lr=args.lr,
            max_length=args.max_length,
            batch_size=getattr(args, "batch_size", 8),
            seed=args.seed,
            progress=progress,
            data=found.summary(),
        )
    if getattr(args, "json", False):
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for line in train_summary(report):
            out.print(line, markup=False)
    return 0


def train_summary(report: PolicyTrainReport) -> list[str]:
    """The training report in a few lines, as a person reads it."""
    data = report.data
    left_out = []
    for key, what in (
        ("unanswered", "without an answer"),
        ("decided_steps", "steps the procedure takes itself"),
        ("invalid_steps", "refused steps"),
    ):
        if data.get(key):
            left_out.append(f"{data[key]} {what}")
    if report.too_long:
        left_out.append(f"{report.too_long} examples over {report.max_length} tokens")
    how = (
        f"LoRA (rank {LORA_RANK}) on {report.trainable_parameters:,} of "
        f"{report.parameters:,} parameters"
        if report.lora
        else f"all {report.parameters:,} parameters"
    )
    lines = [
        f"{data.get('demonstrations', '?')} demonstrations: {report.pairs} examples trained "
        f"on ({report.browse_pairs} browsing steps, {report.answer_pairs} answers)"
        + (f"; left out: {', '.join(left_out)}" if left_out else ""),
        f"{printable(report.base)}, {how}: {report.epochs} epoch(s), {report.steps} steps in "
        f"{report.seconds:.1f} s ({report.tokens:,} tokens, {report.tokens_per_second:.0f} "
        f"tokens/s); loss {report.loss_start:.3f} -> {report.loss_end:.3f}",
        f"saved {printable(report.out_dir)} (use: webqa ask --model DIR)",
    ]
    return lines


def _demos(
    args: argparse.Namespace,
    out: Console,
    err: Console,
    open_web: Callable[[], Web] | None,
    ranker: Callable[[], PassageRanker] | None,
) -> int:
    from webqa import api
    from webqa.procedure import Guided

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, not {args.limit}")
    rows = read_rows(args.questions)
    if not rows:
        raise InputError(f"{args.questions}: no questions in it")
    total = len(rows) if args.limit is None else min(len(rows), args.limit)
    web = (open_web or api.open_web)()
    procedure = Guided((ranker or api.passage_ranker)())
    with progress_bar("demonstrating", "rows", err, getattr(args, "progress", None)) as bar:
        task = bar.add_task("demonstrating", total=total)

        def progress(done: int, report: ExpertReport) -> None:
            bar.update(task, completed=done)

        made, report = run_expert(rows, web, procedure, limit=args.limit, progress=progress)
    path = write_demonstrations(made, args.output)
    if getattr(args, "json", False):
        print(json.dumps({**report.to_dict(), "output": str(path)}, ensure_ascii=False, indent=2))
    else:
        for line in demos_summary(report, str(path)):
            out.print(line, markup=False)
    return 0


def demos_summary(report: ExpertReport, path: str) -> list[str]:
    """The expert's report in a few lines, as a person reads it."""
    lines = [
        f"{report.rows} rows: {report.made} demonstrations ({report.admitted_quotes} of their "
        f"quotes admitted by the guided grammar) in {report.seconds:.1f} s, "
        f"{report.rows - report.made} skipped"
    ]
    lines += [f"  {count} {reason}" for reason, count in report.skipped.most_common()]
    lines.append(f"saved {printable(path)} (train: webqa policy train {printable(path)} -o DIR)")
    return lines
