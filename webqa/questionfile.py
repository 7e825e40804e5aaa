"""Question files: reading them, one line at a time, and sharding them.

``.txt`` (a question a line; blank lines are skipped), ``.jsonl`` (objects with
``question``, optional ``id``; other fields are carried through; blank lines are skipped),
``.csv`` (a header with a ``question`` column, optional ``id``; other columns are carried
through). A question's id is the file's ``id`` when it has one, else ``line-<n>``. A bad
line (malformed JSON, no question, an empty question, a duplicate id) becomes a
``BadLine`` naming its line; it never stops the others.

Hostile input stays one line's problem: a line nested too deeply, a number too long to
read, text that is not valid Unicode (a lone surrogate such as ``\\ud800``) each become
that line's ``BadLine``. A file larger than ``MAX_QUESTION_FILE`` is refused whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webqa.errors import InputError, open_input, os_reason
from webqa.values import Question, validate_question

SUFFIXES = (".txt", ".jsonl", ".csv")
MAX_QUESTION_FILE = 256 * 1024 * 1024  # bytes: a question file is read whole
MAX_DEPTH = 32  # nesting of a JSONL line's objects and arrays


@dataclass(frozen=True)
class BadLine:
    """A line of a question file that is not a question webqa can answer."""

    line: int
    index: int  # position among the file's entries (for sharding)
    message: str
    id: str | None = None
    question: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QuestionFile:
    """A question file, read: its good questions and its bad lines."""

    path: Path
    questions: tuple[Question, ...]
    bad: tuple[BadLine, ...]

    def shard(self, shard: tuple[int, int] | None) -> QuestionFile:
        """Only the entries of shard ``(i, N)`` (1-based i): index modulo N is i - 1."""
        if shard is None:
            return self
        i, count = shard
        return QuestionFile(
            self.path,
            tuple(q for q in self.questions if q.index % count == i - 1),
            tuple(b for b in self.bad if b.index % count == i - 1),
        )


def read_questions(path: Path) -> QuestionFile:
    """Read a question file; InputError (one line) if it cannot be read at all."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"{path}: unknown question file type {suffix or '(none)'!r}; "
            "expected .txt, .jsonl or .csv"
        )
    with open_input(path, "question file") as f:
        try:
            data = f.read(MAX_QUESTION_FILE + 1)
        except OSError as error:
            raise InputError(f"{path}: cannot read it: {os_reason(error)}") from None
    if len(data) > MAX_QUESTION_FILE:
        raise InputError(
            f"{path}: larger than {MAX_QUESTION_FILE // 2**20} MiB; split it into smaller files"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if suffix == ".csv":
        raw = list(_csv_rows(path, data))
    else:
        raw = list(_lines(data, jsonl=suffix == ".jsonl"))
    return _assemble(path, raw)


@dataclass(frozen=True)
class _Raw:
    line: int
    question: str | None = None
    id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


def _lines(data: bytes, *, jsonl: bool) -> Iterable[_Raw]:
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        try:
            text = raw_line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            yield _Raw(number, error=f"not UTF-8 text (byte {error.start + 1})")
            continue
        if not text.strip():
            continue
        yield _json_line(number, text) if jsonl else _Raw(number, question=text)


def _json_line(number: int, text: str) -> _Raw:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return _Raw(number, error=f"malformed JSON: {error.msg} (column {error.colno})")
    except RecursionError:
        return _Raw(number, error=f"JSON nested too deeply (at most {MAX_DEPTH} levels)")
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        return _Raw(number, error=f"unreadable JSON: {_first_clause(error)}")
    if not isinstance(value, dict):
        return _Raw(number, error=f"expected a JSON object, got {_json_type(value)}")
    if _too_deep(value):
        return _Raw(number, error=f"JSON nested too deeply (at most {MAX_DEPTH} levels)")
    extra = {k: v for k, v in value.items() if k not in ("question", "id")}
    qid, id_error = _id_of(value.get("id"))
    if id_error:
        return _Raw(number, extra=extra, error=id_error)
    if "question" not in value:
        return _Raw(number, id=qid, extra=extra, error='no "question" field')
    question = value["question"]
    if not isinstance(question, str):
        return _Raw(
            number, id=qid, extra=extra, error=f'"question" is {_json_type(question)}, not text'
        )
    for name, field_text in (("question", question), ("id", qid)):
        where = _lone_surrogate(field_text)
        if where is not None:  # carried as-is; the record is written with \\u escapes
            return _Raw(
                number,
                question=question,
                extra=extra,
                error=f'"{name}" is not valid Unicode (a lone surrogate {where})',
            )
    return _Raw(number, question=question, id=qid, extra=extra)


def _first_clause(error: ValueError) -> str:
    return str(error).split(";", 1)[0].split(": value has", 1)[0] or type(error).__name__


def _too_deep(value: object) -> bool:
    """Whether ``value`` nests objects/arrays more than ``MAX_DEPTH`` levels (iteratively:
    a deep value must not exhaust the stack here either)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _lone_surrogate(text: str | None) -> str | None:
    """Where ``text`` has a lone surrogate (which UTF-8 cannot encode), e.g.
    ``'\\ud800 at character 3'``; None if it has none."""
    if text is None or text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"{ascii(text[error.start])[1:-1]} at character {error.start + 1}"
    return None


def _id_of(value: object) -> tuple[str | None, str | None]:
    if value is None or value == "":
        return None, None
    if isinstance(value, str):
        return value, None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), None
    return None, f'"id" must be text or a whole number, got {_json_type(value)}'


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "text", bool: "true/false"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _csv_rows(path: Path, data: bytes) -> Iterable[_Raw]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (byte {error.start + 1})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise InputError(f"{path} line 1: malformed CSV header: {error}") from None
    if header is None or "question" not in header:
        raise InputError(f'{path}: the CSV header has no "question" column')
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield _Raw(line, error=f"malformed CSV: {error}")
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield _Raw(start, error=f"expected {len(header)} fields, got {len(row)}")
            continue
        values = dict(zip(header, row, strict=True))
        extra = {k: v for k, v in values.items() if k not in ("question", "id")}
        yield _Raw(start, question=values["question"], id=values.get("id") or None, extra=extra)


def _assemble(path: Path, raw: list[_Raw]) -> QuestionFile:
    questions: list[Question] = []
    bad: list[BadLine] = []
    first_line: dict[str, int] = {}
    for index, entry in enumerate(raw):
        key = entry.id if entry.id is not None else f"line-{entry.line}"
        message = entry.error
        question = entry.question
        if message is None and key in first_line:
            message = f"duplicate id {key!r} (first on line {first_line[key]})"
        first_line.setdefault(key, entry.line)
        if message is None:
            try:
                question = validate_question(entry.question or "")
            except InputError as error:
                message = str(error)
        if message is not None:
            bad.append(BadLine(entry.line, index, message, entry.id, entry.question, entry.extra))
        else:
            assert question is not None
            questions.append(Question(question, key, index, entry.line, entry.extra))
    return QuestionFile(path, tuple(questions), tuple(bad))


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 1 <= i <= N; InputError otherwise."""
    parts = text.split("/")
    try:
        i, count = (int(p) for p in parts) if len(parts) == 2 else (0, 0)
    except ValueError:
        i, count = 0, 0
    if count < 1 or not 1 <= i <= count:
        raise InputError(f"--shard takes i/N with 1 <= i <= N (e.g. 1/4 ... 4/4), got {text!r}")
    return i, count
