"""The log's comparisons (migration 2): people's judgements stored and read back, the
pairs of answers still to judge, and the reward model a best-of-n run was scored by."""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.fakes import BF, FakePolicy, FakeReward, FakeWeb
from webqa import api
from webqa.agent import AgentConfig
from webqa.cli import main
from webqa.comparisons import Comparison
from webqa.errors import InputError
from webqa.store import db, reader, writer
from webqa.values import Candidate, Quote, Reference, Result


def candidate(answer: str, *refs: Reference) -> Candidate:
    return Candidate(
        answer=answer,
        references=refs,
        steps=(),
        visited=(),
        end_reason="answer",
        removed_citations=0,
        score=float(len(answer)),
        seconds=0.0,
    )


REF = Reference(1, "Burkina Faso", "https://example.org/bf", "Its capital is Ouagadougou.")


def best_of(
    path: Path,
    question: str,
    *answers: str,
    reward: str | None = "length",
    error: str | None = None,
) -> int:
    """A best-of-n run of ``answers`` (each citing REF), logged by the real writer."""
    cands = tuple(candidate(a, REF) for a in answers)
    result = Result(question, answers[0], (REF,), 0, cands, "m", 0.0)
    return writer.record(
        question,
        result,
        config=AgentConfig(),
        n=len(answers),
        model="m",
        reward_model=reward,
        error=error,
        path=path,
    )


def comparison(**changes: object) -> Comparison:
    fields: dict[str, object] = {
        "question": "What is the capital?",
        "quotes_0": (Quote("Burkina Faso", "https://example.org/bf", "", "Ouagadougou."),),
        "answer_0": "Ouagadougou [1].",
        "quotes_1": (),
        "answer_1": "Paris.",
        "score_0": 1.0,
    }
    return Comparison(**{**fields, **changes})  # type: ignore[arg-type]


def test_migration_2_applies_to_a_log_of_schema_1_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    with closing(db.connect(path, migrations=db.MIGRATIONS[:1])) as conn:  # an old log
        conn.execute(
            "INSERT INTO runs (id, created, question, model, web, n, seed, temperature, answer,"
            " best, seconds) VALUES (1, 1.0, 'capital?', 'm', 'fake', 2, 0, 0.4, 'A [1].', 0, 1)"
        )
        for eid, answer in ((1, "A [1]."), (2, "B [1].")):
            conn.execute(
                "INSERT INTO episodes VALUES (?, 1, ?, ?, ?, 0.5, 'answer', 0, 0, 1.0)",
                (eid, eid - 1, int(eid == 1), answer),
            )
            conn.execute("INSERT INTO quotes VALUES (?, 1, 'T', 'https://t', 'text')", (eid,))
    [pair] = reader.pairs_to_judge(path=path)  # reading migrates it
    assert (pair.question, pair.episodes, pair.answers) == (
        "capital?",
        (1, 2),
        ("A [1].", "B [1]."),
    )
    assert pair.quotes == ((Quote("T", "https://t", "", "text"),),) * 2
    with closing(db.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS) == 2
        assert conn.execute("SELECT question, reward_model FROM runs").fetchall() == [
            ("capital?", None)
        ]
        assert conn.execute("SELECT count(*) FROM comparisons").fetchone()[0] == 0
    assert reader.episode(1, path=path).reward_model is None
    writer.add_comparison(pair.judged(-1.0), episodes=pair.episodes, path=path)
    assert reader.pairs_to_judge(path=path) == []


