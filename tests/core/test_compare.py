"""`webqa compare`: a person's judgements of two answers, driven through stdin (and once
through a real terminal, in tmux), logged as they are made; `compare export` and
`compare import` moving them as WebGPT-schema JSONL."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.fakes import FakeBackends
from webqa.agent import AgentConfig
from webqa.cli import main
from webqa.frontend.compare import NO_RUNS, score_0
from webqa.store import db, reader, writer
from webqa.values import Candidate, Reference, Result

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What is the capital of Burkina Faso?"


@pytest.fixture
def backends() -> FakeBackends:
    """The rule policy (its sampled answers end "(seed N)"), a length scorer, a web that
    finds the Burkina Faso page whatever the query."""
    return FakeBackends()


def ask(backends: FakeBackends, question: str = QUESTION, n: int = 2) -> None:
    """A best-of-n run in the log, as `webqa ask -n` writes it."""
    assert main(["ask", "-n", str(n), question], backends) == 0


def compare(
    monkeypatch: pytest.MonkeyPatch, keys: str, *args: str, backends: FakeBackends | None = None
) -> int:
    """`webqa compare ARGS` with ``keys`` on stdin (not a terminal)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(keys))
    return main(["compare", *args], backends)


def sampled_shown_as_a(screen: str) -> bool:
    """Whether the sampled answer (the one ending "(seed N)") shows in column A of the
    one pair on ``screen``: left of the table's middle border."""
    lines = screen.splitlines()
    middle = next(line for line in lines if "┳" in line).index("┳")
    return next(line for line in lines if "(seed" in line).index("(seed") < middle


def pair_screens(out: str) -> list[str]:
    return re.split(r"─+ (?:question \d+ of \d+ · )?pair \d+ of \d+ ─+", out)[1:]


def test_score_0_is_the_key_about_the_answers_as_shown() -> None:
    assert [score_0(k, a_is_0=True) for k in "abt"] == [1.0, -1.0, 0.0]
    assert [score_0(k, a_is_0=False) for k in "abt"] == [-1.0, 1.0, 0.0]
    assert str(score_0("t", a_is_0=False)) == "0.0"


def test_an_empty_log_says_how_to_get_pairs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compare(monkeypatch, "a") == 0
    assert capsys.readouterr().out.strip() == NO_RUNS


def test_each_judgement_is_logged_for_the_answer_shown_as_a_or_b(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    backends: FakeBackends,
) -> None:
    for i in range(4):
        ask(backends, f"What is the capital of Burkina Faso, take {i}?")
    capsys.readouterr()
    assert compare(monkeypatch, "abab") == 0
    out = capsys.readouterr().out
    screens = pair_screens(out)
    assert len(screens) == 4 and "pair 4 of 4" in out
    assert out.rstrip().endswith("judged 4 of 4 pairs")
    judged = reader.judgements()
    runs = [p.run_id for p in reader.pairs_to_judge()]
    assert runs == []  # every pair judged
    with closing(db.connect()) as conn:
        episodes = dict(conn.execute("SELECT id, answer FROM episodes"))
    a_sides = []
    for key, screen, j in zip("abab", screens, judged, strict=True):
        c = j.comparison
        assert j.episodes[0] is not None and j.episodes[1] is not None
        assert (episodes[j.episodes[0]], episodes[j.episodes[1]]) == (c.answer_0, c.answer_1)
        assert "(seed" not in c.answer_0 and "(seed" in c.answer_1  # in the run's order
        a_is_sampled = sampled_shown_as_a(screen)
        a_sides.append(a_is_sampled)
        sampled_won = (key == "a") == a_is_sampled
        assert c.preferred == (1 if sampled_won else 0)
        assert (c.source, c.note) == ("person", "")
        assert c.question.startswith("What is the capital of Burkina Faso, take ")
    assert set(a_sides) == {True, False}  # the sides were drawn, both ways
    assert [j.comparison.question[-7:-1] for j in judged] == [
        "take 3",
        "take 2",
        "take 1",
        "take 0",
    ]


