"""Answer files: crash-safe JSONL out, one record per question, resumable, locked.

Records are appended in the order questions finish. Each is written with one ``write`` of
the whole line, then flushed and fsynced, so a kill at any moment (SIGKILL included)
leaves at most a partial last line. Opening the file again drops that partial line and
reads which questions are done: a question's record is keyed by its id, a bad line's by
its line number. With ``retry_failed``, failed questions' records are dropped (the file
is rewritten atomically: a temporary file, fsync, rename) and those questions run again,
so every question appears exactly once in the file at every moment.

A lock next to the file (``filelock``: flock on Unix, a Windows lock there) keeps two
runs from writing it at once: the second is refused at once, in one line naming the
file. The lock file is removed when the run ends.

An output file that is not recognisably webqa's (every line a record, but for a last
line cut off mid-write) is refused and left untouched; so is one that is not a regular
file. Text that is not valid Unicode is written as ``\\udXXX`` escapes: nothing is lost.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import filelock

from webqa.errors import InputError, os_reason
from webqa.questionfile import BadLine, QuestionFile
from webqa.runner import Answered
from webqa.values import Question

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


class _LockMoved(Exception):
    """The lock file was removed or replaced between opening and locking it."""


class _Lock:
    """The lock ``.<name>.lock`` beside an answer file (``filelock``), its file removed
    when the run ends.

    filelock leaves a Unix lock file in place so that every contender locks the same
    file; removing it races with a run that opened it just before, which may then lock
    the removed file while a third run locks a new one. So each acquisition checks that
    the path still names the file it locked (else it lets go and tries again), and the
    holder removes the file before it lets go of the lock. On Windows filelock removes
    the file itself, once it is let go."""

    ATTEMPTS = 100  # another run removing it each time we look: give up, not hang

    def __init__(self, answers: Path) -> None:
        self.answers = answers
        self.path = answers.with_name(f".{answers.name}.lock")
        self._lock = filelock.FileLock(
            self.path, timeout=0, thread_local=False, on_acquired=self._still_there
        )

    @classmethod
    def take(cls, answers: Path) -> _Lock:
        """The lock of ``answers``, held; InputError at once if another run holds it."""
        lock = cls(answers)
        try:
            lock.path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(cls.ATTEMPTS):
                try:
                    lock._lock.acquire()
                except _LockMoved:
                    continue
                return lock
        except filelock.Timeout:
            raise InputError(f"{answers}: another webqa batch is writing this file") from None
        except OSError as error:
            raise InputError(f"{answers}: cannot write there: {os_reason(error)}") from None
        raise InputError(f"{answers}: could not lock it (its lock file {lock.path} keeps changing)")

    def _still_there(self, fd: int) -> None:
        try:
            same = os.path.samestat(os.stat(self.path), os.fstat(fd))
        except OSError:
            same = False
        if not same:
            raise _LockMoved(str(self.path))

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it (see the class)
        except OSError:
            pass  # Windows: an open file cannot be removed; or the folder became read-only
        finally:
            self._lock.release()
