"""`webqa batch`: answer a question file, K at a time, resumably, into a JSONL file.

Bad lines are reported (file and line) on stderr and written as error records before any
question runs. Questions that already have a record are skipped. Each finished question
is appended as it finishes; a progress bar (rate, ETA) runs on stderr, and a summary line
ends the run on stdout. Text that came from the question file or the web is shown with
its control characters escaped, so a line cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from webqa import api
from webqa.answerfile import AnswerFile, answer_record, bad_line_record, default_output
from webqa.errors import InputError
from webqa.frontend.ask import decoding_option
from webqa.frontend.terminal import printable, shown
from webqa.questionfile import parse_shard, read_questions
from webqa.runner import Answered
from webqa.values import Question
from webqa.web.base import Web


class RateColumn(ProgressColumn):
    """Questions per minute so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if not elapsed or not task.completed:
            return Text("-- q/min", style="progress.data.speed")
        return Text(f"{task.completed / elapsed * 60:.1f} q/min", style="progress.data.speed")


def run_batch(
    args: argparse.Namespace,
    open_web: Callable[[], Web],
    out: Console,
    err: Console,
    *,
    backends: api.Backends | None = None,
) -> int:
    """Answer the question file ``args`` names; its parts come from ``backends``
    (default: the real loaders)."""
    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.n < 1:
        raise InputError(f"-n must be at least 1, got {args.n}")
    shard = parse_shard(args.shard) if args.shard else None
    source = Path(args.questions)
    everything = read_questions(source)
    mine = everything.shard(shard)
    output = Path(args.output) if args.output else default_output(source, shard)
    started = time.perf_counter()
    with AnswerFile.open(output, everything, shard=shard, retry_failed=args.retry_failed) as f:
        for note in f.repaired:
            err.print(f"[yellow]{shown(output)}: {shown(note)}[/yellow]")
        for bad in mine.bad:
            err.print(f"[red]{shown(source)} line {bad.line}: {shown(bad.message)}[/red]")
            if not f.has_bad_line(bad):
                f.write(bad_line_record(bad))
        todo = [q for q in mine.questions if not f.done(q)]
        skipped = len(mine.questions) - len(todo)
        answered = failed = 0
        if todo:
            results = api.answer_many(
                todo,
                n=args.n,
                concurrency=args.concurrency,
                model=args.model,
                api_base=args.api_base,
                web=open_web(),
                reward_model=args.reward_model,
                temperature=args.temperature,
                max_actions=args.max_actions,
                timeout=args.timeout,
                seed=args.seed,
                batch=str(output.resolve()),
                dtype=getattr(args, "dtype", None),
                backends=backends,
                browsing=getattr(args, "browsing", None) or "auto",
                decoding=decoding_option(args),
            )
            try:
                for done in _with_progress(results, todo, err, args.progress):
                    f.write(answer_record(done))
                    if done.ok:
                        answered += 1
                    else:
                        failed += 1
                        err.print(
                            f"[red]{shown(_where(done.question))}: {shown(done.error or '')}[/red]"
                        )
            finally:
                close = getattr(results, "close", None)
                if close is not None:
                    close()  # an error here (say, the disk is full) stops the workers too
    seconds = time.perf_counter() - started
    out.print(
        f"{answered} answered, {failed} failed, {len(mine.bad)} bad line(s), "
        f"{skipped} skipped (already done) in {_duration(seconds)} -> {printable(str(output))}",
        markup=False,
    )
    return 0


def _with_progress(
    results: Iterator[Answered], todo: list[Question], err: Console, show: bool | None
) -> Iterator[Answered]:
    progress = Progress(
        TextColumn("answering"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=not (err.is_terminal if show is None else show),
    )
    with progress:
        task = progress.add_task("answering", total=len(todo))
        for done in results:
            yield done
            progress.advance(task)


def _where(q: Question) -> str:
    return f"line {q.line} (id {q.id})" if q.line is not None else f"id {q.id}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
