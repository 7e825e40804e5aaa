"""The command line: thin. It parses arguments, calls webqa.api, and prints with rich."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from webqa import api
from webqa.errors import InputError, error_line, one_line
from webqa.models.server_decoding import MODES as SERVER_MODES
from webqa.values import BROWSING
from webqa.web.base import Web

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _web_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where to browse (default: the embedded offline corpus)")
    g.add_argument("--web", action="store_true", help="browse the live web (DuckDuckGo by default)")
    g.add_argument("--searxng", metavar="URL", help="live web through a SearXNG instance")
    g.add_argument(
        "--engine", choices=["duckduckgo", "searxng", "brave"], help="live search engine"
    )
    g.add_argument("--zim", metavar="FILE", help="browse this ZIM file (e.g. a Kiwix Wikipedia)")
    g.add_argument(
        "--allow-private", action="store_true", help="let live fetches reach private addresses"
    )


def _open_web(args: argparse.Namespace, backends: api.Backends) -> Web:
    """The web the command's options name, from ``backends``."""
    return backends.web(
        live=args.web,
        zim=args.zim,
        searxng=args.searxng,
        engine=args.engine,
        allow_private=args.allow_private,
        progress=lambda msg: err.print(f"[dim]{escape(msg)}[/dim]"),
    )


def _model_options(p: argparse.ArgumentParser) -> None:
    """The options of `ask` and `batch` that say which model answers and how."""
    p.add_argument(
        "--model", help="preset, Hugging Face id/folder or GGUF file (default qwen-0.5b)"
    )
    p.add_argument("--api-base", metavar="URL", help="OpenAI-compatible server for --model")
    p.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float32", "int8"],
        help="precision of the local model (default auto: chosen for this CPU; "
        "same as WEBQA_DTYPE; ignored with --api-base)",
    )
    p.add_argument(
        "--browsing",
        choices=BROWSING,
        default="auto",
        help="guided (the guided procedure small models need) or free (WebGPT's command "
        "set); default auto: guided for a local model and for a served one whose name gives "
        "at most 4B parameters (qwen2.5:0.5b), free for other served models",
    )
    p.add_argument(
        "--server-decoding",
        choices=("auto", *SERVER_MODES),
        default="auto",
        help="how a served model is held to the guided commands: grammar (llama.cpp), "
        "choice (vLLM), json (a JSON schema), nearest (any server: the listed command "
        "nearest its reply); default auto: probed once per server",
    )
    p.add_argument(
        "--reward-model",
        help='"bootstrap" (the trained reward model webqa ships; the default for a local '
        'model), "grounding" (the default behind --api-base), a folder `webqa reward '
        "train` wrote, or a Hugging Face reward model id/folder",
    )
    p.add_argument(
        "--temperature",
        type=float,
        help="sampling temperature (default 0; with -n>1, 0.4 locally, 0.8 with --api-base)",
    )
    p.add_argument("--max-actions", type=int, default=20, help="browser actions per episode")
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=api.DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time budget per question (default {api.DEFAULT_TIMEOUT:g} s; 0 = none): then "
        "browsing stops and the answer is written from the quotes so far",
    )
    p.add_argument("--seed", type=int, default=0)


