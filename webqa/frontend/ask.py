"""`webqa ask`: browse live on screen, then the answer with its references."""

from __future__ import annotations

import argparse
import json
import os

from rich.console import Console
from rich.markup import escape

from webqa import api
from webqa.agent import Event, Result
from webqa.models.base import Policy
from webqa.web.base import Web


def run_ask(args: argparse.Namespace, web: Web, out: Console, err: Console) -> int:
    question = api.validate_question(args.question)
    dtype = getattr(args, "dtype", None)
    # the policy api.answer will use (cached, loaded lazily): it says what precision ran
    policy = api.load_policy(args.model, api_base=args.api_base, dtype=dtype)
    show = err if args.json else out
    status = show.status("loading the model…", spinner="dots")
    status.start()
    prefix = (lambda i: f"[dim]#{i}[/dim] ") if args.n > 1 else (lambda i: "")
    told = False  # whether --verbose has said what precision the model runs in

    def tell_hardware() -> None:
        nonlocal told
        line = hardware_line(policy, dtype)
        if told or line is None:
            return
        told = True
        status.stop()
        err.print(f"[dim]{escape(line)}[/dim]")
        status.start()

    def on_event(event: Event) -> None:
        if args.verbose and event.kind != "prompt":
            tell_hardware()  # the model has run once (loaded) before any other event
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
            dtype=dtype,
        )
        if args.verbose:
            tell_hardware()
    finally:
        status.stop()
    if args.json:
        data = result.to_dict()
        data["hardware"] = hardware_report(policy)
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print_result(result, out)
    return 0


def hardware_report(policy: Policy) -> dict[str, object] | None:
    """The precision a local model ran in and why (``Choice.to_dict()``); None for a
    model behind a server, or one not loaded."""
    from webqa.models.local import LocalPolicy

    if isinstance(policy, LocalPolicy) and policy.hardware is not None:
        report: dict[str, object] = policy.hardware.to_dict()
        return report
    return None


def hardware_line(policy: Policy, dtype: str | None = None) -> str | None:
    """One line: which precision, threads and CPU capability a loaded local model runs
    with, and why ("model qwen-0.5b: int8 (probe; AVX2, 2 threads, AMD EPYC)");
    ``dtype`` is the --dtype given, if any. None for a server model or before loading."""
    from webqa.models.hardware import ENV_VAR
    from webqa.models.local import LocalPolicy

    if not isinstance(policy, LocalPolicy) or policy.hardware is None:
        return None
    choice = policy.hardware
    why = {"probe": "probe", "cached": "cached probe"}.get(choice.source, choice.source)
    if choice.source == "override":
        if dtype and dtype != "auto":
            why = f"--dtype {dtype}"
        elif os.environ.get(ENV_VAR, "").strip():
            why = f"{ENV_VAR}={os.environ[ENV_VAR].strip()}"
    threads = f"{choice.threads} thread{'' if choice.threads == 1 else 's'}"
    capability = choice.cpu.capability or "CPU capability unknown"
    return (
        f"model {policy.name}: {choice.precision} "
        f"({why}; {capability}, {threads}, {choice.cpu.model})"
    )


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
