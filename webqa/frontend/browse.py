"""`webqa browse`: a person drives the browser with the model's own commands.

Interactive at a terminal (line editing and history, `help`), or non-interactive with
commands piped on stdin: each observation is printed, each bad command reported on
stderr with its input line. After `End: Answer` the person writes the answer (piped: the
rest of stdin). The session is saved as a demonstration either way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.markup import escape

from webqa import demos
from webqa.api import validate_question
from webqa.browser.env import BrowserEnv
from webqa.web.base import Web

HELP = """Commands (one per line, exactly as the model writes them):
  Search <query>            Clicked on link <id>        Find in page: <text>
  Quote: <text>             Quote: <start>━<end>        Scrolled down <1|2|3>
  Scrolled up <1|2|3>       Top        Back             End: Answer
  End: Nonsense             End: Controversial
  help (this text, not counted)   quit (stop without answering; the session is saved)"""


def _lines(interactive: bool, prompt: str) -> Iterator[str]:
    while True:
        try:
            line = input(prompt) if interactive else sys.stdin.readline()
        except EOFError:
            return
        if not interactive and line == "":
            return
        yield line.rstrip("\n")


def run_browse(args: argparse.Namespace, web: Web, out: Console, err: Console) -> int:
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
    line_no = 0
    question = args.question
    if question is None:
        if interactive:
            question = input("Question: ")
        else:
            question = sys.stdin.readline().rstrip("\n")
            line_no += 1
    question = validate_question(question)
    env = BrowserEnv(web, max_actions=args.max_actions)
    observation = env.reset(question)
    print(observation.text, flush=True)
    steps: list[dict[str, object]] = []
    invalid = 0
    end_reason = "abandoned"
    answer = ""
    lines = _lines(interactive, "> ")
    for line in lines:
        line_no += 1
        command = line.strip()
        if not command:
            continue
        if command.lower() == "help":
            out.print(escape(HELP))
            continue
        if command.lower() in {"quit", "exit"}:
            break
        result = env.step(command)
        error = result.info.get("error")
        steps.append({"command": command, "valid": error is None, "error": error})
        if error is not None:
            invalid += 1
            where = "" if interactive else f"stdin line {line_no}: "
            reason = escape(str(error))
            err.print(f"[red]webqa browse: {where}{reason} (counted as an action)[/red]")
        observation = result.observation
        print("\n" + observation.text, flush=True)
        if result.terminated or result.truncated:
            end_reason = str(result.info.get("end_reason", "ended"))
            break
    if end_reason == "answer" or (
        end_reason not in {"nonsense", "controversial", "abandoned"} and observation.quotes
    ):
        if interactive:
            out.print("Write the answer, citing quotes as [1], [2]; finish with an empty line.")
        answer_lines = []
        for line in _lines(interactive, ""):
            if interactive and not line.strip():
                break
            answer_lines.append(line)
        answer = "\n".join(answer_lines).strip()
    demo = demos.Demonstration(
        question=question,
        steps=steps,
        quotes=list(observation.quotes),
        answer=answer,
        end_reason=end_reason,
        web=web.name,
    )
    path = demos.save(demo)
    err.print(
        f"saved demonstration {demo.id} ({len(steps)} actions, {len(demo.quotes)} quotes) to {path}"
    )
    return 1 if invalid and not interactive else 0