def test_a_note_a_skip_an_unknown_key_and_quitting(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    backends: FakeBackends,
) -> None:
    ask(backends, n=3)  # three different answers: three pairs
    capsys.readouterr()
    assert compare(monkeypatch, "sx\nn  Both cite   the page \nbq") == 0
    out = capsys.readouterr().out
    assert "a: A is better · b: B is better · t: tie" in out
    assert "note: Both cite the page; now a, b or t" in out
    assert out.rstrip().endswith("judged 1 of 3 pairs, 1 skipped, 1 left for next time")
    [judged] = reader.judgements()
    assert judged.comparison.note == "Both cite the page"
    # the skipped pair and the one not reached are offered again; the judged one is not
    remaining = [p.episodes for p in reader.pairs_to_judge()]
    assert len(remaining) == 2 and judged.episodes not in remaining
    assert compare(monkeypatch, "") == 0  # the end of stdin quits
    assert capsys.readouterr().out.rstrip().endswith("judged 0 of 2 pairs, 2 left for next time")
    assert compare(monkeypatch, "tt") == 0
    assert compare(monkeypatch, "a") == 0
    assert "nothing left to compare" in capsys.readouterr().out


def test_compare_question_samples_a_logged_best_of_n_run_and_judges_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    backends: FakeBackends,
) -> None:
    assert compare(monkeypatch, "ttt", "--question", QUESTION, "-n", "3", backends=backends) == 0
    assert capsys.readouterr().out.rstrip().endswith("judged 3 of 3 pairs")
    with closing(db.connect()) as conn:
        assert conn.execute("SELECT question, n, reward_model FROM runs").fetchall() == [
            (QUESTION, 3, "length")
        ]
    judged = reader.judgements()
    assert sorted(j.episodes for j in judged) == [(1, 2), (1, 3), (2, 3)]
    assert all(j.comparison.score_0 == 0.0 for j in judged)
    assert backends.asked("reward", "spec") == [None]  # the default reward model


def test_compare_questions_samples_each_and_reports_bad_lines(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    backends: FakeBackends,
    tmp_path: Path,
) -> None:
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        '{"question": "Capital of Burkina Faso?"}\nnot json\n{"question": "Its capital?"}\n',
        encoding="utf-8",
    )
    assert compare(monkeypatch, "ab", "--questions", str(qfile), "-n", "1", backends=backends) == 0
    captured = capsys.readouterr()
    assert f"{qfile} line 2: " in captured.err
    assert "question 2 of 2 · pair 1 of 1" in captured.out
    judged = reader.judgements()
    assert [j.comparison.question for j in judged] == ["Capital of Burkina Faso?", "Its capital?"]
    with closing(db.connect()) as conn:
        assert conn.execute("SELECT n FROM runs").fetchall() == [(2,), (2,)]  # at least 2


def test_export_then_import_into_a_fresh_log_gives_the_same_judgements(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    backends: FakeBackends,
    tmp_path: Path,
) -> None:
    ask(backends, n=3)
    assert compare(monkeypatch, "nfirst note\nabt") == 0
    exported = tmp_path / "out.jsonl"
    assert main(["compare", "export", str(exported)]) == 0
    assert f"wrote 3 comparisons to {exported}" in capsys.readouterr().out
    rows = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["note"] == "first note" and rows[0]["quotes_0"]["url"] == [
        "https://example.org/bf"
    ]
    assert [r["score_0"] + r["score_1"] for r in rows] == [0.0] * 3
    before = [j.comparison for j in reader.judgements()]

    monkeypatch.setenv("WEBQA_HOME", str(tmp_path / "fresh"))
    assert main(["compare", "import", str(exported)]) == 0
    assert f"imported 3 comparisons from {exported}" in capsys.readouterr().out
    after = reader.judgements()
    assert [j.comparison for j in after] == before  # question, quotes, answers, scores, notes
    assert all(j.episodes == (None, None) for j in after)
    again = tmp_path / "again.jsonl"
    assert main(["compare", "export", str(again)]) == 0
    assert again.read_bytes() == exported.read_bytes()


def test_import_keeps_a_rows_own_source_else_says_import(tmp_path: Path) -> None:
    row = {"question": "Q?", "answer_0": "A.", "answer_1": "B.", "score_0": 1.0}
    rows = tmp_path / "in.jsonl"
    rows.write_text(
        json.dumps(row) + "\n\n" + json.dumps({**row, "source": "bootstrap"}) + "\n",
        encoding="utf-8",
    )
    assert main(["compare", "import", str(rows)]) == 0
    assert [j.comparison.source for j in reader.judgements()] == ["import", "bootstrap"]


def test_a_bad_import_row_is_one_line_naming_file_and_line_and_stores_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    row = {"question": "Q?", "answer_0": "A.", "answer_1": "B.", "score_0": 1.0}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(row) + "\n" + json.dumps({**row, "answer_1": ""}) + "\n", encoding="utf-8"
    )
    assert main(["compare", "import", str(bad)]) == 1
    assert capsys.readouterr().err.strip() == f"webqa compare: {bad} line 2: no answer_1"
    assert reader.judgements() == []