def test_a_comparison_round_trips_through_the_log(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    first = comparison(note="B is made up", source="bootstrap")
    second = comparison(score_0=-0.0, answer_1="Ouagadougou, yes [1].", quotes_1=first.quotes_0)
    [one] = writer.add_comparisons([first], path=path, created=5.0)
    two = writer.add_comparison(second, episodes=(None, None), path=path)
    judged = reader.judgements(path=path)
    assert [(j.id, j.episodes) for j in judged] == [(one, (None, None)), (two, (None, None))]
    assert judged[0].created == 5.0
    assert judged[0].comparison == first  # its own source kept
    assert judged[1].comparison == comparison(
        score_0=0.0, answer_1=second.answer_1, quotes_1=first.quotes_0, source="person"
    )  # add_comparison's default source; never -0.0
    assert str(judged[1].comparison.score_0) == "0.0"


def test_add_comparisons_is_all_or_nothing_and_checks_the_score(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    with pytest.raises(InputError, match=r"score_0 1.5 is not in \[-1, 1\]"):
        writer.add_comparisons([comparison(), comparison(score_0=1.5)], path=path)
    assert reader.judgements(path=path) == []


def test_text_that_is_not_valid_unicode_is_stored_visibly_escaped(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    bad = Quote("ti\ud800tle", "https://x/\udcff", "", "te\udfffxt")
    writer.add_comparison(
        comparison(question="cap\ud800?", quotes_0=(bad,), note="n\udc80"), path=path
    )
    [judged] = reader.judgements(path=path)
    c = judged.comparison
    assert (c.question, c.note) == ("cap\\ud800?", "n\\udc80")
    assert c.quotes_0 == (Quote("ti\\ud800tle", "https://x/\\udcff", "", "te\\udfffxt"),)


def test_pairs_to_judge_newest_run_first_distinct_answers_not_yet_judged(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    old = best_of(path, "old?", "X [1].", "Y [1].")
    best_of(path, "one answer?", "Only [1].", reward=None)  # n = 1: nothing to compare
    best_of(path, "failed?", "P [1].", "Q [1].", error="interrupted")
    new = best_of(path, "new?", "A [1].", "B [1].", "A [1].", "C [1].")  # the 3rd repeats A
    pairs = reader.pairs_to_judge(path=path)
    assert [(p.run_id, p.answers) for p in pairs] == [
        (new, ("A [1].", "B [1].")),
        (new, ("A [1].", "C [1].")),
        (new, ("B [1].", "C [1].")),
        (old, ("X [1].", "Y [1].")),
    ]
    quote = Quote(REF.title, REF.url, "", REF.extract)
    assert all(p.quotes == ((quote,), (quote,)) for p in pairs)
    episodes = {p.answers: p.episodes for p in pairs}
    a, c = episodes["A [1].", "C [1]."]
    writer.add_comparison(comparison(), episodes=(c, a), path=path)  # judged, either order
    assert [p.answers for p in reader.pairs_to_judge(path=path)] == [
        ("A [1].", "B [1]."),
        ("B [1].", "C [1]."),
        ("X [1].", "Y [1]."),
    ]
    assert [p.answers for p in reader.pairs_to_judge(run_id=old, path=path)] == [
        ("X [1].", "Y [1].")
    ]
    assert reader.best_of_n_runs(path=path) == 3
    assert reader.latest_run("new?", since=0.0, path=path) == new
    assert reader.latest_run("new?", since=time.time() + 60, path=path) is None
    assert reader.latest_run("never asked?", since=0.0, path=path) is None


def test_a_damaged_comparison_is_a_store_error_naming_the_log(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    writer.add_comparison(comparison(), path=path)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE comparisons SET quotes_0 = 'not json'")
    with pytest.raises(db.StoreError, match=re.escape(f"the log {path} is unreadable: a comp")):
        reader.judgements(path=path)


def test_a_best_of_n_run_records_its_reward_model_and_log_show_prints_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    web = FakeWeb([BF], any_query=True)
    api.answer("What is the capital?", n=2, model=FakePolicy(), reward_model=FakeReward(), web=web)
    api.answer("What is the capital, once?", model=FakePolicy(), web=web)
    with closing(db.connect()) as conn:
        assert conn.execute("SELECT n, reward_model FROM runs ORDER BY id").fetchall() == [
            (2, "length"),
            (1, None),
        ]
    assert reader.episode(1).reward_model == "length"
    assert main(["log", "show", "1"]) == 0
    assert "reward model length" in capsys.readouterr().out
    assert main(["log", "show", "3"]) == 0
    assert "reward model" not in capsys.readouterr().out


def test_a_batch_records_its_reward_model() -> None:
    web = FakeWeb([BF], any_query=True)
    done = list(
        api.answer_many(
            ["Capital?", "Capital again?"],
            n=2,
            model=FakePolicy(),
            reward_model=FakeReward(),
            web=web,
        )
    )
    assert all(d.ok for d in done)
    with closing(db.connect()) as conn:
        assert conn.execute("SELECT reward_model FROM runs").fetchall() == [("length",)] * 2
