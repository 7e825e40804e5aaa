"""Behaviour cloning's data: a scripted expert that makes demonstrations, and the
training examples any demonstration gives (``webqa policy demos`` and ``policy train``).

The expert answers a question whose answer and evidence are known (a row of
``benchmarks/questions/*.jsonl``: ``question``, ``answers``, ``answerable``, ``sources``,
``evidence``) the way the guided procedure lets a small model browse, on a real
``BrowserEnv`` laid out by that procedure (``episode.new_episode``): the procedure's
first search (the question), a click on the result titled as the evidence's page (the
last source: a two-hop question's second page), a quote of the passage holding the
evidence, ``End: Answer``, and an answer that states the first gold answer and cites
[1]. Where the procedure admits a quote that holds the evidence (the shortlist's,
greedy first, then sampled), it quotes the shortest such; otherwise the evidence
itself, marked ``"admitted": false``. Nothing is clicked or quoted out of view: the
result must be in the window the results page shows and the quote in the window the
page opened at, as a model copying from what it sees could. Anything else skips the
row with its reason (``ExpertReport.skipped``): an unanswerable question (the guided
grammar never declines), the page not among the results, the evidence not in view,
a command the browser refused.

On the first 50 rows of ``corpus_train.jsonl``, over the embedded corpus with MiniLM's
shortlist, it made 23 demonstrations (all 7 wiki rows, 16 of 20 Factbook rows) in 62 s;
it skipped 13 unanswerable rows, 9 two-hop rows whose second page is not among the
question's results, and 5 rows (4 Factbook, 1 two-hop) whose evidence lay outside the
window its page opened at. Every one of the 23 quotes is one the guided grammar admits.

A demonstration is saved as ``webqa browse`` saves a person's (``webqa.demos``), each
step a dict with its ``command``, ``valid`` and ``error``, plus what training needs:
``observation`` (the text the browser showed before the command), ``prompt`` (the
browsing prompt's template there, ``course.prompt_at``), ``asked`` (whether the
procedure asks the policy for this step: its first search and a step whose grammar
admits one command are taken without it) and ``admitted`` (whether the procedure's
grammar admits the command). The chat itself is not stored: the observation and the
prompt's name rebuild it exactly (``browse_chat``), with the prompt as it is when
training runs, and without ~3 KB of system prompt a step.

``training_examples`` turns demonstrations (a person's or the expert's: the same
format trains the same way) into ``Example``s: each asked, valid step's chat exactly as
the policy sees it (``browsing.browse_chat(observation, prompt)``) and its command, then
the answer prompt (``answering.answer_chat(question, quotes)``) and the answer. A step
with no ``prompt`` gets the guided one (a small model's); a step the procedure decided
(``"asked": false``) or that the browser refused is left out and counted. A quote that
failed, or whose text was not in the observation shown when it was taken, an answer
missing after ``End: Answer``, or a citation of a quote that does not exist is an
InputError naming the file and line: such a demonstration would teach the policy to
cite what it never read. A demonstration that ended without answering (abandoned,
declined) is skipped and counted. A step without its observation is an InputError too
(``webqa browse`` does not keep a person's observations yet).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webqa import demos
from webqa.answering import answer_chat, cleaned, ungrounded
from webqa.browser.commands import InvalidCommandError, QuoteText, parse_command
from webqa.browser.env import BrowserEnv, Observation, StepResult
from webqa.browser.page import label, normalize, plain_line, quote_needle
from webqa.browsing import browse_chat
from webqa.episode import new_episode
from webqa.errors import InputError, StorageError, one_line, os_reason
from webqa.jsonl import MAX_LINE_BYTES, read_jsonl
from webqa.models.policy_train import Example
from webqa.procedure import FOLLOW_UP_PROMPT, Course, Free, GuidedCourse, Procedure
from webqa.text import find_citations
from webqa.values import Quote
from webqa.web.base import Web

MAX_ACTIONS = 20  # as AgentConfig: the actions left an observation shows
SAMPLED = 1.0  # a temperature above 0: the grammar of a sampled episode (wider shortlist)
# the browsing prompts a step may name (a file's text never names another file to read)
BROWSE_PROMPTS = (GuidedCourse.prompt, Free.prompt, FOLLOW_UP_PROMPT)
DEFAULT_PROMPT = GuidedCourse.prompt  # a step that names none: a small model's

# why the expert skipped a row
UNANSWERABLE = "unanswerable (the guided grammar never declines)"
NO_EVIDENCE = "no answer, evidence or source page given"
NOT_IN_RESULTS = "the evidence's page is not among the question's results"
RESULT_OUT_OF_VIEW = "the evidence's page is in the results but not in view"
PASSED_OVER = "the procedure leaves the evidence's page unread"
EVIDENCE_OUT_OF_VIEW = "the evidence is not in view where the page opens"
REFUSED = "the browser refused a command"
UNGROUNDED = "no answer sentence passes the answer checks"


# --------------------------------------------------------------------------- the expert


@dataclass(frozen=True)
class Row:
    """A question with its known answer and evidence (a questions file's row)."""

    question: str
    answers: tuple[str, ...]
    answerable: bool
    sources: tuple[str, ...]  # page titles, in hop order
    evidence: tuple[str, ...]  # the line(s) or sentence(s) that state the answer
    id: str = ""
    kind: str = ""
    line: int = 0


@dataclass
class ExpertReport:
    """What the expert made of its rows: demonstrations, and skipped rows by reason."""

    rows: int = 0
    made: int = 0
    admitted_quotes: int = 0  # of the demonstrations, quotes the guided grammar admits
    skipped: Counter[str] = field(default_factory=Counter)
    made_by_kind: Counter[str] = field(default_factory=Counter)
    skipped_by_kind: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "made": self.made,
            "admitted_quotes": self.admitted_quotes,
            "skipped": dict(self.skipped.most_common()),
            "made_by_kind": dict(self.made_by_kind.most_common()),
            "skipped_by_kind": dict(self.skipped_by_kind.most_common()),
            "seconds": round(self.seconds, 2),
        }


