"""`webqa reward bootstrap QUESTIONS.jsonl -o COMPARISONS.jsonl`: comparisons without
people (``webqa.bootstrap``), for `webqa reward train`.

The question file is a .jsonl whose rows carry gold answers (``answers``, a list of
strings, and ``answerable``), as benchmarks/questions/*.jsonl do; a row without them is
an error naming the file and line. Comparisons are appended to the output as each
question finishes (an interrupted run keeps what it made; ``--resume`` skips the
questions already in the file), with a progress line per question and, at the end, the
counts and the time taken.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console

from webqa import api
from webqa.bootstrap import BootstrapStats, bootstrap
from webqa.errors import InputError
from webqa.frontend.ask import decoding_option
from webqa.questionfile import read_questions

err = Console(stderr=True, highlight=False)


def add_bootstrap_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `bootstrap` on the `reward` command's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "bootstrap",
        help="best-of-n on questions with gold answers, candidates judged by them",
    )
    p.add_argument("questions", metavar="QUESTIONS.jsonl", help="rows with answers/answerable")
    p.add_argument("-o", "--output", required=True, metavar="COMPARISONS.jsonl")
    p.add_argument("-n", type=int, default=4, help="candidates per question (default 4)")
    p.add_argument("--limit", type=int, default=0, help="only the first N questions")
    p.add_argument("--concurrency", type=int, default=2, help="questions at once (default 2)")
    p.add_argument("--resume", action="store_true", help="skip questions already in OUTPUT")
    return p


def gold_items(path: Path) -> list[dict[str, Any]]:
    """The rows of a question file with gold answers; InputError names a bad line."""
    if path.suffix.lower() != ".jsonl":
        raise InputError(f"{path}: bootstrap needs a .jsonl file with gold answers")
    read = read_questions(path)
    if read.bad:
        bad = read.bad[0]
        raise InputError(f"{path} line {bad.line}: {bad.message}")
    items = []
    for q in read.questions:
        answers, answerable = q.extra.get("answers"), q.extra.get("answerable")
        if not isinstance(answerable, bool):
            raise InputError(f"{path} line {q.line}: no answerable (true or false)")
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise InputError(f"{path} line {q.line}: answers must be a list of strings")
        if answerable and not any(a.strip() for a in answers):
            raise InputError(f"{path} line {q.line}: an answerable question with no answers")
        items.append({**q.extra, "question": q.text, "id": q.id, "line": q.line})
    if not items:
        raise InputError(f"{path}: no questions")
    return items


def _done_ids(output: Path) -> set[str]:
    done: set[str] = set()
    if not output.exists():
        return done
    with output.open(encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill: its question runs again
            if isinstance(row, dict) and isinstance(row.get("id"), str):
                done.add(row["id"])
    return done


def run_bootstrap(args: argparse.Namespace, backends: api.Backends | None = None) -> int:
    if args.n < 2:
        raise InputError(f"-n must be at least 2 to compare candidates, got {args.n}")
    items = gold_items(Path(args.questions))
    if args.limit:
        items = items[: args.limit]
    output = Path(args.output)
    if args.resume:
        done = _done_ids(output)
        items = [i for i in items if str(i["id"]) not in done]
    elif output.exists() and output.stat().st_size:
        raise InputError(f"{output}: exists; use --resume to add to it, or another -o")
    answer_many = partial(
        api.answer_many,
        n=args.n,
        concurrency=args.concurrency,
        model=getattr(args, "model", None),
        api_base=getattr(args, "api_base", None),
        dtype=getattr(args, "dtype", None),
        max_actions=getattr(args, "max_actions", 20),
        seed=getattr(args, "seed", 0),
        temperature=getattr(args, "temperature", None),
        timeout=getattr(args, "timeout", api.DEFAULT_TIMEOUT),
        browsing=getattr(args, "browsing", None) or "auto",
        decoding=decoding_option(args),
        batch=f"bootstrap:{output.resolve()}",
        backends=backends,
    )
    stats = BootstrapStats()
    started = time.perf_counter()
    seen = 0
    try:
        with output.open("a", encoding="utf-8") as out:
            last_questions = 0
            for comparison in bootstrap(items, answer_many, stats):
                out.write(json.dumps(comparison.to_dict(), ensure_ascii=False) + "\n")
                out.flush()
                seen += 1
                if stats.questions != last_questions:
                    last_questions = stats.questions
                    _progress(stats, len(items), started)
    except KeyboardInterrupt:
        err.print(f"interrupted: {seen} comparisons kept in {output}")
        return 130
    seconds = time.perf_counter() - started
    report = {**vars(stats), "seconds": round(seconds, 1), "output": str(output)}
    print(json.dumps(report, indent=2))
    return 0


def _progress(stats: BootstrapStats, total: int, started: float) -> None:
    spent = time.perf_counter() - started
    left = spent / max(1, stats.questions) * (total - stats.questions)
    err.print(
        f"[{stats.questions}/{total}] {stats.comparisons} comparisons "
        f"({stats.ties} ties), {spent:.0f} s, about {left:.0f} s left",
        highlight=False,
    )
