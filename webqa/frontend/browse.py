"""`webqa browse`: a person drives the browser with the model's own commands.

Interactive at a terminal (line editing and history, `help`), or non-interactive with
commands piped on stdin: each observation is printed, each bad command reported on
stderr with its input line. After `End: Answer` the person writes the answer (piped: the
rest of stdin). The session is saved as a demonstration either way, and also when
something fails in the middle of it (then the error is reported after the save).

Input is read as UTF-8 whatever the locale: a command line that is not valid UTF-8 is
reported and skipped (not counted as an action), an answer line keeps U+FFFD in place of
its bad bytes, and a line longer than ``MAX_LINE_BYTES`` is skipped unread.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from webqa import demos
from webqa.browser.env import BrowserEnv, Observation
from webqa.errors import InputError, StorageError
from webqa.values import validate_question
from webqa.web.base import Web

HELP = """Commands (one per line, exactly as the model writes them):
  Search <query>            Clicked on link <id>        Find in page: <text>
  Quote: <text>             Quote: <start>━<end>        Scrolled down <1|2|3>
  Scrolled up <1|2|3>       Top        Back             End: Answer
  End: Nonsense             End: Controversial
  help (this text, not counted)   quit (stop without answering; the session is saved)"""

MAX_LINE_BYTES = 1 << 20  # a longer input line is skipped without being kept in memory
MAX_ANSWER_CHARS = 100_000


@dataclass(frozen=True)
class Line:
    """One input line: its number, its text (without the line end) and what was wrong."""

    number: int
    text: str
    problem: str | None = None  # e.g. not valid UTF-8: then ``text`` has U+FFFD
    usable: bool = True  # False when the text could not be read at all (too long)


def decode_line(raw: bytes) -> tuple[str, str | None]:
    """``raw`` as text, and the problem if it is not valid UTF-8 (then with U+FFFD)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
        problem = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column})"
        return raw.decode("utf-8", "replace"), problem


