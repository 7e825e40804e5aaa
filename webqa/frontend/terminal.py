"""What the terminal shows of untrusted text: control characters (ANSI escapes among
them) and lone surrogates written as escapes, so that a question, an id or a logged
answer shows as written and can never drive the terminal. Used by every front door
that prints such text."""

from __future__ import annotations

import argparse
import re

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes among them) and lone surrogates
    written as escapes, so it shows as written and prints on any terminal."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


def shown(text: object) -> str:
    """``text`` made printable (see ``printable``) and escaped for rich markup."""
    return escape(printable(str(text)))


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--progress`` of a long job that ends with a report (the
    training and demonstration commands)."""
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


def progress_bar(label: str, unit: str, err: Console, show: bool | None) -> Progress:
    """A bar with done/total, elapsed time and ETA on ``err``; ``show`` None: only when
    ``err`` is a terminal."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=not (err.is_terminal if show is None else show),
    )
