"""`webqa compare`: a person judges two answers to one question, shown side by side,
with a key a judgement: what a reward model learns from (WebGPT's comparisons).

The pairs come from the log's best-of-n runs (two of a run's episodes whose answers
differ, not yet judged, newest first), or from answers sampled on the spot
(``--question``, ``--questions FILE``: ``api.answer`` with n >= 2, so the run is logged
like any other). Which answer shows as A is drawn (seeded by ``--seed``), so a person's
habit of favouring one side cannot become the data; the log records which episode won.
Each judgement is written to the log as it is made, so quitting, Ctrl-C or a crash
loses none. ``compare export FILE`` and ``compare import FILE`` move the judgements as
JSONL in the public WebGPT schema (``webqa.comparisons``).

Keys are read one at a time without Enter where stdin is a terminal (cbreak mode,
restored after every key), else one character at a time from stdin, so that a pipe or a
test can drive it. What is shown came from the web and a model, so it is shown with
control characters escaped (``webqa.frontend.terminal``)."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from webqa import api
from webqa.comparisons import read_comparisons, write_comparisons
from webqa.errors import InputError, WebQAError
from webqa.frontend.ask import decoding_option
from webqa.frontend.terminal import printable, shown
from webqa.questionfile import read_questions
from webqa.store import reader, writer
from webqa.store.db import StoreError
from webqa.values import Quote
from webqa.web.base import Web

NO_RUNS = "no best-of-n runs to compare; run `webqa ask -n 4 ...` or `webqa compare --question ...`"
KEYS = "a: A is better · b: B is better · t: tie · s: skip · n: add a note · q: quit"
EXTRACT_CHARS = 300  # of each quote shown under its answer
SCORES = {"a": 1.0, "b": -1.0, "t": 0.0}  # the score of the answer shown as A, by key
QUIT_KEYS = ("", "q", "\x04")  # q, the end of stdin, Ctrl-D at a terminal


def run_compare(
    args: argparse.Namespace,
    open_web: Callable[[], Web],
    out: Console,
    err: Console,
    *,
    backends: api.Backends | None = None,
) -> int:
    """Judge pairs (from the log, or sampled with ``--question``/``--questions``), or
    export or import the judgements (``args.compare_command``)."""
    action = getattr(args, "compare_command", None)
    if action is not None:
        if args.question is not None or args.questions is not None:
            raise InputError(f"`compare {action}` takes no --question or --questions")
        return _export(args, out) if action == "export" else _import(args, out)
    sampled = args.question is not None or args.questions is not None
    pairs = [] if sampled else reader.pairs_to_judge()
    if not sampled and not pairs:
        if reader.best_of_n_runs() == 0:
            out.print(NO_RUNS, markup=False)
        else:
            out.print(
                "nothing left to compare: every pair of different answers in the log's "
                "best-of-n runs is judged",
                markup=False,
            )
        return 0
    session = Session(Keys(sys.stdin), out, random.Random(args.seed))
    try:
        if sampled:
            _sample_and_judge(args, open_web, session, err, backends)
        else:
            session.judge_all(pairs)
    finally:  # on Ctrl-C too: what was judged is logged already
        session.summary()
    return 0


def _export(args: argparse.Namespace, out: Console) -> int:
    judged = reader.judgements()
    count = write_comparisons(args.path, (j.comparison for j in judged))
    out.print(f"wrote {_count(count)} to {printable(args.path)}", markup=False)
    return 0


def _import(args: argparse.Namespace, out: Console) -> int:
    comparisons = read_comparisons(args.path)  # every row checked before one is stored
    writer.add_comparisons(comparisons, source="import")
    out.print(f"imported {_count(len(comparisons))} from {printable(args.path)}", markup=False)
    return 0


def _count(n: int) -> str:
    return f"{n} comparison" if n == 1 else f"{n} comparisons"


def _sample_and_judge(
    args: argparse.Namespace,
    open_web: Callable[[], Web],
    session: Session,
    err: Console,
    backends: api.Backends | None,
) -> None:
    """Answer each question n >= 2 times (logged as a best-of-n run), then judge that
    run's pairs; with a question file, a question that fails is one line and the next
    goes on."""
    if args.question is not None:
        questions = [api.validate_question(args.question)]
    else:
        source = Path(args.questions)
        found = read_questions(source)
        for bad in found.bad:
            err.print(f"[red]{shown(source)} line {bad.line}: {shown(bad.message)}[/red]")
        questions = [q.text for q in found.questions]
        if not questions:
            raise InputError(f"{source}: no questions to answer")
    api.check_dtype(args.dtype, api_base=args.api_base)  # before any work
    n = max(2, args.n)
    web = open_web()
    for i, question in enumerate(questions, 1):
        where = f"question {i} of {len(questions)} · " if len(questions) > 1 else ""
        since = time.time()
        try:
            with session.out.status(f"{where}sampling {n} answers…", spinner="dots"):
                api.answer(
                    question,
                    n=n,
                    model=args.model,
                    api_base=args.api_base,
                    web=web,
                    reward_model=args.reward_model,
                    temperature=args.temperature,
                    max_actions=args.max_actions,
                    seed=args.seed,
                    dtype=args.dtype,
                    backends=backends,
                    timeout=args.timeout,
                    browsing=args.browsing,
                    decoding=decoding_option(args),
                )
        except WebQAError as failure:
            if args.question is not None:
                raise
            err.print(f"[red]{where}{shown(question)}: {shown(failure)}[/red]")
            continue
        run = reader.latest_run(question, since=since)
        if run is None:  # record_or_warn has said why
            raise StoreError("the sampled answers could not be logged, so not judged either")
        pairs = reader.pairs_to_judge(run_id=run)
        if not pairs:
            session.out.print(
                f"{where}the {n} answers to {shown(question)} are all the same; nothing to judge"
            )
            continue
        if not session.judge_all(pairs, where):
            return


class Keys:
    """Key presses from ``stream``: one at a time, without Enter, where it is a terminal
    (cbreak mode: Ctrl-C still interrupts; the terminal is restored after each key);
    else one character at a time (a pipe, a test). '' at the end of the input."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def key(self) -> str:
        if self.stream is None:
            return ""
        if not self.stream.isatty():
            return self._read(1)
        import termios
        import tty

        fd = self.stream.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            return self._read(1)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def line(self) -> str:
        """One line, typed (and shown) as usual and ended with Enter."""
        if self.stream is None:
            return ""
        try:
            return self.stream.readline()
        except UnicodeDecodeError:
            return ""

    def _read(self, count: int) -> str:
        assert self.stream is not None
        try:
            return self.stream.read(count)
        except UnicodeDecodeError:
            return "\ufffd"  # not a key anything answers to