def check_text(text: str) -> tuple[str, str | None]:
    """Text from Python (argv, a text stream) that may hold the surrogates standing for
    bytes that were not UTF-8: cleaned as ``decode_line`` cleans bytes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")
        return decode_line(raw)
    return text, None


class Input:
    """Lines typed at a terminal or piped on stdin, decoded and bounded (see the module)."""

    def __init__(self, interactive: bool, stream: TextIO | None = None) -> None:
        self.interactive = interactive
        self.stream = stream or sys.stdin
        self.number = 0

    def read(self, prompt: str = "") -> Line | None:
        """The next line, or None at the end of input."""
        if self.interactive:
            try:
                typed = input(prompt)
            except EOFError:
                return None
            except UnicodeDecodeError:
                self.number += 1
                return Line(self.number, "", "not valid UTF-8", usable=False)
            self.number += 1
            text, problem = check_text(typed)
            return Line(self.number, text, problem)
        raw = self._readline(MAX_LINE_BYTES + 1)
        if not raw:
            return None
        self.number += 1
        if len(raw) > MAX_LINE_BYTES and raw[-1:] not in ("\n", b"\n"):
            while (piece := self._readline(MAX_LINE_BYTES)) and piece[-1:] not in ("\n", b"\n"):
                pass  # the rest of the overlong line, read a bounded piece at a time
            return Line(self.number, "", f"longer than {MAX_LINE_BYTES:,} bytes", usable=False)
        text, problem = decode_line(raw) if isinstance(raw, bytes) else check_text(raw)
        return Line(self.number, text.rstrip("\r\n"), problem)

    def _readline(self, limit: int) -> bytes | str:
        """At most ``limit`` bytes of a line: from the stream's bytes where it has them
        (whatever its encoding and error handler), else its text."""
        buffer = getattr(self.stream, "buffer", None)
        if buffer is not None:
            return bytes(buffer.readline(limit))
        return self.stream.readline(limit)

    def where(self, line: Line) -> str:
        return "" if self.interactive else f"stdin line {line.number}: "


class Session:
    """One browsing session: what has been done so far, saved whatever happens."""

    def __init__(self, question: str, env: BrowserEnv, web: Web) -> None:
        self.question = question
        self.env = env
        self.web = web
        self.steps: list[dict[str, object]] = []
        self.end_reason = "abandoned"
        self.answer = ""
        self.pending: str | None = None  # the command being carried out

    def step(self, command: str) -> tuple[Observation, str | None, bool]:
        """Carry out ``command``: (observation, error, whether the episode ended)."""
        self.pending = command
        before = self.env.observation.text  # what the person saw: what a policy trains on
        result = self.env.step(command)
        self.pending = None
        error = result.info.get("error")
        self.steps.append(
            {
                "command": command,
                "valid": error is None,
                "error": error,
                "observation": before,
                "prompt": "browse_system",  # a person browses WebGPT's layout
            }
        )
        if result.terminated or result.truncated:
            self.end_reason = str(result.info.get("end_reason", "ended"))
        ended = result.terminated or result.truncated
        return result.observation, None if error is None else str(error), ended

    def demonstration(self) -> demos.Demonstration:
        return demos.Demonstration(
            question=self.question,
            steps=list(self.steps),
            quotes=list(self.env.quotes),
            answer=self.answer,
            end_reason=self.end_reason,
            web=self.web.name,
        )

    def fail(self, exc: BaseException) -> None:
        """Note what stopped the session half-way (the step it was on, the reason)."""
        self.end_reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
        if self.pending is not None:
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else _one_line(exc)
            self.steps.append({"command": self.pending, "valid": False, "error": reason})
            self.pending = None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def save(session: Session, err: Console) -> None:
    """Save the session and say where; if the usual file fails, keep it in a file of its
    own (or print it) and raise StorageError saying where it went."""
    demo = session.demonstration()
    try:
        path = demos.save(demo)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        lost = f"cannot save the demonstration to {exc.filename or 'its file'}: {reason}"
        try:
            kept = demos.keep_elsewhere(demo)
        except OSError:
            print(demos.to_json(demo), file=sys.stderr, flush=True)
            raise StorageError(f"{lost}; it is printed above as JSON") from exc
        raise StorageError(f"{lost}; kept it in {kept} instead") from exc
    err.print(
        f"saved demonstration {demo.id} ({len(demo.steps)} actions, {len(demo.quotes)} quotes)"
        f" to {escape(str(path))}"
    )


def _read_question(args: argparse.Namespace, lines: Input, err: Console) -> str:
    if args.question is not None:
        question, problem = check_text(args.question)
        if problem:
            raise InputError(f"the question is {problem}")
        return validate_question(question)
    while True:
        line = lines.read("Question: ")
        if line is None:
            raise InputError("no question given (as an argument or on the first line)")
        if line.problem is None:
            return validate_question(line.text)
        if not lines.interactive:
            raise InputError(f"{lines.where(line)}the question is {line.problem}")
        err.print(f"[red]webqa browse: the question is {escape(line.problem)}; again:[/red]")


def run_browse(args: argparse.Namespace, web: Web, out: Console, err: Console) -> int:
    """Run one session; 1 when piped input had problems (bad commands, bad lines)."""
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
    lines = Input(interactive)
    question = _read_question(args, lines, err)
    # a person's typos do not end the session (a model's invalid commands in a row do)
    env = BrowserEnv(web, max_actions=args.max_actions, max_invalid_in_a_row=args.max_actions)
    session = Session(question, env, web)
    try:
        problems = _browse(session, lines, out, err)
    except BaseException as exc:
        session.fail(exc)
        try:
            save(session, err)
        except StorageError as lost:
            err.print(f"[red]webqa browse: {escape(str(lost))}[/red]")
        raise
    save(session, err)
    return 1 if problems and not interactive else 0


def _browse(session: Session, lines: Input, out: Console, err: Console) -> int:
    """The session proper; returns how many problems piped input had."""
    env = session.env
    observation = env.reset(session.question)
    print(observation.text, flush=True)
    problems = 0

    def report(message: str) -> None:
        err.print(f"[red]webqa browse: {escape(message)}[/red]")

    while (line := lines.read("> ")) is not None:
        if line.problem is not None:
            problems += 1
            then = "type it again" if lines.interactive else "skipped, not counted as an action"
            report(f"{lines.where(line)}{line.problem}; {then}")
            continue
        command = line.text.strip()
        if not command:
            continue
        if command.lower() == "help":
            out.print(escape(HELP))
            continue
        if command.lower() in {"quit", "exit"}:
            break
        observation, error, ended = session.step(command)
        if error is not None:
            problems += 1
            report(f"{lines.where(line)}{error} (counted as an action)")
        print("\n" + observation.text, flush=True)
        if ended:
            break
    reason = session.end_reason
    if reason == "answer" or (
        reason not in {"nonsense", "controversial", "abandoned"} and env.quotes
    ):
        problems += _read_answer(session, lines, out, report)
        if not session.answer:
            problems += 1
            after = " after End: Answer" if reason == "answer" else ""
            if reason == "answer":
                session.end_reason = "abandoned"
            report(
                f"no answer was written{after}; the session is saved as "
                f"{session.end_reason}, without an answer"
            )
    return problems


def _read_answer(
    session: Session, lines: Input, out: Console, report: Callable[[str], None]
) -> int:
    """Read the answer into ``session.answer`` (a line at a time, so that an interrupt
    keeps what was written): the rest of stdin, or typed lines up to an empty one.
    Returns how many of its lines had problems."""
    problems = 0
    if lines.interactive:
        out.print("Write the answer, citing quotes as [1], [2]; finish with an empty line.")
    kept: list[str] = []
    size = 0
    while True:
        line = lines.read("")
        if line is None:
            break
        if lines.interactive and not line.text.strip() and line.problem is None:
            if any(k.strip() for k in kept):
                break
            out.print("The answer is empty: write it (Ctrl-D gives up without one).")
            continue
        if line.problem is not None:
            problems += 1
            if not line.usable:
                report(f"{lines.where(line)}{line.problem}; skipped")
                continue
            report(f"{lines.where(line)}{line.problem}; kept with U+FFFD for the bad bytes")
        size += len(line.text) + 1
        if size > MAX_ANSWER_CHARS:
            problems += 1
            report(
                f"the answer is longer than {MAX_ANSWER_CHARS:,} characters; the rest is left out"
            )
            break
        kept.append(line.text)
        session.answer = "\n".join(kept).strip()
    return problems
