"""`webqa log`: list recent episodes; `webqa log show ID`: replay one step by step.

A log that cannot be read is one line naming it (a ``StoreError``). What the log holds
came from questions and web pages, so it is shown with control characters escaped."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from rich.console import Console

from webqa.frontend.terminal import printable, shown
from webqa.store import reader
from webqa.store.db import db_path


def run_log(args: argparse.Namespace, out: Console, err: Console) -> int:
    if getattr(args, "log_command", None) == "show":
        return _show(args, out)
    if args.limit < 1:
        out.print("nothing to list (--limit is below 1)")
        return 0
    rows = reader.recent(args.limit)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        out.print(f"No episodes logged yet ({printable(str(db_path()))}).", markup=False)
        return 0
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.created))
        ident = f"{row.id:>5}" if row.id is not None else "    -"
        mark = "*" if row.chosen and row.candidates > 1 else " "
        score = f"{row.score:+.3f}" if row.score is not None else "      "
        if row.error is not None:
            what = f"[red]failed: {shown(_short(row.error, 60))}[/red]"
        else:
            what = shown(_short(row.answer or "", 60))
        out.print(
            f"[bold]{ident}[/bold]{mark} [dim]{when}[/dim] {score}  "
            f"{shown(_short(row.question, 50))}  [dim]→[/dim] {what}"
        )
    return 0


def _show(args: argparse.Namespace, out: Console) -> int:
    record = reader.episode(args.id)
    s = record.summary
    if args.json:
        print(json.dumps(asdict(record), ensure_ascii=False, indent=2))
        return 0
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.created))
    out.rule(f"episode {s.id}")
    out.print(f"[bold]Question[/bold] {shown(s.question)}")
    details = [
        when,
        s.model or "?",
        record.web or "?",
        f"seed {record.seed}",
        f"temperature {record.temperature:g}",
        f"{record.seconds:.1f} s",
    ]
    if record.qid is not None:
        details.append(f"id {record.qid}")
    if s.candidates > 1:
        chosen = "chosen" if s.chosen else "not chosen"
        score = f"{s.score:.3f}" if s.score is not None else "-"
        details.append(f"candidate of best-of-{s.candidates}, reward {score}, {chosen}")
    if record.reward_model is not None:
        details.append(f"reward model {record.reward_model}")
    out.print(f"[dim]{shown(' · '.join(details))}[/dim]")
    out.print()
    for i, step in enumerate(record.steps, start=1):
        if args.observations:
            out.rule(f"observation before step {i}", style="dim")
            out.print(shown(step.prompt), style="dim")
        mark = "[green]✓[/green]" if step.valid else "[red]✗[/red]"
        out.print(f"{i:>3}. {mark} {shown(step.command)}")
        if step.message:
            out.print(f"      [dim]{shown(step.message)}[/dim]")
    out.print(f"[dim]ended: {shown(record.end_reason)}[/dim]")
    if record.visits:
        out.print()
        out.print("[bold]Visited[/bold]")
        for v in record.visits:
            status = "" if v.ok else f"  [red]failed: {shown(v.error or '')}[/red]"
            out.print(f"  {v.kind:<6} {shown(v.target)}{status}")
    if record.quotes:
        out.print()
        out.print("[bold]Quotes[/bold]")
        for q in record.quotes:
            out.print(f"  [bold][{q.n}][/bold] {shown(q.title)} — {shown(q.url)}")
            out.print(f"      [dim]“{shown(_short(q.extract, 300))}”[/dim]")
    out.print()
    out.rule("answer")
    out.print(shown(s.answer or ""))
    return 0


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
