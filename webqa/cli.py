"""The command line: thin. It parses arguments, calls webqa.api, and prints with rich."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from webqa import api
from webqa.errors import WebQAError
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


def _open_web(args: argparse.Namespace) -> Web:
    return api.open_web(
        live=args.web,
        zim=args.zim,
        searxng=args.searxng,
        engine=args.engine,
        allow_private=args.allow_private,
        progress=lambda msg: err.print(f"[dim]{escape(msg)}[/dim]"),
    )


def _dtype_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float32", "int8"],
        help="precision of the local model (default auto: chosen for this CPU; "
        "same as WEBQA_DTYPE; ignored with --api-base)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webqa", description="Answer questions by browsing, with cited quotes."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("-n", type=int, default=1, help="best-of-n: episodes to sample (default 1)")
    ask.add_argument(
        "--model", help="preset, Hugging Face id/folder or GGUF file (default qwen-0.5b)"
    )
    ask.add_argument("--api-base", metavar="URL", help="OpenAI-compatible server for --model")
    _dtype_option(ask)
    ask.add_argument("--reward-model", help='"grounding" (default) or a reward model id/folder')
    ask.add_argument(
        "--temperature",
        type=float,
        help="sampling temperature (default 0; with -n>1, 0.4 locally, 0.8 with --api-base)",
    )
    ask.add_argument("--max-actions", type=int, default=20, help="browser actions per episode")
    ask.add_argument("--seed", type=int, default=0)
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument(
        "--verbose",
        action="store_true",
        help="show every prompt exactly as sent, and the precision the model runs in",
    )
    _web_options(ask)

    browse = sub.add_parser("browse", help="drive the browser yourself (saves a demonstration)")
    browse.add_argument("question", nargs="?")
    browse.add_argument("--max-actions", type=int, default=100)
    _web_options(browse)

    search = sub.add_parser("search", help="print the results of the current search backend")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=10, help="number of results")
    search.add_argument("--json", action="store_true")
    _web_options(search)

    corpus = sub.add_parser("corpus", help="build offline corpora (ZIM files)")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    build = corpus_sub.add_parser("build", help="build the default corpus, or a ZIM from DIR")
    build.add_argument("dir", nargs="?", help="folder of HTML, Markdown or text files")
    build.add_argument("-o", "--output", metavar="FILE.zim", help="where to write the ZIM")

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
    batch.add_argument(
        "--model", help="preset, Hugging Face id/folder or GGUF file (default qwen-0.5b)"
    )
    batch.add_argument("--api-base", metavar="URL", help="OpenAI-compatible server for --model")
    _dtype_option(batch)
    batch.add_argument("--reward-model", help='"grounding" (default) or a reward model id/folder')
    batch.add_argument(
        "--temperature",
        type=float,
        help="sampling temperature (default 0; with -n>1, 0.4 locally, 0.8 with --api-base)",
    )
    batch.add_argument("--max-actions", type=int, default=20, help="browser actions per episode")
    batch.add_argument("--seed", type=int, default=0)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("ask", "batch"):  # a bad --dtype/WEBQA_DTYPE: fail before work
            api.check_dtype(args.dtype, api_base=args.api_base)
        if args.command == "ask":
            from webqa.frontend.ask import run_ask

            return run_ask(args, _open_web(args), out, err)
        if args.command == "browse":
            from webqa.frontend.browse import run_browse

            return run_browse(args, _open_web(args), out, err)
        if args.command == "search":
            return _search(args)
        if args.command == "corpus":
            return _corpus(args)
        if args.command == "batch":
            from webqa.frontend.batch import run_batch

            return run_batch(args, lambda: _open_web(args), out, err)
        if args.command == "log":
            from webqa.frontend.log import run_log

            return run_log(args, out, err)
    except WebQAError as exc:
        err.print(f"[red]webqa {args.command}: {escape(str(exc))}[/red]")
        return 1
    except KeyboardInterrupt:
        err.print(f"[red]webqa {args.command}: interrupted[/red]")
        return 130
    return 2


def _search(args: argparse.Namespace) -> int:
    web = _open_web(args)
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
        path = corpus.build_from_folder(Path(args.dir), Path(args.output))
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
