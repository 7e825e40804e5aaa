"""Reading the log: recent episodes for ``webqa log``, one episode whole for ``log show``.

Damage found while reading is a ``StoreError`` naming the log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from webqa.errors import os_reason
from webqa.store.db import StoreError, connect, resolve
from webqa.values import Reference, Step
from webqa.web.recording import Visit


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
    steps: tuple[Step, ...]
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
            raise StoreError(f"no episode {episode_id} in the log {resolve(path)}")
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
        steps=tuple(Step(c, bool(v), m, p) for c, v, m, p in steps),
        quotes=tuple(Reference(n, t, u, x) for n, t, u, x in quotes),
        visits=tuple(Visit(k, t, bool(ok), e) for k, t, ok, e in visits),
    )


@contextmanager
def _reading(path: Path | None) -> Iterator[sqlite3.Connection]:
    """A connection for reading the log; damage found while reading is a StoreError."""
    where = resolve(path)
    with closing(connect(where)) as conn:
        try:
            yield conn
        except sqlite3.Error as error:
            raise StoreError(f"the log {where} is unreadable: {os_reason(error)}") from error
