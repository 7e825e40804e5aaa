"""The log: every episode webqa runs, kept in SQLite in the data directory.

One *run* is one question answered (by ``answer``, ``answer_many`` or ``webqa batch``);
it has one *episode* per best-of-n candidate, each with its steps (command, valid or
not, the message, the exact observation the model answered to), its quotes, its answer,
its reward score and whether it was chosen. A run also keeps the searches and fetches
its browsers made (``visits``; the n episodes of a question share one web, so visits
belong to the run) and, when it failed, its error.

The schema is an append-only list of migrations, applied in order and counted in
``PRAGMA user_version``. Every call opens its own connection (WAL, a busy timeout), so
threads and processes (shards of one batch) can log side by side.

A log that cannot be read is a ``StoreError`` naming its file. A log that cannot be
written never costs an answer: ``record_or_warn`` warns once (``LogWarning``) and the
answer goes on without its log entry. The log is never moved or rewritten to repair it:
what is in it stays for the user to rescue.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webqa.agent import AgentConfig, Candidate, Result
from webqa.answering import Reference
from webqa.errors import WebQAError, os_reason
from webqa.paths import data_dir
from webqa.web.recording import Visit

DB_NAME = "webqa.sqlite3"

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        created REAL NOT NULL,           -- unix time the question was started
        question TEXT NOT NULL,
        qid TEXT,                        -- the question's id in its batch, if any
        batch TEXT,                      -- the batch's output file, if any
        model TEXT,
        web TEXT,
        n INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        temperature REAL NOT NULL,
        answer TEXT,                     -- the chosen answer (NULL when it failed)
        best INTEGER,
        seconds REAL NOT NULL,
        error TEXT                       -- why it failed (NULL when it did not)
    );
    CREATE INDEX runs_created ON runs (created);
    CREATE TABLE episodes (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        idx INTEGER NOT NULL,            -- candidate number within the run
        chosen INTEGER NOT NULL,         -- 1 for the answer best-of-n returned
        answer TEXT NOT NULL,
        score REAL,                      -- reward score (NULL when n = 1)
        end_reason TEXT NOT NULL,
        removed_citations INTEGER NOT NULL,
        invalid_actions INTEGER NOT NULL,
        seconds REAL NOT NULL
    );
    CREATE INDEX episodes_run ON episodes (run_id);
    CREATE TABLE steps (
        episode_id INTEGER NOT NULL REFERENCES episodes (id),
        idx INTEGER NOT NULL,
        command TEXT NOT NULL,
        valid INTEGER NOT NULL,
        message TEXT NOT NULL,
        prompt TEXT NOT NULL,            -- the observation the model answered to
        PRIMARY KEY (episode_id, idx)
    );
    CREATE TABLE quotes (
        episode_id INTEGER NOT NULL REFERENCES episodes (id),
        n INTEGER NOT NULL,
        title TEXT NOT NULL,
        url TEXT NOT NULL,
        extract TEXT NOT NULL,
        PRIMARY KEY (episode_id, n)
    );
    CREATE TABLE visits (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        idx INTEGER NOT NULL,
        kind TEXT NOT NULL,              -- "search" | "fetch"
        target TEXT NOT NULL,            -- the query or the URL
        ok INTEGER NOT NULL,
        error TEXT,
        PRIMARY KEY (run_id, idx)
    );
    """,
)


class StoreError(WebQAError):
    """The log database is unreadable, from a newer webqa, or lacks the asked-for row."""


class LogWarning(UserWarning):
    """The log could not be written; the answer went on without it."""


BUSY_TIMEOUT = 30.0  # seconds a connection waits for another writer


def db_path() -> Path:
    """Where the log lives: ``webqa.sqlite3`` in the data directory."""
    return data_dir() / DB_NAME


def _where(path: Path | None) -> Path:
    """``path``, else the default log; StoreError if the data directory cannot be made."""
    if path is not None:
        return path
    try:
        return db_path()
    except OSError as error:
        raise StoreError(f"the data directory for the log cannot be used: {error}") from error


def connect(
    path: Path | None = None, *, migrations: Sequence[str] = MIGRATIONS
) -> sqlite3.Connection:
    """A connection to the log, its schema brought up to date."""
    path = _where(path)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        _use_wal(conn)
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, migrations)
    except BaseException as error:
        if conn is not None:
            conn.close()
        if isinstance(error, (sqlite3.Error, OSError)):
            raise StoreError(f"the log {path} is unreadable: {os_reason(error)}") from error
        raise
    return conn


