"""Writing the log: one run, its episodes, steps, quotes and visits, in one transaction.

A log that cannot be written never costs an answer: ``record_or_warn`` warns once per
log (``LogWarning``) and the answer goes on without its log entry.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from webqa.agent import AgentConfig
from webqa.errors import os_reason
from webqa.sqlitedb import write_transaction
from webqa.store.db import StoreError, connect, resolve
from webqa.values import Candidate, Result
from webqa.web.recording import Visit


class LogWarning(UserWarning):
    """The log could not be written; the answer went on without it."""


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
    where = resolve(path)
    try:
        with closing(connect(where)) as conn:
            with write_transaction(conn):
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
            where = str(resolve(path))
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
