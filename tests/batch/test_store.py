from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.batch.helpers import BF, QUOTE, SCRIPT, AnyWeb, LengthScorer, RulePolicy
from webqa import api, store
from webqa.agent import AgentConfig, run_question
from webqa.cli import main


def test_a_new_log_gets_every_migration_and_reopening_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    with closing(store.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with closing(store.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"runs", "episodes", "steps", "quotes", "visits"}


def test_a_later_migration_applies_to_an_existing_log_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    result = run_question("capital?", policy=RulePolicy(), web=AnyWeb([BF]), reward=None)
    store.record("capital?", result, config=AgentConfig(), n=1, model="rules", path=path)
    later = (*store.MIGRATIONS, "ALTER TABLE runs ADD COLUMN note TEXT;")
    with closing(store.connect(path, migrations=later)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(later)
        assert conn.execute("SELECT question, note FROM runs").fetchall() == [("capital?", None)]
    with pytest.raises(store.StoreError, match="newer than this webqa knows"):
        store.connect(path)


def test_an_unreadable_log_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(store.StoreError, match="is unreadable"):
        store.connect(path)


def test_answer_logs_every_candidate_with_steps_quotes_visits_and_scores(
    monkeypatch: pytest.MonkeyPatch, webqa_home: Path
) -> None:
    monkeypatch.setattr(api, "load_policy", lambda *a, **k: RulePolicy())
    monkeypatch.setattr(api, "load_reward", lambda spec, policy: LengthScorer())
    result = api.answer("What is the capital?", n=2, web=AnyWeb([BF]), seed=5)
    rows = store.recent(10)
    assert [(r.run_id, r.chosen, r.candidates, r.answer) for r in rows] == [
        (1, i == result.best, 2, c.answer) for i, c in enumerate(result.candidates)
    ]
    assert (webqa_home / "webqa.sqlite3").is_file()
    record = store.episode(rows[0].id or 0)
    # guided browsing searches for the question itself first
    assert [s.command for s in record.steps] == ["Search What is the capital?", *SCRIPT[1:]]
    assert all(s.valid and s.prompt.startswith("●Question") for s in record.steps)
    assert [(q.n, q.url, q.extract) for q in record.quotes] == [(1, BF.url, QUOTE)]
    assert [(v.kind, v.target, v.ok) for v in record.visits] == [  # two episodes in lockstep
        ("search", "What is the capital?", True),
        ("search", "What is the capital?", True),
        ("fetch", BF.url, True),
        ("fetch", BF.url, True),
    ]
    assert (record.seed, record.temperature, record.summary.score) == (5, 0.4, rows[0].score)
    assert rows[0].score == float(len(result.candidates[0].answer))


def test_answer_with_log_false_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, webqa_home: Path
) -> None:
    monkeypatch.setattr(api, "load_policy", lambda *a, **k: RulePolicy())
    api.answer("What is the capital?", web=AnyWeb([BF]), log=False)
    assert not (webqa_home / "webqa.sqlite3").exists()


def test_a_failed_answer_is_logged_with_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "load_policy", lambda *a, **k: RulePolicy(fail_on="doomed"))
    with pytest.raises(Exception, match="scripted failure"):
        api.answer("doomed question", web=AnyWeb([BF]))
    [row] = store.recent()
    assert (row.id, row.question, row.error) == (None, "doomed question", "rules: scripted failure")


def test_log_lists_and_show_replays(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(api, "load_policy", lambda *a, **k: RulePolicy())
    api.answer("What is the capital of Burkina Faso?", web=AnyWeb([BF]))
    api.answer("Second question?", web=AnyWeb([BF]))
    assert main(["log", "--limit", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("    2  ") and "Second question?" in lines[0]
    assert "What is the capital of Burkina Faso?  → Ouagadougou [1], for:" in lines[1]
    assert main(["log", "show", "1"]) == 0
    shown = capsys.readouterr().out
    steps = [line.strip() for line in shown.splitlines() if line.strip()[1:3] == ". "]
    first = "Search What is the capital of Burkina Faso?"
    assert steps == [f"{i}. ✓ {c}" for i, c in enumerate([first, *SCRIPT[1:]], start=1)]
    assert "Question What is the capital of Burkina Faso?" in shown
    assert "search What is the capital of Burkina Faso?" in shown and f"fetch  {BF.url}" in shown
    assert f"[1] Burkina Faso — {BF.url}" in shown and f"“{QUOTE}”" in shown
    assert shown.rstrip().endswith("Ouagadougou [1], for: What is the capital of Burkina Faso?")
    assert main(["log", "show", "99"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("webqa log: no episode 99 in the log ") and "\n" not in err


def test_concurrent_writers_do_not_lose_rows(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "log.sqlite3"
    result = run_question("capital?", policy=RulePolicy(), web=AnyWeb([BF]), reward=None)

    def write() -> None:
        for _ in range(5):
            store.record("capital?", result, config=AgentConfig(), n=1, model="m", path=path)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 20
        assert conn.execute("SELECT count(*) FROM steps").fetchone()[0] == 20 * len(SCRIPT)
