"""Writing the log: one run, its episodes, steps, quotes and visits, in one transaction;
and comparisons of two answers (``webqa compare``'s judgements, imported ones).

A log that cannot be written never costs an answer: ``record_or_warn`` warns once per
log (``LogWarning``) and the answer goes on without its log entry. A judgement is
different: a person made it, so a log that cannot take it is an error (``StoreError``).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from webqa.agent import AgentConfig
from webqa.comparisons import Comparison
from webqa.errors import InputError, os_reason
from webqa.sqlitedb import write_transaction
from webqa.store.db import StoreError, connect, resolve
from webqa.values import Candidate, Quote, Result
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
    reward_model: str | None = None,
    visits: Sequence[Visit] = (),
    started: float | None = None,
    seconds: float | None = None,
    error: str | None = None,
    qid: str | None = None,
    batch: str | None = None,
    path: Path | None = None,
) -> int:
    """Log one answered (or failed) question with all its episodes; the run's id.
    ``reward_model`` names the reward model that scored the candidates (None for n = 1).

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
                    qid, batch, reward_model,
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


def add_comparison(
    comparison: Comparison,
    *,
    episodes: tuple[int | None, int | None] = (None, None),
    source: str = "person",
    created: float | None = None,
    path: Path | None = None,
) -> int:
    """Log one judgement at once (nothing a person judged waits in memory); its id.

    ``episodes`` are the logged episodes answer 0 and answer 1 came from (None for an
    answer from elsewhere); ``source`` is who judged when ``comparison.source`` does not
    say. InputError if the score is not in [-1, 1]; StoreError if the log cannot be
    written."""
    return add_comparisons([(comparison, episodes)], source=source, created=created, path=path)[0]


def add_comparisons(
    comparisons: Iterable[Comparison | tuple[Comparison, tuple[int | None, int | None]]],
    *,
    source: str = "import",
    created: float | None = None,
    path: Path | None = None,
) -> list[int]:
    """Log many judgements in one transaction (all or none: an import is never half
    done); their ids. Each is a ``Comparison`` (from no logged episode) or a comparison
    with its two episodes' ids; ``source`` is who judged where a comparison does not say."""
    created = created if created is not None else time.time()
    rows = [_comparison_row(item, source, created) for item in comparisons]
    where = resolve(path)
    try:
        with closing(connect(where)) as conn:
            with write_transaction(conn):
                ids = []
                for row in rows:
                    cur = conn.execute(
                        "INSERT INTO comparisons (created, question, episode_0, episode_1,"
                        " quotes_0, answer_0, quotes_1, answer_1, score_0, note, source)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    assert cur.lastrowid is not None
                    ids.append(cur.lastrowid)
    except (sqlite3.Error, OSError) as failure:
        raise StoreError(f"could not write to the log {where}: {os_reason(failure)}") from failure
    return ids


def _comparison_row(
    item: Comparison | tuple[Comparison, tuple[int | None, int | None]],
    source: str,
    created: float,
) -> tuple[object, ...]:
    comparison, (episode_0, episode_1) = item if isinstance(item, tuple) else (item, (None, None))
    c = comparison
    if not (math.isfinite(c.score_0) and -1.0 <= c.score_0 <= 1.0):
        raise InputError(f"score_0 {c.score_0!r} is not in [-1, 1]")
    return (
        created,
        _text(c.question),
        episode_0,
        episode_1,
        _quotes_json(c.quotes_0),
        _text(c.answer_0),
        _quotes_json(c.quotes_1),
        _text(c.answer_1),
        c.score_0 + 0.0,  # never -0.0
        _text(c.note),
        _text(c.source or source),
    )


def _quotes_json(quotes: Sequence[Quote]) -> str:
    """A comparison's quotes as the log keeps them: a JSON list of title, url and text
    (the text made storable first, as every other logged text is)."""
    return json.dumps(
        [{"title": _text(q.title), "url": _text(q.url), "text": _text(q.text)} for q in quotes],
        ensure_ascii=False,
    )


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
    reward_model: str | None,
) -> int:
    cur = conn.execute(
        "INSERT INTO runs (created, question, qid, batch, model, web, n, seed, temperature,"
        " answer, best, seconds, error, reward_model)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            _text(reward_model),
        ),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid
