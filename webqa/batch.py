"""Question files in, answer files out: reading, sharding, crash-safe output, resume.

Question files: ``.txt`` (a question a line; blank lines are skipped), ``.jsonl``
(objects with ``question``, optional ``id``; other fields are carried through; blank
lines are skipped), ``.csv`` (a header with a ``question`` column, optional ``id``; other
columns are carried through). A question's id is the file's ``id`` when it has one, else
``line-<n>``. A bad line (malformed JSON, no question, an empty question, a duplicate id)
becomes a ``BadLine`` naming its line; it never stops the others.

Answer files are JSONL, one record per question, appended in the order questions finish.
Each record is written with one ``write`` of the whole line, then flushed and fsynced, so
a kill at any moment (SIGKILL included) leaves at most a partial last line. Opening the
file again drops that partial line and reads which questions are done: a question's
record is keyed by its id, a bad line's by its line number. With ``retry_failed``, failed
questions' records are dropped (the file is rewritten atomically: a temporary file, fsync,
rename) and those questions run again, so every question appears exactly once in the file
at every moment. A lock next to the file keeps two runs from writing it at once; it is
removed when the run ends.

Hostile input stays one line's problem: a line nested too deeply, a number too long to
read, text that is not valid Unicode (a lone surrogate such as ``\\ud800``) each become
that line's error record. An output file that is not recognisably webqa's (every line a
record, but for a last line cut off mid-write) is refused and left untouched; so is one
that is not a regular file, and a question file larger than ``MAX_QUESTION_FILE``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from webqa.batching import Answered
from webqa.errors import InputError, os_reason
from webqa.values import Question, validate_question

SUFFIXES = (".txt", ".jsonl", ".csv")
MAX_QUESTION_FILE = 256 * 1024 * 1024  # bytes: a question file is read whole
MAX_DEPTH = 32  # nesting of a JSONL line's objects and arrays
# Every record webqa writes has these fields, and starts with '{"id": '.
RECORD_FIELDS = frozenset({"id", "line", "question", "error", "error_type"})
RECORD_START = b'{"id": '
# Fields every answer record has; carried input fields with these names get "input_".
RESERVED = frozenset(
    {
        "id",
        "line",
        "question",
        "answer",
        "references",
        "best",
        "model",
        "seconds",
        "candidates",
        "started",
        "finished",
        "log_id",
        "error",
        "error_type",
    }
)


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


# -- reading ------------------------------------------------------------------------


def read_questions(path: Path) -> QuestionFile:
    """Read a question file; InputError (one line) if it cannot be read at all."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"{path}: unknown question file type {suffix or '(none)'!r}; "
            "expected .txt, .jsonl or .csv"
        )
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_QUESTION_FILE + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a question file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read it: {error.strerror or error}") from None
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


def default_output(questions: Path, shard: tuple[int, int] | None = None) -> Path:
    """``q.jsonl`` -> ``q.answers.jsonl`` (``q.answers.2of4.jsonl`` for shard 2/4)."""
    tag = f".{shard[0]}of{shard[1]}" if shard else ""
    return questions.with_name(f"{questions.stem}.answers{tag}.jsonl")


# -- records ------------------------------------------------------------------------


def answer_record(answered: Answered) -> dict[str, Any]:
    """The output record of one finished question (``ask --json`` fields, and more)."""
    q = answered.question
    record: dict[str, Any] = {"id": q.id, "line": q.line, "question": q.text}
    record.update(_carried(q.extra))
    result = answered.result
    if result is not None:
        fields = result.to_dict()
        fields.pop("question", None)
        record.update(fields)
    else:
        record.update(answer=None, references=[], best=None, model=None, candidates=[])
        record["seconds"] = round(answered.seconds, 3)
    record["started"] = _iso(answered.started)
    record["finished"] = _iso(answered.started + answered.seconds)
    record["log_id"] = answered.log_id
    record["error"] = answered.error
    record["error_type"] = answered.error_type
    return record


def bad_line_record(bad: BadLine) -> dict[str, Any]:
    """The output record of a bad line: its id and question if known, and the error."""
    record: dict[str, Any] = {
        "id": bad.id if bad.id is not None else f"line-{bad.line}",
        "line": bad.line,
        "question": bad.question,
    }
    record.update(_carried(bad.extra))
    record.update(answer=None, references=[], best=None, model=None, seconds=0.0, candidates=[])
    record.update(error=bad.message, error_type="input")
    return record


def _carried(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {(f"input_{k}" if k in RESERVED else k): v for k, v in extra.items()}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def record_key(record: Mapping[str, Any]) -> tuple[str, str]:
    """What makes a record unique: ("line", n) for a bad line, else ("id", id)."""
    if record.get("error_type") == "input":
        return "line", str(record.get("line"))
    return "id", str(record.get("id"))


# -- the answer file ----------------------------------------------------------------


class AnswerFile:
    """An append-only JSONL answer file that survives being killed at any moment."""

    def __init__(self, path: Path, records: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.path = path
        self.records = records  # key -> record, as in the file now
        self.repaired: list[str] = []  # what opening it fixed (for the user to see)
        self._fd: int | None = None
        self._lock: _Lock | None = None

    @classmethod
    def open(
        cls,
        path: Path,
        questions: QuestionFile,
        *,
        shard: tuple[int, int] | None = None,
        retry_failed: bool = False,
    ) -> AnswerFile:
        """Lock, read and (when needed) repair ``path``; then open it for appending.

        Dropped on opening (the file rewritten atomically): a partial last line, records
        of bad lines the question file no longer has, and with ``retry_failed`` the failed
        records of the questions in ``shard`` (``questions`` is the whole file).
        InputError, the file untouched, if it is not webqa's answer file (a line that is
        not a record), if a record answers a different question than the file now asks
        under the same id, if another run holds the file, or if it cannot be written.
        """
        if _same_file(path, questions.path):
            raise InputError(f"{path}: the output would overwrite the question file")
        _check_writable_kind(path)
        lock = _Lock.take(path)
        try:
            lines, problems = _read_output(path, strict=True)
            bad_now = {(str(b.line), b.message) for b in questions.bad}
            asked = {q.id: q for q in questions.questions}
            mine = {q.id for q in questions.shard(shard).questions}
            keep: dict[tuple[str, str], dict[str, Any]] = {}
            dropped_failed = 0
            for record in lines:
                key = record_key(record)
                if key[0] == "line" and (key[1], record.get("error")) not in bad_now:
                    problems.append(f"dropped the stale error record of line {key[1]}")
                    continue
                q = asked.get(key[1]) if key[0] == "id" else None
                if q is not None and record.get("question") != q.text:
                    shown = ascii(record.get("question"))
                    raise InputError(
                        f"{path} already answers id {q.id!r} for a different question "
                        f"(line {record.get('line')}: {_clip(shown, 200)}); "
                        "use another output file (-o)"
                    )
                failed = key[0] == "id" and record.get("error") is not None
                if retry_failed and failed and key[1] in mine:
                    dropped_failed += 1
                    continue
                if key in keep:  # cannot happen with webqa's own writes; the later wins
                    problems.append(f"dropped an earlier record of {key[0]} {key[1]}")
                keep[key] = record
            answers = cls(path, keep)
            if problems or dropped_failed:
                _rewrite(path, keep.values())
            answers.repaired = problems
            if dropped_failed:
                answers.repaired.append(f"retrying {dropped_failed} failed question(s)")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError as error:
                raise InputError(f"{path}: cannot write it: {os_reason(error)}") from None
            answers._lock = lock
            answers._fd = fd
        except BaseException:
            lock.release()
            raise
        return answers

    def done(self, question: Question) -> bool:
        """Whether ``question`` already has a record (answered, or failed)."""
        return ("id", question.id) in self.records

    def has_bad_line(self, bad: BadLine) -> bool:
        return ("line", str(bad.line)) in self.records

    def write(self, record: dict[str, Any]) -> None:
        """Append one record: one write of the whole line, flush, fsync."""
        if self._fd is None:
            raise ValueError("the answer file is closed")
        data = _encode(record)
        view = memoryview(data)
        try:
            while view:  # a regular file takes it whole; loop only for the paranoid case
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as error:
            raise InputError(f"{self.path}: cannot write it: {os_reason(error)}") from None
        self.records[record_key(record)] = record

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> AnswerFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_records(path: Path) -> list[dict[str, Any]]:
    """The complete records of an answer file, in file order (a partial line skipped)."""
    return _read_output(path)[0]


def _encode(record: Mapping[str, Any]) -> bytes:
    """One record as one line of UTF-8 JSON. Text that is not valid Unicode (lone
    surrogates, which UTF-8 cannot encode) is written as ``\\udXXX`` escapes, which read
    back as the same text: nothing is lost."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")


def _is_record(value: object) -> bool:
    return isinstance(value, dict) and RECORD_FIELDS <= value.keys()


def _read_output(path: Path, *, strict: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """The records of an answer file and what reading it had to repair. With ``strict``,
    InputError if the file is not recognisably webqa's: every line must be a record but
    the last, which may be a record cut off mid-write (it starts as records do)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as error:
        raise InputError(f"{path}: cannot read it: {os_reason(error)}") from None
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    pieces = data.split(b"\n")
    for number, piece in enumerate(pieces, start=1):
        last = number == len(pieces)
        if not piece.strip():
            continue
        try:
            value = json.loads(piece.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            value = None
        if _is_record(value):
            records.append(value)
            if last:
                problems.append("added the missing newline at the end")
        elif last and piece.startswith(RECORD_START):
            problems.append("dropped a partial last line (the previous run was cut off)")
        elif strict:
            raise InputError(
                f"{path} is not a webqa answer file (line {number} is not an answer record); "
                "refusing to write into it: choose another output file (-o)"
            )
        elif last:
            problems.append("dropped a partial last line (the previous run was cut off)")
        else:
            problems.append(f"dropped line {number}: not a JSON record")
    return records, problems


def _rewrite(path: Path, records: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            for record in records:
                f.write(_encode(record))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot rewrite it: {os_reason(error)}") from None
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open folders; the rename is durable enough there
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename has happened
    finally:
        os.close(fd)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and a.samefile(b))
    except (OSError, RuntimeError):  # a symlink loop, say: the checks below will tell
        return False


def _check_writable_kind(path: Path) -> None:
    """InputError unless ``path`` is absent or a regular file (reading a FIFO or a device
    such as /dev/zero would hang or never end)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise InputError(f"{path}: cannot use it as the output: {os_reason(error)}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory; give a file for the output (-o)")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: is not a regular file; give a file for the output (-o)")


class _Lock:
    """An exclusive lock on ``.<name>.lock`` beside an answer file, removed on release.

    Removing a lock file races with a run that opened it just before: that run may then
    lock the removed file. So after locking, a run checks that the path still names the
    file it locked, and tries again if not; and the holder removes the file before it
    lets go of the lock."""

    def __init__(self, path: Path, handle: IO[bytes], locked: bool) -> None:
        self.path = path
        self._handle: IO[bytes] | None = handle
        self._locked = locked

    @classmethod
    def take(cls, answers: Path) -> _Lock:
        path = answers.with_name(f".{answers.name}.lock")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run at a time is on the user
            return cls(path, cls._open(answers, path), locked=False)
        for _ in range(100):  # another run removing it each time we look: give up, not hang
            handle = cls._open(answers, path)
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise InputError(f"{answers}: another webqa batch is writing this file") from None
            try:
                current = os.stat(path)
            except OSError:
                current = None
            mine = os.fstat(handle.fileno())
            if current is not None and (current.st_dev, current.st_ino) == (
                mine.st_dev,
                mine.st_ino,
            ):
                return cls(path, handle, locked=True)
            handle.close()  # the previous holder removed it meanwhile: lock the new one
        raise InputError(f"{answers}: could not lock it (its lock file {path} keeps changing)")

    @staticmethod
    def _open(answers: Path, path: Path) -> IO[bytes]:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return open(path, "ab")  # noqa: SIM115 (held open while the run lasts)
        except OSError as error:
            raise InputError(f"{answers}: cannot write there: {os_reason(error)}") from None

    def release(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        if not self._locked:  # Windows: an open file cannot be removed
            handle.close()
        try:
            self.path.unlink(missing_ok=True)  # while still holding it (see the class)
        except OSError:
            pass  # another run has it open (Windows), or the folder became read-only
        finally:
            handle.close()