def _seconds(text: str) -> float:
    """A --timeout: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webqa", description="Answer questions by browsing, with cited quotes."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("-n", type=int, default=1, help="best-of-n: episodes to sample (default 1)")
    _model_options(ask)
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument(
        "--verbose",
        action="store_true",
        help="show every prompt exactly as sent, and the precision the model runs in",
    )
    ask.add_argument(
        "--no-worker",
        action="store_true",
        help="answer in this process, not in the background model worker "
        "(same as WEBQA_KEEP_ALIVE=0)",
    )
    _web_options(ask)

    worker = sub.add_parser(
        "worker", help="the background model worker that keeps models loaded between asks"
    )
    worker_sub = worker.add_subparsers(dest="worker_command", required=True)
    worker_status = worker_sub.add_parser("status", help="list this data directory's workers")
    worker_status.add_argument("--json", action="store_true", help="print JSON")
    worker_sub.add_parser("stop", help="stop this data directory's workers")

    browse = sub.add_parser("browse", help="drive the browser yourself (saves a demonstration)")
    browse.add_argument("question", nargs="?")
    browse.add_argument("--max-actions", type=int, default=100)
    _web_options(browse)

    search = sub.add_parser("search", help="print the results of the current search backend")
    search.add_argument("query")
    search.add_argument(
        "-k", type=int, default=10, metavar="K", help="number of results, 1 to 100 (default 10)"
    )
    search.add_argument("--json", action="store_true")
    _web_options(search)

    corpus = sub.add_parser("corpus", help="build offline corpora (ZIM files)")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    build = corpus_sub.add_parser("build", help="build the default corpus, or a ZIM from DIR")
    build.add_argument("dir", nargs="?", help="folder of HTML, Markdown or text files")
    build.add_argument("-o", "--output", metavar="FILE.zim", help="where to write the ZIM")
    build.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="also take files that symbolic links in DIR point to outside it (default: skip)",
    )

    batch = sub.add_parser("batch", help="answer a question file (.txt, .jsonl, .csv), resumably")
    batch.add_argument("questions", metavar="QUESTIONS", help="a .txt, .jsonl or .csv file")
    batch.add_argument(
        "-o", "--output", metavar="ANSWERS.jsonl", help="default: QUESTIONS.answers.jsonl"
    )
    batch.add_argument("-n", type=int, default=1, help="best-of-n per question (default 1)")
    batch.add_argument(
        "--concurrency",
        "-k",
        type=int,
        default=4,
        metavar="K",
        help="questions in flight (default 4)",
    )
    batch.add_argument("--shard", metavar="i/N", help="answer only part i of N (1-based)")
    batch.add_argument("--retry-failed", action="store_true", help="run failed questions again")
    _model_options(batch)
    batch.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    _web_options(batch)

    log = sub.add_parser("log", help="list logged episodes; `log show ID` replays one")
    log.add_argument("--limit", type=int, default=20, help="episodes to list (default 20)")
    log.add_argument("--json", action="store_true", help="print JSON")
    log_sub = log.add_subparsers(dest="log_command")
    show = log_sub.add_parser("show", help="replay one episode step by step")
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument(
        "--observations", action="store_true", help="show what the model saw before each step"
    )

    compare = sub.add_parser(
        "compare",
        help="judge two answers to a question side by side (what a reward model learns "
        "from); `compare export|import FILE` moves the judgements",
    )
    sampled = compare.add_mutually_exclusive_group()
    sampled.add_argument("--question", help="sample answers to this question now, then judge them")
    sampled.add_argument(
        "--questions", metavar="FILE", help="the same for each question of a .txt/.jsonl/.csv"
    )
    compare.add_argument(
        "-n", type=int, default=2, help="answers to sample per question (default 2, at least 2)"
    )
    _model_options(compare)
    _web_options(compare)
    compare_sub = compare.add_subparsers(dest="compare_command")
    export = compare_sub.add_parser(
        "export", help="write every judgement as JSONL in the WebGPT comparisons schema"
    )
    export.add_argument("path", metavar="OUT.jsonl")
    load = compare_sub.add_parser("import", help="add the judgements of a comparisons JSONL")
    load.add_argument("path", metavar="IN.jsonl")

    from webqa.frontend.policy import add_policy_parser
    from webqa.frontend.reward import add_reward_parser

    add_policy_parser(sub)
    add_reward_parser(sub, _model_options)
    _debug_option(parser)
    return parser


def _debug_option(parser: argparse.ArgumentParser, *, top: bool = True) -> None:
    """``--debug`` on ``parser`` and every subcommand's, so that it goes before or after
    the subcommand (``WEBQA_DEBUG=1`` does the same)."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,  # a subcommand keeps the top's value
        help="show the traceback of an error (same as WEBQA_DEBUG=1)",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _debug_option(sub, top=False)