class Skip(Exception):
    """A row the expert cannot demonstrate; the message says why (one of the reasons)."""


def demonstrate(
    row: Row, web: Web, procedure: Procedure, *, max_actions: int = MAX_ACTIONS
) -> demos.Demonstration:
    """The expert's demonstration of ``row`` (see the module's docstring); Skip if it
    cannot make one."""
    if not row.answerable:
        raise Skip(UNANSWERABLE)
    if not row.answers or not row.sources or not row.evidence:
        raise Skip(NO_EVIDENCE)
    course = procedure.start(row.question)
    episode = new_episode(
        0,
        row.question,
        web,
        course,
        max_actions=max_actions,
        seed=0,
        temperature=0.0,
        started=time.time(),
    )
    recorder = _Recorder(episode.env, course, episode.observation)
    opening = course.opening(recorder.observation)
    if opening is None:
        raise InputError(f"the {type(procedure).__name__} procedure names no first command")
    recorder.step(opening, asked=False)
    results = recorder.observation
    want = label(row.sources[-1]).replace("†", "+")  # as the results page writes a title
    page = results.page
    link = next((k for k in page.links if k.text == want), None) if page else None
    if link is None:
        raise Skip(NOT_IN_RESULTS)
    if f"【{link.id}†" not in _window(results.text):
        raise Skip(RESULT_OUT_OF_VIEW)
    recorder.step(f"Clicked on link {link.id}")
    opened = recorder.observation
    if course.grammar(opened, 0.0).only() == "Back":
        raise Skip(PASSED_OVER)
    quote = _quote(row, course, opened)
    if quote is None:
        raise Skip(EVIDENCE_OUT_OF_VIEW)
    recorder.step(f"Quote: {quote}")
    recorder.step("End: Answer")
    if recorder.end_reason != "answer":
        raise Skip(REFUSED)
    quotes = recorder.env.quotes
    answer = _answer(row, quotes)
    if answer is None:
        raise Skip(UNGROUNDED)
    return demos.Demonstration(
        question=recorder.env.observation.question,
        steps=recorder.steps,
        quotes=list(quotes),
        answer=answer,
        end_reason="answer",
        web=web.name,
        id=f"expert-{row.id}" if row.id else f"expert-line-{row.line}",
    )


class _Recorder:
    """Takes the expert's commands on ``env``, recording each step as training needs it."""

    def __init__(self, env: BrowserEnv, course: Course, observation: Observation) -> None:
        self.env = env
        self.course = course
        self.observation = observation
        self.steps: list[dict[str, object]] = []
        self.end_reason = ""

    def step(self, command: str, *, asked: bool | None = None) -> StepResult:
        before = self.observation
        if asked is None:  # as ``browsing.browse`` decides it for a greedy episode
            asked = self.course.grammar(before, 0.0).only() is None
        admitted = not asked or self.course.grammar(before, SAMPLED).complete(command)
        result = self.env.step(command)
        error = result.info.get("error")
        self.steps.append(
            {
                "command": command,
                "valid": error is None,
                "error": error,
                "observation": before.text,
                "prompt": self.course.prompt_at(before),
                "asked": asked,
                "admitted": admitted,
            }
        )
        if error is not None:
            raise Skip(f"{REFUSED}: {command[:60]}: {error}")
        self.observation = result.observation
        if result.terminated or result.truncated:
            self.end_reason = str(result.info.get("end_reason", "ended"))
        return result