@dataclass
class Session:
    """One sitting of judging: where keys come from, where pairs are shown, which side
    shows as A (``rng``), and the tally."""

    keys: Keys
    out: Console
    rng: random.Random
    total: int = 0  # pairs given to judge
    judged: int = 0
    skipped: int = 0

    def judge_all(self, pairs: Sequence[reader.Pair], where: str = "") -> bool:
        """Show each pair and log its judgement at once; False if the person quit."""
        self.total += len(pairs)
        for i, pair in enumerate(pairs, 1):
            outcome = self.judge(pair, f"{where}pair {i} of {len(pairs)}")
            if outcome == "quit":
                return False
            if outcome == "judged":
                self.judged += 1
            else:
                self.skipped += 1
        return True

    def judge(self, pair: reader.Pair, where: str) -> str:
        """Show ``pair``, its answers in a drawn order, and read keys until it is judged
        ("judged", logged), skipped ("skipped") or the person quits ("quit")."""
        a_is_0 = self.rng.random() < 0.5
        self.show(pair, a_is_0, where)
        note = ""
        while True:
            key = self.keys.key().lower()
            if key in QUIT_KEYS:
                return "quit"
            if key == "s":
                return "skipped"
            if key in SCORES:
                score = score_0(key, a_is_0)
                writer.add_comparison(
                    pair.judged(score, note=note, source="person"), episodes=pair.episodes
                )
                verdict = {"a": "A is better", "b": "B is better", "t": "a tie"}[key]
                self.out.print(f"[green]logged: {verdict}[/green]")
                return "judged"
            if key == "n":
                self.out.print("note (end it with Enter):")
                note = " ".join(self.keys.line().split())
                self.out.print(
                    f"[dim]note: {shown(note)}; now a, b or t (s skips, dropping it)[/dim]"
                )
            elif key.isprintable() and not key.isspace():
                self.out.print(f"[dim]{KEYS}[/dim]")

    def show(self, pair: reader.Pair, a_is_0: bool, where: str) -> None:
        """The question, then the two answers in columns (A on the left), each with its
        numbered quotes."""
        self.out.print()
        self.out.rule(where)
        self.out.print(f"[bold]Question[/bold] {shown(pair.question)}")
        table = Table(expand=True)
        table.add_column("[bold]A[/bold]", ratio=1, overflow="fold")
        table.add_column("[bold]B[/bold]", ratio=1, overflow="fold")
        order = (0, 1) if a_is_0 else (1, 0)
        table.add_row(*(_side(pair.answers[k], pair.quotes[k]) for k in order))
        self.out.print(table)
        self.out.print(f"[dim]{KEYS}[/dim]")

    def summary(self) -> None:
        """How many pairs were judged, skipped and left (quitting, Ctrl-C) for next time."""
        if not self.total:
            return
        parts = [f"judged {self.judged} of {self.total} pair{'' if self.total == 1 else 's'}"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if left := self.total - self.judged - self.skipped:
            parts.append(f"{left} left for next time")
        self.out.print(", ".join(parts), markup=False)


def score_0(key: str, a_is_0: bool) -> float:
    """The logged ``score_0`` (for the pair's answer 0) from the key pressed about the
    answers as shown: "a" (A is better), "b" (B is better) or "t" (a tie)."""
    score = SCORES[key]
    return (score if a_is_0 else -score) + 0.0  # never -0.0


def _side(answer: str, quotes: Sequence[Quote]) -> str:
    """One column: the answer, then its quotes, numbered as it cites them."""
    lines = [shown(answer)]
    if quotes:
        lines += ["", "[bold]Quotes[/bold]"]
    for n, q in enumerate(quotes, 1):
        extract = Text(" ".join(q.text.split()))
        extract.truncate(EXTRACT_CHARS, overflow="ellipsis")
        lines.append(f"[bold][{n}][/bold] {shown(q.title)} — [dim]{shown(q.url)}[/dim]")
        lines.append(f"[dim]“{shown(extract.plain)}”[/dim]")
    return "\n".join(lines)
