from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.fakes import BF, QUOTE, SCRIPT, FakeBackends, FakePolicy, FakeReward, FakeWeb
from webqa import api
from webqa.agent import AgentConfig, run_question
from webqa.cli import main
from webqa.store import db, reader, writer
from webqa.web.recording import Visit


def test_a_new_log_gets_every_migration_and_reopening_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    with closing(db.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with closing(db.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"runs", "episodes", "steps", "quotes", "visits", "comparisons"}


def test_a_later_migration_applies_to_an_existing_log_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    result = run_question(
        "capital?", policy=FakePolicy(), web=FakeWeb([BF], any_query=True), reward=None
    )
    writer.record("capital?", result, config=AgentConfig(), n=1, model="rules", path=path)
    later = (*db.MIGRATIONS, "ALTER TABLE runs ADD COLUMN note TEXT;")
    with closing(db.connect(path, migrations=later)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(later)
        assert conn.execute("SELECT question, note FROM runs").fetchall() == [("capital?", None)]
    with pytest.raises(db.StoreError, match="newer than this webqa knows"):
        db.connect(path)


def test_an_unreadable_log_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(db.StoreError, match="is unreadable"):
        db.connect(path)


def test_answer_logs_every_candidate_with_steps_quotes_visits_and_scores(
    webqa_home: Path,
) -> None:
    result = api.answer(
        "What is the capital?",
        n=2,
        model=FakePolicy(),
        reward_model=FakeReward(),
        web=FakeWeb([BF], any_query=True),
        seed=5,
    )
    rows = reader.recent(10)
    assert [(r.run_id, r.chosen, r.candidates, r.answer) for r in rows] == [
        (1, i == result.best, 2, c.answer) for i, c in enumerate(result.candidates)
    ]
    assert (webqa_home / "webqa.sqlite3").is_file()
    record = reader.episode(rows[0].id or 0)
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


def test_answer_with_log_false_writes_nothing(webqa_home: Path) -> None:
    api.answer(
        "What is the capital?", model=FakePolicy(), web=FakeWeb([BF], any_query=True), log=False
    )
    assert not (webqa_home / "webqa.sqlite3").exists()


def test_a_failed_answer_is_logged_with_its_error() -> None:
    with pytest.raises(Exception, match="scripted failure"):
        api.answer(
            "doomed question", model=FakePolicy(fail_on="doomed"), web=FakeWeb([BF], any_query=True)
        )
    [row] = reader.recent()
    assert (row.id, row.question, row.error) == (None, "doomed question", "rules: scripted failure")


def test_log_lists_and_show_replays(capsys: pytest.CaptureFixture[str]) -> None:
    api.answer(
        "What is the capital of Burkina Faso?",
        model=FakePolicy(),
        web=FakeWeb([BF], any_query=True),
    )
    api.answer("Second question?", model=FakePolicy(), web=FakeWeb([BF], any_query=True))
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
    assert shown.rstrip().endswith("Ouagadougou [1], for: What is the capital of Burkina Faso")
    assert main(["log", "show", "99"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("webqa log: no episode 99 in the log ") and "\n" not in err


def test_concurrent_writers_do_not_lose_rows(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "log.sqlite3"
    result = run_question(
        "capital?", policy=FakePolicy(), web=FakeWeb([BF], any_query=True), reward=None
    )

    def write() -> None:
        for _ in range(5):
            writer.record("capital?", result, config=AgentConfig(), n=1, model="m", path=path)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 20
        assert conn.execute("SELECT count(*) FROM steps").fetchone()[0] == 20 * len(SCRIPT)


# -- a broken log (issue 11, case 14) ---------------------------------------------------


def _log_with_corrupt_pages(path: Path) -> None:
    """A real log of a few runs whose data pages are then overwritten (the header and the
    schema page still read, so the damage shows only when rows are read)."""
    result = run_question(
        "capital?", policy=FakePolicy(), web=FakeWeb([BF], any_query=True), reward=None
    )
    for _ in range(30):
        writer.record("capital?", result, config=AgentConfig(), n=1, model="rules", path=path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    for offset in range(2 * 4096, len(data), 4096):
        data[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("argv", [["log"], ["log", "--json"], ["log", "show", "1"]])
def test_a_log_with_corrupt_pages_is_one_line_naming_it(
    argv: list[str], webqa_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = webqa_home / db.DB_NAME
    webqa_home.mkdir(parents=True, exist_ok=True)
    _log_with_corrupt_pages(path)
    before = path.read_bytes()
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        f"webqa log: the log {path} is unreadable: database disk image is malformed"
    )
    assert path.read_bytes() == before  # reading it changed nothing


def test_ask_still_answers_when_its_log_cannot_be_written(
    webqa_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backends = FakeBackends()
    path = webqa_home / db.DB_NAME
    webqa_home.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"my own notes, not a database\n" * 50)
    with pytest.warns(writer.LogWarning) as warned:
        assert main(["ask", "What is the capital of Burkina Faso?"], backends) == 0
        assert main(["ask", "What is the capital, again?"], backends) == 0
    out = capsys.readouterr().out
    assert "Ouagadougou [1], for: What is the capital of Burkina Faso" in out
    assert "Ouagadougou [1], for: What is the capital, again" in out
    assert [str(w.message) for w in warned] == [
        f"could not write to the log {path} (file is not a database); answers are not being logged"
    ]  # once, however many answers
    assert path.read_bytes() == b"my own notes, not a database\n" * 50


def test_a_batch_whose_log_cannot_be_written_answers_everything_and_warns_once(
    webqa_home: Path, tmp_path: Path
) -> None:
    backends = FakeBackends()
    (webqa_home / db.DB_NAME).mkdir(parents=True)  # a folder where the log should be
    qfile = tmp_path / "q.txt"
    qfile.write_text("".join(f"Capital {i}?\n" for i in range(4)), encoding="utf-8")
    with pytest.warns(writer.LogWarning) as warned:
        assert main(["batch", str(qfile), "--concurrency", "2"], backends) == 0
    assert len(warned) == 1 and "answers are not being logged" in str(warned[0].message)
    records = [json.loads(line) for line in (tmp_path / "q.answers.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == [f"line-{i}" for i in range(1, 5)]
    assert all(r["error"] is None and r["log_id"] is None for r in records)


def test_text_that_is_not_valid_unicode_is_logged_visibly_escaped(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    result = run_question(
        "capital?", policy=FakePolicy(), web=FakeWeb([BF], any_query=True), reward=None
    )
    visits = [Visit("fetch", "http://x/\ud800", False, "bad \udcff bytes")]
    writer.record(
        "cap\ud800ital?",
        result,
        config=AgentConfig(),
        n=1,
        model="m",
        path=path,
        visits=visits,
        qid="id-\udfff",
    )
    [row] = reader.recent(path=path)
    assert row.question == "cap\\ud800ital?"
    record = reader.episode(row.id or 0, path=path)
    assert record.qid == "id-\\udfff"
    assert [(v.target, v.error) for v in record.visits] == [
        ("http://x/\\ud800", "bad \\udcff bytes")
    ]


def test_log_shows_control_characters_escaped(
    webqa_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    webqa_home.mkdir(parents=True, exist_ok=True)
    result = run_question(
        "capital?", policy=FakePolicy(), web=FakeWeb([BF], any_query=True), reward=None
    )
    hostile = "What\x1b[2J is\x1b]0;pwned\x07 it?"
    visits = [Visit("fetch", "http://x/\x1b[31m", False, "bad\x1b[0m")]
    writer.record(hostile, result, config=AgentConfig(), n=1, model="m", visits=visits)
    for argv in (["log"], ["log", "show", "1", "--observations"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out
        assert "What\\x1b[2J is\\x1b]0;pwned\\x07 it?" in out
    assert "http://x/\\x1b[31m  failed: bad\\x1b[0m" in out


def test_answer_ask_and_batch_give_the_same_record_when_every_search_fails(
    webqa_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One path answers one question (runner.answer_one): the API, `webqa ask` and
    `webqa batch` agree that a question whose every search failed is a search failure,
    say it in the same words and log it alike."""
    from webqa.errors import SearchError

    backends = FakeBackends(web=FakeWeb([BF], any_query=True, search_error="429 busy"))
    question = "What is the capital of Burkina Faso?"
    expected = "every search failed (1); the last: 429 busy"
    with pytest.raises(SearchError) as raised:
        api.answer(question, backends=backends)
    assert str(raised.value) == expected
    assert main(["ask", question], backends) == 1
    assert capsys.readouterr().err.strip() == f"webqa ask: {expected}"
    qfile = tmp_path / "q.txt"
    qfile.write_text(question + "\n", encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    assert main(["batch", str(qfile), "-o", str(out)], backends) == 0
    (record,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert (record["error"], record["error_type"]) == (expected, "search")
    with closing(sqlite3.connect(webqa_home / db.DB_NAME)) as conn:
        runs = conn.execute("SELECT question, answer, error, qid FROM runs ORDER BY id").fetchall()
        visits = conn.execute(
            "SELECT run_id, kind, ok, error FROM visits ORDER BY run_id"
        ).fetchall()
    assert runs[0][:3] == runs[1][:3] == runs[2][:3] == (question, record["answer"], expected)
    assert [r[3] for r in runs] == [None, None, "line-1"]  # an id only within a batch
    assert [v[1:] for v in visits] == [("search", 0, "429 busy")] * 3