def _quote(row: Row, course: Course, observation: Observation) -> str | None:
    """What the expert quotes on the evidence's page: the shortest quote the procedure
    admits that holds the evidence and is in view (greedy's choices first, then a
    sampled episode's), else the evidence itself if it is in view; None if neither."""
    for evidence in row.evidence:
        needle = quote_needle(one_line(evidence))
        if not needle:
            continue
        for temperature in (0.0, SAMPLED):
            choices = course.grammar(observation, temperature).choices() or ()
            fits = [
                c.removeprefix("Quote: ")
                for c in choices
                if c.startswith("Quote: ")
                and needle in normalize(c)
                and in_view(observation.text, c.removeprefix("Quote: "))
            ]
            if fits:
                return min(fits, key=len)
        if in_view(observation.text, one_line(evidence)):
            return one_line(evidence)
    return None


def _answer(row: Row, quotes: Sequence[Quote]) -> str | None:
    """An answer sentence that states the first gold answer and cites [1]: the evidence
    itself where it is one sentence holding the answer, else the answer alone; the
    first that the answer pipeline keeps as written (``answering.cleaned``) and finds
    grounded in the quote (``answering.ungrounded``)."""
    gold = one_line(row.answers[0])
    tries = []
    for evidence in row.evidence:
        sentence = one_line(evidence)
        if "\n" not in evidence.strip() and sentence.endswith(".") and gold in sentence:
            tries.append(f"{sentence[:-1].rstrip()} [1].")
    tries.append(f"{gold} [1].")
    for text in tries:
        kept, _ = cleaned(row.question, text, quotes)
        if kept == text and not ungrounded(row.question, text, quotes):
            return text
    return None


def run_expert(
    rows: Iterable[Row],
    web: Web,
    procedure: Procedure,
    *,
    limit: int | None = None,
    progress: Callable[[int, ExpertReport], None] | None = None,
) -> tuple[list[demos.Demonstration], ExpertReport]:
    """The expert over ``rows`` (the first ``limit`` of them): its demonstrations, in
    row order, and its report. ``progress(rows_done, report)`` after each row."""
    report = ExpertReport()
    made: list[demos.Demonstration] = []
    started = time.perf_counter()
    for row in rows:
        if limit is not None and report.rows >= limit:
            break
        report.rows += 1
        try:
            demo = demonstrate(row, web, procedure)
        except Skip as skip:
            reason = str(skip).split(": ", 1)[0] if str(skip).startswith(REFUSED) else str(skip)
            report.skipped[reason] += 1
            report.skipped_by_kind[row.kind or "?"] += 1
        else:
            made.append(demo)
            report.made += 1
            report.made_by_kind[row.kind or "?"] += 1
            report.admitted_quotes += sum(
                bool(s.get("admitted"))
                for s in demo.steps
                if str(s["command"]).startswith("Quote:")
            )
        report.seconds = time.perf_counter() - started
        if progress is not None:
            progress(report.rows, report)
    return made, report


def read_rows(path: str | Path) -> list[Row]:
    """The rows of a questions file (JSONL: ``question``, ``answers``, ``answerable``,
    ``sources`` [{title}] or titles, ``evidence`` text or a list; ``id``, ``kind``
    optional); a malformed row is an InputError naming the file and line."""
    rows = []
    for number, value in read_jsonl(path):
        where = f"{path} line {number}"
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a JSON object")
        question = value.get("question")
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"{where}: no question")
        answers = _strings(value.get("answers", []), f"{where}: answers")
        sources = []
        for source in _list(value.get("sources", []), f"{where}: sources"):
            title = source.get("title") if isinstance(source, dict) else source
            if not isinstance(title, str):
                raise InputError(f"{where}: a source without a title")
            sources.append(title)
        evidence = value.get("evidence", [])
        evidence = [evidence] if isinstance(evidence, str) else evidence
        rows.append(
            Row(
                question=question,
                answers=tuple(answers),
                answerable=bool(value.get("answerable", bool(answers))),
                sources=tuple(sources),
                evidence=tuple(_strings(evidence, f"{where}: evidence")),
                id=str(value.get("id") or ""),
                kind=str(value.get("kind") or ""),
                line=number,
            )
        )
    return rows