def test_export_with_question_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--question", "Q?", "export", "out.jsonl"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "webqa compare: `compare export` takes no --question or --questions"


def test_answers_and_quotes_are_shown_with_control_characters_escaped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], webqa_home: Path
) -> None:
    ref = Reference(1, "T\x1b]0;pwned\x07", "http://x/\x1b[31m", "quote\x1b[2J " + "word " * 100)

    def cand(answer: str) -> Candidate:
        return Candidate(answer, (ref,), (), (), "answer", 0, 1.0, 0.0)

    result = Result("Q\x1b[2J?", "A", (ref,), 0, (cand("A\x1b[2J [1]."), cand("B [1].")), "m", 0)
    webqa_home.mkdir(parents=True, exist_ok=True)
    writer.record("Q\x1b[2J?", result, config=AgentConfig(), n=2, model="m")
    assert compare(monkeypatch, "q") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "Q\\x1b[2J?" in out and "A\\x1b[2J [1]." in out
    assert "quote\\x1b[2J word" in out and "…”" in out  # the extract clipped


# -- a real terminal ---------------------------------------------------------------------


def _wait_for(what: str, check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _comparisons(home: Path) -> list[tuple[int, int, float, str]]:
    with closing(sqlite3.connect(home / db.DB_NAME)) as conn:
        return conn.execute(
            "SELECT episode_0, episode_1, score_0, note FROM comparisons ORDER BY id"
        ).fetchall()


@pytest.mark.parametrize("stop", ["q", "C-c"])
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_compare_in_a_terminal_takes_single_keys(
    stop: str, backends: FakeBackends, webqa_home: Path
) -> None:
    """In tmux: one key a judgement, no Enter; a note typed as a line; q or Ctrl-C stops,
    with every judgement already in the log."""
    ask(backends, n=3)
    tmux = [
        shutil.which("tmux") or "tmux",
        "-L",
        f"webqa-test-{uuid.uuid4().hex}",
        "-f",
        "/dev/null",
    ]
    name = "compare"
    command = (
        f"env WEBQA_HOME={shlex.quote(str(webqa_home))} "
        f"{shlex.quote(sys.executable)} -m webqa.cli compare"
    )

    def tmux_output(*args: str) -> str:
        return subprocess.run([*tmux, *args], capture_output=True, text=True).stdout

    def screen() -> str:
        return tmux_output("capture-pane", "-p", "-t", name)

    def keys(*typed: str) -> None:
        subprocess.run([*tmux, "send-keys", "-t", name, *typed], check=True)

    socket = ""
    try:
        subprocess.run(
            [*tmux, "new-session", "-d", "-s", name, "-x", "200", "-y", "50", "-c", str(ROOT)]
            + [command],
            check=True,
        )
        # keep the pane (and the tally) when the command ends
        subprocess.run([*tmux, "set-option", "-t", name, "remain-on-exit", "on"], check=True)
        socket = tmux_output("display-message", "-p", "#{socket_path}").strip()
        _wait_for("the first pair", lambda: "q: quit" in screen())  # the line under it
        a_is_sampled = sampled_shown_as_a(screen().split("pair 1 of 3", 1)[1])
        keys("a")
        _wait_for("the first judgement", lambda: len(_comparisons(webqa_home)) == 1)
        [(e0, e1, score, note)] = _comparisons(webqa_home)
        assert (e0, e1, note) == (1, 2, "")
        assert score == (-1.0 if a_is_sampled else 1.0)  # episode 2's answer is sampled
        _wait_for("the second pair", lambda: "pair 2 of 3" in screen())
        keys("n")
        _wait_for("the note's prompt", lambda: "note (end it with Enter):" in screen())
        keys("-l", "sources agree")
        _wait_for("the note echoed as typed", lambda: "sources agree" in screen())
        keys("Enter")
        _wait_for("the note taken", lambda: "note: sources agree; now a, b or t" in screen())
        keys("t")
        _wait_for("the second judgement", lambda: len(_comparisons(webqa_home)) == 2)
        assert _comparisons(webqa_home)[1][2:] == (0.0, "sources agree")
        _wait_for("the third pair", lambda: "pair 3 of 3" in screen())
        keys(stop)
        _wait_for("the tally", lambda: "judged 2 of 3 pairs, 1 left for next time" in screen())
        if stop == "C-c":
            _wait_for("the interrupt", lambda: "webqa compare: interrupted" in screen())
        assert len(_comparisons(webqa_home)) == 2
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        if socket:  # tmux leaves its socket behind
            Path(socket).unlink(missing_ok=True)
