"""`webqa ask`: browse live on screen, then the answer with its references.

The answer runs in the model worker when one is wanted (``webqa.frontend.worker``: warm
asks skip the start-up) and in this process otherwise. Either way it is told as the
same messages (``answer_messages`` makes them where the model is) and shown by the same
``Screen``, so what a person sees cannot differ between the two.

Stopped part-way (Ctrl-C, or SIGTERM, which `ask` turns into the same interrupt:
``Terminated``), nothing browsed is lost: the episodes so far are logged, marked
interrupted, here by ``api.answer`` or in the worker once it finds its client gone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from webqa import api
from webqa.frontend import worker
from webqa.models.base import Policy, RewardModel
from webqa.values import Event
from webqa.web.base import Web

if TYPE_CHECKING:
    from webqa.models.hardware import Choice

Message = dict[str, object]


class Terminated(KeyboardInterrupt):
    """SIGTERM during `webqa ask`: the question stops as at Ctrl-C (exit 143)."""


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM raises ``Terminated`` rather than ending the process at
    once, so the episodes so far are logged as at Ctrl-C (main thread only; elsewhere
    signal handlers cannot be set, and nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def run_ask(
    args: argparse.Namespace,
    open_web: Callable[[], Web],
    out: Console,
    err: Console,
    *,
    backends: api.Backends | None = None,
) -> int:
    """Answer in the model worker where one is wanted, else here; given ``backends``
    (not the default loaders), always here, where its parts are. SIGTERM stops it as
    Ctrl-C does (``sigterm_interrupts``)."""
    with sigterm_interrupts():
        return _run_ask(args, open_web, out, err, backends=backends)


def _run_ask(
    args: argparse.Namespace,
    open_web: Callable[[], Web],
    out: Console,
    err: Console,
    *,
    backends: api.Backends | None = None,
) -> int:
    question = api.validate_question(args.question)
    screen = Screen(args, out, err)
    if backends is None and worker.wanted(args):
        request = worker.ask_request(args, question, worker.keep_alive())
        screen.start("connecting to the model worker…")
        why = None
        try:
            final = worker.ask(request, screen.show_message, screen.update)
        except worker.WorkerUnavailable as exc:  # never lose the question: answer it here
            why = str(exc)
        finally:
            screen.stop()
        if why is None:
            return screen.finish(final)
        err.print(f"[yellow]webqa ask: {escape(why)}; answering here[/yellow]")
    web = open_web()
    screen.start("loading the model…")
    try:
        final = answer_messages(args, web, screen.show_message, backends=backends)
    finally:
        screen.stop()
    return screen.finish(final)


def answer_messages(
    args: argparse.Namespace,
    web: Web,
    emit: Callable[[Message], None],
    *,
    policy: Policy | None = None,
    reward: RewardModel | None = None,
    backends: api.Backends | None = None,
) -> Message:
    """Answer as `webqa ask` with ``args`` does, telling ``emit`` what to show as it
    goes; the last message, "result" (``Result.to_dict()``, and the hardware report
    for --json), is returned. Where the model is: here, or in the worker, whose kept
    ``policy`` and ``reward`` model are given (else ``backends`` gets them by name)."""
    parts = backends or api.DEFAULT_BACKENDS
    question = api.validate_question(args.question)
    dtype = getattr(args, "dtype", None)
    # the policy api.answer will use (cached, loaded lazily): it says what precision ran
    decoding = decoding_option(args)
    policy = policy or parts.policy(
        args.model, api_base=args.api_base, dtype=dtype, decoding=decoding
    )
    emit({"t": "status", "text": "loading the model…"})
    told = False  # whether --verbose has said what precision the model runs in
    prompted = False  # whether the model has been called (so loaded) for this question

    def tell_hardware() -> None:
        nonlocal told
        line = hardware_line(policy, dtype)
        if told or line is None:
            return
        told = True
        emit({"t": "hardware", "line": line})

    def on_event(event: Event) -> None:
        nonlocal prompted
        # said at the first event after the model's first call: the same place whether
        # this call loaded the model or a worker had it loaded already
        if args.verbose and event.kind != "prompt" and prompted:
            tell_hardware()
        prompted = prompted or event.kind == "prompt"
        text = event.text if event.kind != "prompt" or args.verbose else ""
        emit({"t": "event", "kind": event.kind, "episode": event.episode, "text": text})

    result = api.answer(
        question,
        n=args.n,
        model=policy,
        api_base=args.api_base,
        web=web,
        reward_model=reward or args.reward_model,
        temperature=args.temperature,
        max_actions=args.max_actions,
        seed=args.seed,
        on_event=on_event,
        dtype=dtype,
        backends=parts,
        timeout=getattr(args, "timeout", api.DEFAULT_TIMEOUT),
        browsing=getattr(args, "browsing", None) or "auto",
        decoding=decoding,
    )
    if args.verbose:
        tell_hardware()
    return {
        "t": "result",
        "result": result.to_dict(),
        "hardware": hardware_report(policy) if args.json else None,
    }


class Screen:
    """What `webqa ask` shows: a status line while it runs, the commands, rewards and
    (--verbose) prompts and precision as messages come, then the answer or the error."""

    def __init__(self, args: argparse.Namespace, out: Console, err: Console) -> None:
        self.args, self.out, self.err = args, out, err
        self.show = err if args.json else out
        self.status = self.show.status("loading the model…", spinner="dots")
        self.many = args.n > 1

    def start(self, text: str) -> None:
        self.status.update(text)
        self.status.start()

    def update(self, text: str) -> None:
        self.status.update(text)

    def stop(self) -> None:
        self.status.stop()

    def show_message(self, message: Message) -> None:
        kind, text = message.get("t"), str(message.get("text", ""))
        if kind == "status":
            self.status.update(text)
        elif kind == "progress":
            self.err.print(f"[dim]{escape(text)}[/dim]")
        elif kind == "hardware":
            self.status.stop()
            self.err.print(f"[dim]{escape(str(message.get('line', '')))}[/dim]")
            self.status.start()
        elif kind == "warning":  # relayed from the worker: shown as this process shows one
            category = {"RuntimeWarning": RuntimeWarning, "ResourceWarning": ResourceWarning}
            warnings.warn(text, category.get(str(message.get("category")), UserWarning), 1)
        elif kind == "event":
            self._event(str(message.get("kind")), message.get("episode"), text)

    def _event(self, kind: str, episode: object, text: str) -> None:
        prefix = f"[dim]#{episode}[/dim] " if self.many else ""
        if kind == "prompt":
            if self.args.verbose:
                self.status.stop()
                self.err.rule(f"prompt (episode {episode})")
                self.err.print(escape(text))
                self.status.start()
            self.status.update("the model is choosing its next command…")
        elif kind == "command":
            self.show.print(f"{prefix}[cyan]›[/cyan] {escape(text)}")
        elif kind == "answering":
            self.status.update(f"writing the answer from {text}…")
        elif kind == "scored":
            self.show.print(f"{prefix}[dim]reward {text}[/dim]")

    def finish(self, final: Message) -> int:
        """Print the last message: the answer (exit 0) or the error's one line."""
        if final.get("t") == "error":
            trace = final.get("traceback")
            if isinstance(trace, str) and trace:
                sys.stderr.write(trace)
            self.err.print(f"[red]webqa ask: {escape(str(final.get('message')))}[/red]")
            code = final.get("code")
            return code if isinstance(code, int) else 1
        data = final.get("result")
        assert isinstance(data, dict), final
        if self.args.json:
            data = dict(data, hardware=final.get("hardware"))
            print(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            print_result(data, self.out, verbose=self.args.verbose)
        return 0


def _choice(policy: Policy) -> Choice | None:
    """The precision choice of a local model once loaded (its ``hardware``), else None."""
    from webqa.models.hardware import Choice

    choice = getattr(policy, "hardware", None)
    return choice if isinstance(choice, Choice) else None


def hardware_report(policy: Policy) -> dict[str, object] | None:
    """The precision a local model ran in and why (``Choice.to_dict()``); None for a
    model behind a server, or one not loaded."""
    choice = _choice(policy)
    return None if choice is None else choice.to_dict()


def decoding_option(args: argparse.Namespace) -> str | None:
    """--server-decoding as ``load_policy`` takes it (None: auto, probed)."""
    value = getattr(args, "server_decoding", None)
    return None if value in (None, "auto") else value


def hardware_line(policy: Policy, dtype: str | None = None) -> str | None:
    """One line: which precision, threads and CPU capability a loaded local model runs
    with, and why ("model qwen-0.5b: int8 (probe; AVX2, 2 threads, AMD EPYC)");
    ``dtype`` is the --dtype given, if any. For a model behind a server: how its guided
    commands were held ("model openai:m at URL: guided commands held by grammar
    (probe)"), or that it browsed on the free command set. None before loading."""
    from webqa.models.hardware import ENV_VAR

    served = getattr(policy, "served_decoding", None)
    if callable(served):
        return f"model {policy.name} at {policy.url}: {served()}"  # type: ignore[attr-defined]
    choice = _choice(policy)
    if choice is None:
        return None
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


# why browsing stopped before the model ended it, as `ask` says under the answer
STOPPED = {
    "time_budget": "the time budget (--timeout) ran out",
    "invalid_actions": "too many invalid commands in a row",
    "actions": "its actions (--max-actions) ran out",
    "quote_limit": "its quotes reached their length limit",
}


def print_result(result: Mapping[str, Any], out: Console, *, verbose: bool = False) -> None:
    """The answer, its references and (best-of-n) the scores, from ``Result.to_dict()``;
    why browsing stopped, where a limit stopped it (``verbose``: however it ended)."""
    out.print()
    out.rule("answer")
    out.print(escape(result["answer"]))
    if result["references"]:
        out.print()
        for ref in result["references"]:
            out.print(
                f"[bold][{ref['n']}][/bold] {escape(ref['title'])} — "
                f"[link]{escape(ref['url'])}[/link]"
            )
            out.print(f"    [dim]“{escape(_short(ref['extract']))}”[/dim]")
    candidates = result["candidates"]
    if len(candidates) > 1:
        scores = ", ".join(
            f"{c['score']:.3f}" if c["score"] is not None else "-" for c in candidates
        )
        out.print(f"\n[dim]best of {len(candidates)} (#{result['best']}); scores: {scores}[/dim]")
    end = str(candidates[result["best"]]["end_reason"]) if candidates else ""
    if end in STOPPED:
        out.print(f"[yellow]browsing stopped: {STOPPED[end]} ({end})[/yellow]")
    elif verbose and end:
        out.print(f"[dim]browsing ended: {escape(end)}[/dim]")
    out.print(f"[dim]{escape(result['model'])} · {result['seconds']:.1f} s[/dim]")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