def main(argv: Sequence[str] | None = None, backends: api.Backends | None = None) -> int:
    """Run one command. Whatever goes wrong is one line on stderr, never a traceback
    (unless ``--debug``): a WebQAError or an OSError (naming its file) exits 1, any other
    exception 2, an interrupt 130 (SIGTERM during `ask`: 143).

    ``backends`` is where the command gets its model, reward model, web and ranker
    (default: the real loaders, ``api.Backends``); given one, `webqa ask` answers in
    this process, since what it holds cannot cross to the model worker."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("WEBQA_DEBUG", "").strip() not in ("", "0")
    try:
        with warnings.catch_warnings():
            if not debug:  # a warning is one line, not Python's two with the source line
                warnings.formatwarning = _format_warning
            return _run(args, backends)
    except KeyboardInterrupt as stop:
        if type(stop).__name__ == "Terminated":  # SIGTERM during `ask` (frontend.ask)
            return _fail(args, "terminated", 128 + signal.SIGTERM, debug)
        return _fail(args, "interrupted", 130, debug)
    except BrokenPipeError:  # whoever read our output stopped reading: nothing to tell
        _silence_stdout()
        return 1
    except Exception as exc:
        message, code = error_line(exc, debug=debug)
        return _fail(args, message, code, debug)


def _run(args: argparse.Namespace, backends: api.Backends | None) -> int:
    parts = backends or api.DEFAULT_BACKENDS
    _check_storage(args)
    if args.command in ("ask", "browse") and args.question is not None:
        from webqa.frontend.browse import check_text

        if problem := check_text(args.question)[1]:  # before any work, as the model would fail
            raise InputError(f"the question is {problem}")
    if args.command in ("ask", "batch"):  # a bad --dtype/WEBQA_DTYPE: fail before work
        api.check_dtype(args.dtype, api_base=args.api_base)
    if args.command == "ask":
        from webqa.frontend.ask import run_ask

        return run_ask(args, lambda: _open_web(args, parts), out, err, backends=backends)
    if args.command == "worker":
        from webqa.frontend.worker import run_worker

        return run_worker(args, out, err)
    if args.command == "browse":
        from webqa.frontend.browse import run_browse

        return run_browse(args, _open_web(args, parts), out, err)
    if args.command == "search":
        return _search(args, parts)
    if args.command == "corpus":
        return _corpus(args)
    if args.command == "batch":
        from webqa.frontend.batch import run_batch

        return run_batch(args, lambda: _open_web(args, parts), out, err, backends=parts)
    if args.command == "log":
        from webqa.frontend.log import run_log

        return run_log(args, out, err)
    if args.command == "compare":
        from webqa.frontend.compare import run_compare

        return run_compare(args, lambda: _open_web(args, parts), out, err, backends=parts)
    if args.command == "reward" and args.reward_command == "bootstrap":
        from webqa.frontend.bootstrap import run_bootstrap

        return run_bootstrap(args, backends=parts)
    if args.command == "reward":
        from webqa.frontend.reward import run_reward

        return run_reward(args, out, err)
    if args.command == "policy":
        from webqa.frontend.policy import run_policy

        return run_policy(args, out, err)
    return 2


def _check_storage(args: argparse.Namespace) -> None:
    """Before any work, one line if the data directory cannot be used (and, for
    ``browse``, if the demonstrations file cannot be written, before anything is typed).

    Commands that write nothing there run regardless: ``search --zim`` and
    ``corpus build DIR -o FILE``. ``log`` only reads it."""
    if (args.command == "search" and args.zim) or (args.command == "corpus" and args.dir):
        return
    api.check_data_dir(write=args.command not in ("log", "worker"))
    if args.command == "browse":
        from webqa import demos

        demos.check_writable()


def _format_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    return f"webqa: {one_line(str(message))}\n"


def _fail(args: argparse.Namespace, message: str, code: int, debug: bool) -> int:
    if debug and code != 130:
        traceback.print_exc()
    err.print(f"[red]webqa {args.command}: {escape(message)}[/red]")
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _search(args: argparse.Namespace, backends: api.Backends) -> int:
    from webqa.errors import InputError

    if not 1 <= args.k <= 100:
        raise InputError(f"-k must be a number of results from 1 to 100, not {args.k}")
    web = _open_web(args, backends)
    results = web.search(args.query, k=args.k)
    if args.json:
        rows = [
            {"rank": i, "title": r.title, "url": r.url, "snippet": r.snippet}
            for i, r in enumerate(results)
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not results:
        out.print(f"No results for {args.query!r}.")
    for i, r in enumerate(results):
        out.print(f"[bold]{i}. {escape(r.title)}[/bold]  [dim]{escape(r.url)}[/dim]")
        if r.snippet:
            out.print(f"   {escape(r.snippet)}")
    return 0


def _corpus(args: argparse.Namespace) -> int:
    from webqa.web import corpus

    if args.dir:
        if not args.output:
            err.print("[red]webqa corpus build: give -o FILE.zim for the output[/red]")
            return 2
        path = corpus.build_from_folder(
            Path(args.dir),
            Path(args.output),
            follow_symlinks=args.follow_symlinks,
            on_skip=lambda m: err.print(f"[yellow]webqa corpus: skipped {escape(m)}[/yellow]"),
        )
    else:
        path = corpus.build_default_corpus(
            Path(args.output) if args.output else None,
            force=True,
            progress=lambda m: err.print(f"[dim]{escape(m)}[/dim]"),
        )
    out.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
