"""Reading the log: recent episodes for ``webqa log``, one episode whole for ``log show``;
the judgements and the pairs of answers still to judge for ``webqa compare``.

Damage found while reading is a ``StoreError`` naming the log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from webqa.comparisons import Comparison
from webqa.errors import os_reason
from webqa.store.db import StoreError, connect, resolve
from webqa.values import Quote, Reference, Step
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
    reward_model: str | None  # what scored the run's candidates (None for n = 1)
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
        end_reason, seconds, seed, temperature, web, qid, batch, reward_model = conn.execute(
            "SELECT e.end_reason, e.seconds, r.seed, r.temperature, r.web, r.qid, r.batch,"
            " r.reward_model FROM episodes e JOIN runs r ON r.id = e.run_id WHERE e.id = ?",
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
        reward_model=reward_model,
        steps=tuple(Step(c, bool(v), m, p) for c, v, m, p in steps),
        quotes=tuple(Reference(n, t, u, x) for n, t, u, x in quotes),
        visits=tuple(Visit(k, t, bool(ok), e) for k, t, ok, e in visits),
    )


@dataclass(frozen=True)
class Judgement:
    """One logged comparison: the judgement, when it was made (or imported) and, for
    one made on logged answers, the episodes its answers 0 and 1 came from."""

    id: int
    created: float
    episodes: tuple[int | None, int | None]
    comparison: Comparison


@dataclass(frozen=True)
class Pair:
    """Two different answers to one question from one best-of-n run, each with the
    quotes it may cite (its [n] is ``quotes[k][n - 1]``), for a person to judge."""

    run_id: int
    created: float
    question: str
    episodes: tuple[int, int]
    answers: tuple[str, str]
    quotes: tuple[tuple[Quote, ...], tuple[Quote, ...]]

    def judged(self, score_0: float, *, note: str = "", source: str = "person") -> Comparison:
        """This pair as a comparison, ``score_0`` for ``answers[0]`` (1: it is better,
        -1: ``answers[1]`` is, 0: a tie)."""
        return Comparison(
            question=self.question,
            quotes_0=self.quotes[0],
            answer_0=self.answers[0],
            quotes_1=self.quotes[1],
            answer_1=self.answers[1],
            score_0=score_0,
            note=note,
            source=source,
        )


def judgements(*, path: Path | None = None) -> list[Judgement]:
    """Every logged comparison, oldest first."""
    with _reading(path) as conn:
        rows = conn.execute(
            "SELECT id, created, episode_0, episode_1, question, quotes_0, answer_0,"
            " quotes_1, answer_1, score_0, note, source FROM comparisons ORDER BY id"
        ).fetchall()
        return [
            Judgement(
                id=rid,
                created=created,
                episodes=(e0, e1),
                comparison=Comparison(
                    question=question,
                    quotes_0=_quotes_from_json(q0),
                    answer_0=a0,
                    quotes_1=_quotes_from_json(q1),
                    answer_1=a1,
                    score_0=score_0,
                    note=note,
                    source=source,
                ),
            )
            for rid, created, e0, e1, question, q0, a0, q1, a1, score_0, note, source in rows
        ]


def _quotes_from_json(text: str) -> tuple[Quote, ...]:
    """A comparison's quotes as the writer keeps them (a JSON list of title, url, text);
    a value that is not that list is damage, a StoreError (via ``_reading``)."""
    try:
        return tuple(Quote(q["title"], q["url"], "", q["text"]) for q in json.loads(text))
    except (ValueError, TypeError, KeyError) as error:
        raise sqlite3.DatabaseError(f"a comparison's quotes are not readable ({error})") from error


def best_of_n_runs(*, path: Path | None = None) -> int:
    """How many runs in the log sampled more than one answer (n >= 2)."""
    with _reading(path) as conn:
        return int(conn.execute("SELECT count(*) FROM runs WHERE n >= 2").fetchone()[0])


def latest_run(question: str, *, since: float, path: Path | None = None) -> int | None:
    """The newest run of ``question`` started at ``since`` or later; None if none is."""
    with _reading(path) as conn:
        row = conn.execute(
            "SELECT id FROM runs WHERE question = ? AND created >= ? ORDER BY id DESC LIMIT 1",
            (question, since),
        ).fetchone()
    return None if row is None else int(row[0])


def pairs_to_judge(*, run_id: int | None = None, path: Path | None = None) -> list[Pair]:
    """The pairs of answers a person has yet to judge, newest run first: two episodes of
    one best-of-n run (n >= 2; of run ``run_id`` only, if given) whose answers differ.

    A run that failed or was interrupted gives none, nor does an empty answer. Episodes
    whose answers are the same text count once (the first of them), so a person is never
    asked to judge the same two answers twice. A pair is judged once either of its orders is in
    ``comparisons``; within a run, pairs go in the order of their episodes."""
    where = "r.n >= 2 AND r.error IS NULL AND TRIM(e.answer) != ''"
    params: tuple[object, ...] = ()
    if run_id is not None:
        where, params = where + " AND r.id = ?", (run_id,)
    with _reading(path) as conn:
        rows = conn.execute(
            "SELECT r.id, r.created, r.question, e.id, e.answer"
            " FROM runs r JOIN episodes e ON e.run_id = r.id"
            f" WHERE {where} ORDER BY r.id DESC, e.idx ASC",
            params,
        ).fetchall()
        judged = {
            frozenset(row)
            for row in conn.execute(
                "SELECT episode_0, episode_1 FROM comparisons"
                " WHERE episode_0 IS NOT NULL AND episode_1 IS NOT NULL"
            )
        }
        runs: dict[int, tuple[float, str, dict[str, int]]] = {}
        for rid, created, question, eid, answer in rows:
            firsts = runs.setdefault(rid, (created, question, {}))[2]
            firsts.setdefault(answer, eid)  # one episode per distinct answer
        todo: list[tuple[int, float, str, tuple[int, str], tuple[int, str]]] = []
        for rid, (created, question, firsts) in runs.items():
            distinct = [(eid, answer) for answer, eid in firsts.items()]
            for i, first in enumerate(distinct):
                for second in distinct[i + 1 :]:
                    if frozenset((first[0], second[0])) not in judged:
                        todo.append((rid, created, question, first, second))
        quotes = _episode_quotes(conn, {t[3][0] for t in todo} | {t[4][0] for t in todo})
    return [
        Pair(
            run_id=rid,
            created=created,
            question=question,
            episodes=(e0, e1),
            answers=(a0, a1),
            quotes=(quotes.get(e0, ()), quotes.get(e1, ())),
        )
        for rid, created, question, (e0, a0), (e1, a1) in todo
    ]


_CHUNK = 500  # episode ids asked for in one query (SQLite bounds a query's parameters)


def _episode_quotes(conn: sqlite3.Connection, ids: set[int]) -> dict[int, tuple[Quote, ...]]:
    """The quotes of each episode in ``ids``, in their numbered order."""
    found: dict[int, list[Quote]] = {}
    ordered: Sequence[int] = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        for eid, title, url, extract in conn.execute(
            "SELECT episode_id, title, url, extract FROM quotes"
            f" WHERE episode_id IN ({marks}) ORDER BY episode_id, n",
            chunk,
        ):
            found.setdefault(eid, []).append(Quote(title, url, "", extract))
    return {eid: tuple(quotes) for eid, quotes in found.items()}


@contextmanager
def _reading(path: Path | None) -> Iterator[sqlite3.Connection]:
    """A connection for reading the log; damage found while reading is a StoreError."""
    where = resolve(path)
    with closing(connect(where)) as conn:
        try:
            yield conn
        except sqlite3.Error as error:
            raise StoreError(f"the log {where} is unreadable: {os_reason(error)}") from error