def write_demonstrations(made: Sequence[demos.Demonstration], path: str | Path) -> Path:
    """Write ``made`` to ``path`` as JSONL, whole or not at all (a temporary file beside
    it, renamed). An existing file is replaced only if it is empty or holds
    demonstrations (its first line is one); anything else is refused."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give a file name for the demonstrations")
    if target.is_file() and target.stat().st_size > 0:
        with open(target, "rb") as f:
            first = f.readline(MAX_LINE_BYTES)
        try:
            _demonstration(json.loads(first), str(target), 1)
        except (InputError, ValueError, RecursionError):
            raise InputError(
                f"{target}: exists and is not a demonstrations file; refusing to replace it"
            ) from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=target.parent)
    except OSError as exc:
        raise StorageError(f"{target}: cannot write: {os_reason(exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for demo in made:
                f.write(demos.to_json(demo) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(name, 0o644)  # mkstemp's 0600 would hide it from other users
        os.replace(name, target)
    except OSError as exc:
        raise StorageError(f"{target}: cannot write: {os_reason(exc)}") from None
    finally:
        if os.path.exists(name):
            os.unlink(name)
    return target


# ------------------------------------------------------------ demonstrations -> examples


@dataclass(frozen=True)
class TrainingSet:
    """The examples a demonstrations file gives, and what was left out (counted)."""

    examples: list[Example]
    demonstrations: int  # read
    used: int  # that gave examples
    unanswered: int  # skipped: ended without an answer (abandoned, declined)
    steps: int  # steps read, in the demonstrations used
    decided_steps: int  # left out: the procedure took them without asking the policy
    invalid_steps: int  # left out: the browser refused them (not a quote)
    unadmitted_quotes: int  # kept: quotes the guided grammar does not admit

    def summary(self) -> dict[str, int]:
        return {
            "demonstrations": self.demonstrations,
            "used": self.used,
            "unanswered": self.unanswered,
            "steps": self.steps,
            "decided_steps": self.decided_steps,
            "invalid_steps": self.invalid_steps,
            "unadmitted_quotes": self.unadmitted_quotes,
            "browse_examples": sum(e.kind == "browse" for e in self.examples),
            "answer_examples": sum(e.kind == "answer" for e in self.examples),
        }


def read_demonstrations(path: str | Path) -> list[tuple[int, demos.Demonstration]]:
    """Every demonstration of a JSONL file (as ``webqa browse`` and ``policy demos``
    write them) with its line number; a malformed one is an InputError naming the file
    and line."""
    return [(n, _demonstration(value, str(path), n)) for n, value in read_jsonl(path)]


def training_examples(
    numbered: Iterable[tuple[int, demos.Demonstration]], source: str = "demonstrations"
) -> TrainingSet:
    """The examples of demonstrations read with their line numbers (see the module's
    docstring for what is left out and what is an error)."""
    examples: list[Example] = []
    read = used = unanswered = steps = decided = invalid = unadmitted = 0
    for number, demo in numbered:
        read += 1
        where = f"{source} line {number}"
        if not demo.answer.strip():
            if demo.end_reason == "answer":
                raise InputError(f"{where}: it ended with End: Answer but has no answer")
            unanswered += 1
            continue
        if not demo.quotes:
            raise InputError(f"{where}: it has an answer but no quotes to write it from")
        cited = [n for n in find_citations(demo.answer) if not 1 <= n <= len(demo.quotes)]
        if cited:
            raise InputError(
                f"{where}: the answer cites [{cited[0]}] but there are {len(demo.quotes)} quote(s)"
            )
        used += 1
        for index, step in enumerate(demo.steps, 1):
            steps += 1
            here = f"{where} step {index}"
            command = _text(step, "command", here)
            is_quote = command.startswith("Quote:")
            if step.get("valid") is False:
                if is_quote:
                    error = step.get("error") or "refused"
                    raise InputError(f"{here}: the quote failed ({error}): {command[:80]}")
                invalid += 1
                continue
            if step.get("asked") is False:
                decided += 1
                continue
            observation = _text(step, "observation", here)
            prompt = step.get("prompt", DEFAULT_PROMPT)
            if prompt not in BROWSE_PROMPTS:
                known = ", ".join(BROWSE_PROMPTS)
                raise InputError(f"{here}: unknown prompt {str(prompt)[:40]!r} (known: {known})")
            if is_quote:
                _check_quote(command, observation, here)
                unadmitted += step.get("admitted") is False
            chat = browse_chat(_shown(observation, demo.question), str(prompt))
            examples.append(Example(chat, command, "browse", here))
        chat = answer_chat(demo.question, demo.quotes)
        examples.append(Example(chat, demo.answer.strip(), "answer", f"{where} answer"))
    return TrainingSet(examples, read, used, unanswered, steps, decided, invalid, unadmitted)


def train_on_demonstrations(path: str | Path, out_dir: str | Path, **settings: Any) -> Any:
    """Read ``path``, turn it into examples and train on them
    (``webqa.models.policy_train.train_policy``, whose keyword ``settings`` these take);
    the report carries the demonstrations' counts in ``data``."""
    from webqa.models.policy_train import train_policy

    found = training_examples(read_demonstrations(path), str(path))
    if not found.examples:
        raise InputError(
            f"{path}: nothing to train on ({found.demonstrations} demonstration(s), "
            f"{found.unanswered} without an answer)"
        )
    return train_policy(found.examples, out_dir, data=found.summary(), **settings)


def in_view(observation: str, quote: str) -> bool:
    """Whether ``quote`` (a quote's text, or ``start━end``) is in the page window of
    ``observation`` (its ``●Text`` lines, link markup read as the link's text, lines
    joined, case and spacing ignored)."""
    view = normalize(" ".join(plain_line(line) for line in _window(observation).splitlines()))
    try:
        parsed = parse_command(f"Quote: {quote}")
    except InvalidCommandError:
        return False
    if not isinstance(parsed, QuoteText):
        return False
    start = quote_needle(parsed.text)
    at = view.find(start) if start else -1
    if at < 0:
        return False
    return parsed.end is None or quote_needle(parsed.end) in view[at + len(start) :]


def _window(observation: str) -> str:
    """The ``●Text`` section of an observation (page text cannot hold "●": the browser
    replaces it)."""
    _, found, rest = observation.partition("\n●Text\n")
    return rest.split("\n●", 1)[0] if found else ""


def _check_quote(command: str, observation: str, where: str) -> None:
    try:
        parsed = parse_command(command)
    except InvalidCommandError as exc:
        raise InputError(f"{where}: not a command the browser takes: {exc}") from None
    if not isinstance(parsed, QuoteText):
        raise InputError(f"{where}: not a quote: {command[:80]}")
    quote = command.removeprefix("Quote:").strip()
    if not in_view(observation, quote):
        raise InputError(
            f"{where}: the quote is not in the page text shown when it was taken: {command[:80]}"
        )


def _shown(text: str, question: str) -> Observation:
    """An observation that was shown as ``text``: what ``browse_chat`` reads of one."""
    return Observation(text, question, None, 0, (), 0)


def _demonstration(value: Any, source: str, number: int) -> demos.Demonstration:
    where = f"{source} line {number}"
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object (a demonstration)")
    question = value.get("question")
    if not isinstance(question, str) or not question.strip():
        raise InputError(f"{where}: no question")
    raw_steps = _list(value.get("steps"), f"{where}: steps")
    steps: list[dict[str, object]] = []
    for index, step in enumerate(raw_steps, 1):
        if not isinstance(step, dict) or not isinstance(step.get("command"), str):
            raise InputError(f"{where} step {index}: expected an object with a command")
        steps.append(step)
    quotes = []
    for index, item in enumerate(_list(value.get("quotes"), f"{where}: quotes"), 1):
        fields = ("title", "url", "domain", "text")
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in fields):
            raise InputError(f"{where} quote {index}: expected title, url, domain and text")
        quotes.append(Quote(*(str(item[k]) for k in fields)))
    answer = value.get("answer", "")
    if not isinstance(answer, str):
        raise InputError(f"{where}: the answer is not text")
    extra: dict[str, Any] = {}
    if isinstance(value.get("id"), str):
        extra["id"] = value["id"]
    if isinstance(value.get("created"), int | float):
        extra["created"] = float(value["created"])
    return demos.Demonstration(
        question=question,
        steps=steps,
        quotes=quotes,
        answer=answer,
        end_reason=str(value.get("end_reason") or ""),
        web=str(value.get("web") or ""),
        **extra,
    )


def _text(step: Mapping[str, object], key: str, where: str) -> str:
    value = step.get(key)
    if not isinstance(value, str):
        hint = (
            " (the text the browser showed before it; demonstrations saved without it "
            "cannot be trained on)"
            if key == "observation"
            else ""
        )
        raise InputError(f"{where}: no {key}{hint}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InputError(f"{where}: expected a list")
    return value


def _strings(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    if not all(isinstance(item, str) for item in items):
        raise InputError(f"{where}: expected a list of text")
    return list(items)