@contextmanager
def _reading(path: Path | None) -> Iterator[sqlite3.Connection]:
    """A connection for reading the log; damage found while reading is a StoreError."""
    where = _where(path)
    with closing(connect(where)) as conn:
        try:
            yield conn
        except sqlite3.Error as error:
            raise StoreError(f"the log {where} is unreadable: {os_reason(error)}") from error


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. Switching needs the database to itself and SQLite's busy timeout
    does not cover it, so a new log opened by several threads at once retries here."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Apply the migrations ``conn`` has not seen, in order, atomically; the new version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == len(migrations):
        return version
    conn.execute("BEGIN IMMEDIATE")  # another process may be migrating too: re-read
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(migrations):
            raise StoreError(
                f"the log has schema version {version}, newer than this webqa knows "
                f"({len(migrations)}); upgrade webqa"
            )
        for number in range(version, len(migrations)):
            for statement in _statements(migrations[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(migrations)


def _statements(script: str) -> list[str]:
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def record(
    question: str,
    result: Result | None,
    *,
    config: AgentConfig,
    n: int,
    model: str | None,
    web: str | None = None,
    visits: Sequence[Visit] = (),
    started: float | None = None,
    seconds: float | None = None,
    error: str | None = None,
    qid: str | None = None,
    batch: str | None = None,
    path: Path | None = None,
) -> int:
    """Log one answered (or failed) question with all its episodes; the run's id.

    StoreError (naming the log) if it cannot be written. Text that is not valid Unicode
    (lone surrogates) is logged with those characters written as ``\\udXXX`` escapes."""
    started = started if started is not None else time.time()
    if seconds is None:
        seconds = result.seconds if result is not None else 0.0
    where = _where(path)
    try:
        with closing(connect(where)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                run_id = _insert_run(
                    conn, question, result, config, n, model, web, started, seconds, error,
                    qid, batch,
                )  # fmt: skip
                conn.executemany(
                    "INSERT INTO visits VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (run_id, i, _text(v.kind), _text(v.target), int(v.ok), _text(v.error))
                        for i, v in enumerate(visits)
                    ],
                )
                for idx, cand in enumerate(result.candidates if result is not None else ()):
                    chosen = result is not None and idx == result.best
                    _insert_episode(conn, run_id, idx, cand, chosen=chosen)
                conn.execute("COMMIT")
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the failure already ended the transaction, or the connection
                raise
    except (sqlite3.Error, OSError) as failure:
        raise StoreError(f"could not write to the log {where}: {os_reason(failure)}") from failure
    return run_id


_warned: set[str] = set()  # logs record_or_warn has already warned about
_warned_lock = threading.Lock()


def record_or_warn(
    question: str, result: Result | None, *, path: Path | None = None, **details: Any
) -> int | None:
    """``record(question, result, path=path, **details)``, for front doors: if the log
    cannot be written, warn (once per log in this process) and return None, so the answer
    goes on."""
    try:
        return record(question, result, path=path, **details)
    except StoreError as failure:
        try:
            where = str(_where(path))
        except StoreError:
            where = "(no data directory)"
        with _warned_lock:
            if where in _warned:
                return None
            _warned.add(where)
        cause = failure.__cause__
        why = os_reason(cause) if cause is not None else str(failure)
        warnings.warn(
            f"could not write to the log {where} ({why}); answers are not being logged",
            LogWarning,
            stacklevel=2,
        )
        return None


def _insert_episode(
    conn: sqlite3.Connection, run_id: int, idx: int, cand: Candidate, *, chosen: bool
) -> None:
    cur = conn.execute(
        "INSERT INTO episodes (run_id, idx, chosen, answer, score, end_reason,"
        " removed_citations, invalid_actions, seconds)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            idx,
            int(chosen),
            _text(cand.answer),
            cand.score,
            _text(cand.end_reason),
            cand.removed_citations,
            cand.invalid_actions,
            cand.seconds,
        ),
    )
    episode_id = cur.lastrowid
    conn.executemany(
        "INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?)",
        [
            (episode_id, i, _text(s.command), int(s.valid), _text(s.message), _text(s.prompt))
            for i, s in enumerate(cand.steps)
        ],
    )
    conn.executemany(
        "INSERT INTO quotes VALUES (?, ?, ?, ?, ?)",
        [
            (episode_id, r.n, _text(r.title), _text(r.url), _text(r.extract))
            for r in cand.references
        ],
    )


def _text(value: str | None) -> str | None:
    """``value`` as SQLite can store it: lone surrogates (not valid Unicode, so not
    encodable as UTF-8) become visible ``\\udXXX`` escapes."""
    if value is None or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _insert_run(
    conn: sqlite3.Connection,
    question: str,
    result: Result | None,
    config: AgentConfig,
    n: int,
    model: str | None,
    web: str | None,
    started: float,
    seconds: float,
    error: str | None,
    qid: str | None,
    batch: str | None,
) -> int:
    cur = conn.execute(
        "INSERT INTO runs (created, question, qid, batch, model, web, n, seed, temperature,"
        " answer, best, seconds, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            started,
            _text(question),
            _text(qid),
            _text(batch),
            _text(result.model if result is not None else model),
            _text(web),
            n,
            config.seed,
            config.temperature,
            _text(result.answer if result is not None else None),
            result.best if result is not None else None,
            seconds,
            _text(error),
        ),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


# -- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeSummary:
    """One line of ``webqa log``: an episode (or a run that failed before any)."""

    id: int | None  # the episode id; None for a failed run with no episode
    run_id: int
    created: float
    question: str
    model: str | None
    answer: str | None
    score: float | None
    chosen: bool
    candidates: int  # episodes in its run (n)
    error: str | None


@dataclass(frozen=True)
class LoggedStep:
    """One logged browsing step."""

    command: str
    valid: bool
    message: str
    prompt: str


@dataclass(frozen=True)
class EpisodeRecord:
    """Everything logged about one episode, for ``webqa log show``."""

    summary: EpisodeSummary
    end_reason: str
    seconds: float
    seed: int
    temperature: float
    web: str | None
    qid: str | None
    batch: str | None
    steps: tuple[LoggedStep, ...]
    quotes: tuple[Reference, ...]
    visits: tuple[Visit, ...]


_SUMMARY = """
    SELECT e.id, r.id, r.created, r.question, r.model, COALESCE(e.answer, r.answer),
           e.score, COALESCE(e.chosen, 0), r.n, r.error
    FROM runs r LEFT JOIN episodes e ON e.run_id = r.id
"""


def _summary(row: tuple[object, ...]) -> EpisodeSummary:
    eid, rid, created, question, model, answer, score, chosen, n, error = row
    return EpisodeSummary(
        id=eid if isinstance(eid, int) else None,
        run_id=int(str(rid)),
        created=float(str(created)),
        question=str(question),
        model=None if model is None else str(model),
        answer=None if answer is None else str(answer),
        score=None if score is None else float(str(score)),
        chosen=bool(chosen),
        candidates=int(str(n)),
        error=None if error is None else str(error),
    )


def recent(limit: int = 20, *, path: Path | None = None) -> list[EpisodeSummary]:
    """The latest ``limit`` episodes, newest first (failed runs included)."""
    with _reading(path) as conn:
        rows = conn.execute(
            _SUMMARY + " ORDER BY r.id DESC, e.idx ASC LIMIT ?", (max(0, limit),)
        ).fetchall()
    return [_summary(row) for row in rows]


def episode(episode_id: int, *, path: Path | None = None) -> EpisodeRecord:
    """Everything logged about one episode; StoreError if there is none."""
    with _reading(path) as conn:
        row = conn.execute(_SUMMARY + " WHERE e.id = ?", (episode_id,)).fetchone()
        if row is None:
            raise StoreError(f"no episode {episode_id} in the log {_where(path)}")
        summary = _summary(row)
        end_reason, seconds, seed, temperature, web, qid, batch = conn.execute(
            "SELECT e.end_reason, e.seconds, r.seed, r.temperature, r.web, r.qid, r.batch"
            " FROM episodes e JOIN runs r ON r.id = e.run_id WHERE e.id = ?",
            (episode_id,),
        ).fetchone()
        steps = conn.execute(
            "SELECT command, valid, message, prompt FROM steps WHERE episode_id = ? ORDER BY idx",
            (episode_id,),
        ).fetchall()
        quotes = conn.execute(
            "SELECT n, title, url, extract FROM quotes WHERE episode_id = ? ORDER BY n",
            (episode_id,),
        ).fetchall()
        visits = conn.execute(
            "SELECT kind, target, ok, error FROM visits WHERE run_id = ? ORDER BY idx",
            (summary.run_id,),
        ).fetchall()
    return EpisodeRecord(
        summary=summary,
        end_reason=end_reason,
        seconds=seconds,
        seed=seed,
        temperature=temperature,
        web=web,
        qid=qid,
        batch=batch,
        steps=tuple(LoggedStep(c, bool(v), m, p) for c, v, m, p in steps),
        quotes=tuple(Reference(n, t, u, x) for n, t, u, x in quotes),
        visits=tuple(Visit(k, t, bool(ok), e) for k, t, ok, e in visits),
    )
