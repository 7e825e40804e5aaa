"""`webqa ask`: browse live on screen, then the answer with its references."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape

from webqa import api
from webqa.agent import Event, Result
from webqa.web.base import Web


def run_ask(args: argparse.Namespace, web: Web, out: Console, err: Console) -> int:
    question = api.validate_question(args.question)
    show = err if args.json else out
    status = show.status("loading the model…", spinner="dots")
    status.start()
    prefix = (lambda i: f"[dim]#{i}[/dim] ") if args.n > 1 else (lambda i: "")

    def on_event(event: Event) -> None:
        if event.kind == "prompt":
            if args.verbose:
                status.stop()
                err.rule(f"prompt (episode {event.episode})")
                err.print(escape(event.text))
                status.start()
            status.update("the model is choosing its next command…")
        elif event.kind == "command":
            show.print(f"{prefix(event.episode)}[cyan]›[/cyan] {escape(event.text)}")
        elif event.kind == "answering":
            status.update(f"writing the answer from {event.text}…")
        elif event.kind == "scored":
            show.print(f"{prefix(event.episode)}[dim]reward {event.text}[/dim]")

    try:
        result = api.answer(
            question,
            n=args.n,
            model=args.model,
            api_base=args.api_base,
            web=web,
            reward_model=args.reward_model,
            temperature=args.temperature,
            max_actions=args.max_actions,
            seed=args.seed,
            on_event=on_event,
        )
    finally:
        status.stop()
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_result(result, out)
    return 0


def print_result(result: Result, out: Console) -> None:
    out.print()
    out.rule("answer")
    out.print(escape(result.answer))
    if result.references:
        out.print()
        for ref in result.references:
            out.print(
                f"[bold][{ref.n}][/bold] {escape(ref.title)} — [link]{escape(ref.url)}[/link]"
            )
            out.print(f"    [dim]“{escape(_short(ref.extract))}”[/dim]")
    if len(result.candidates) > 1:
        scores = ", ".join(
            f"{c.score:.3f}" if c.score is not None else "-" for c in result.candidates
        )
        out.print(
            f"\n[dim]best of {len(result.candidates)} (#{result.best}); scores: {scores}[/dim]"
        )
    out.print(f"[dim]{result.model} · {result.seconds:.1f} s[/dim]")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
