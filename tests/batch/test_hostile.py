"""Hostile and careless input to `webqa batch` (issue 11, cases 9, 10 and 16): one line
naming the place, never a traceback, nothing a person wrote lost, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.batch.conftest import Cli
from tests.fakes import FakeBackends, FakePolicy
from webqa.answerfile import AnswerFile
from webqa.cli import main
from webqa.errors import InputError, ModelError
from webqa.questionfile import MAX_DEPTH, read_questions


def records_of(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def leftovers(folder: Path) -> list[str]:
    """Files webqa may leave beside an output: locks and temporary rewrites."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".lock", ".tmp")))


def questions(folder: Path, text: str = "Capital one?\nCapital two?\n") -> Path:
    path = folder / "q.txt"
    path.write_text(text, encoding="utf-8")
    return path


# -- case 9: never write into a file that is not an answer file -------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.md", b"# My notes\n\nThings I must not lose.\n"),
        ("notes.jsonl", b'{"todo": "buy milk"}\n{"todo": "call mum"}\n'),  # JSON, not records
        ("notes.txt", b"no newline at the end"),
        ("data.bin", bytes(range(256)) * 4),
        ("answers.jsonl", None),  # a real answer file, then a line someone added
    ],
)
def test_an_output_that_is_not_an_answer_file_is_refused_and_left_unchanged(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None
) -> None:
    qfile = questions(tmp_path)
    out = tmp_path / name
    if content is None:
        assert cli(["batch", str(qfile), "-o", str(out)]) == 0
        with open(out, "ab") as f:
            f.write(b"my remark about these answers\n")
        content = out.read_bytes()
        line = 3
        capsys.readouterr()
    else:
        out.write_bytes(content)
        line = 1
    assert cli(["batch", str(qfile), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        f"webqa batch: {out} is not a webqa answer file (line {line} is not an answer "
        "record); refusing to write into it: choose another output file (-o)"
    )
    assert out.read_bytes() == content  # byte for byte
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("content", [b"", b"\n", b"  \n\n"])
def test_an_empty_existing_output_is_used(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    qfile = questions(tmp_path)
    out = tmp_path / "answers.jsonl"
    out.write_bytes(content)
    assert cli(["batch", str(qfile), "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith("2 answered, 0 failed")
    assert sorted(r["id"] for r in records_of(out)) == ["line-1", "line-2"]


def test_a_first_record_cut_off_by_a_kill_is_still_recognised(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qfile = questions(tmp_path)
    out = tmp_path / "answers.jsonl"
    out.write_bytes(b'{"id": "line-1", "line": 1, "question": "Capi')
    assert cli(["batch", str(qfile), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "dropped a partial last line" in captured.err
    assert captured.out.startswith("2 answered, 0 failed")
    assert sorted(r["id"] for r in records_of(out)) == ["line-1", "line-2"]


# -- case 10: hostile question lines are that line's error record ---------------------


def test_hostile_jsonl_lines_become_error_records_naming_file_and_line(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qfile = tmp_path / "q.jsonl"
    lines = [
        "[" * 100_000 + "]" * 100_000,  # was RecursionError
        '{"id": ' + "9" * 5000 + ', "question": "Long id?"}',  # was ValueError
        '{"id": "s", "question": "Capital of \\ud800 Burkina?"}',  # was UnicodeEncodeError
        '{"id": "t\\udfff", "question": "Odd id?"}',
        '{"question": "Deep?", "meta": ' + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "}",
        '{"question": "Fine?", "note": "\\ud83d alone", "gold": ["x"]}',
    ]
    qfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "a.jsonl"
    assert cli(["batch", str(qfile), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    reported = [line for line in captured.err.splitlines() if " line " in line]
    assert reported == [
        f"{qfile} line 1: JSON nested too deeply (at most {MAX_DEPTH} levels)",
        f"{qfile} line 2: unreadable JSON: Exceeds the limit (4300 digits) for integer "
        "string conversion",
        f'{qfile} line 3: "question" is not valid Unicode (a lone surrogate \\ud800 at '
        "character 12)",
        f'{qfile} line 4: "id" is not valid Unicode (a lone surrogate \\udfff at character 2)',
        f"{qfile} line 5: JSON nested too deeply (at most {MAX_DEPTH} levels)",
    ]
    assert captured.out.startswith("1 answered, 0 failed, 5 bad line(s), 0 skipped")
    records = {r["line"]: r for r in records_of(out)}  # the file is valid UTF-8 JSON lines
    assert sorted(records) == [1, 2, 3, 4, 5, 6]
    for n in range(1, 6):
        assert records[n]["error_type"] == "input" and records[n]["answer"] is None
    assert records[3]["question"] == "Capital of \ud800 Burkina?"  # kept, escaped on disk
    assert records[6]["error"] is None and records[6]["note"] == "\ud83d alone"
    assert records[6]["gold"] == ["x"]
    # a rerun reads all of it back: nothing to do, nothing refused or dropped
    assert cli(["batch", str(qfile), "-o", str(out)]) == 0
    again = capsys.readouterr()
    assert again.out.startswith("0 answered, 0 failed, 5 bad line(s), 1 skipped")
    assert "dropped" not in again.err
    assert leftovers(tmp_path) == []


def test_control_characters_in_ids_are_shown_escaped(
    cli: Cli, tmp_path: Path, policy: FakePolicy, capsys: pytest.CaptureFixture[str]
) -> None:
    policy.fail_on = "Doomed"
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"id": "\\u001b[2J\\u001b]0;pwned\\u0007", "question": "Doomed?"}\n')
    assert cli(["batch", str(qfile), "-o", str(tmp_path / "a.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "(id \\x1b[2J\\x1b]0;pwned\\x07): rules: scripted failure" in err


def test_a_question_file_over_the_size_cap_is_one_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import webqa.questionfile

    monkeypatch.setattr(webqa.questionfile, "MAX_QUESTION_FILE", 1024)
    qfile = questions(tmp_path, "What?\n" * 200)
    assert cli(["batch", str(qfile)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"webqa batch: {qfile}: larger than 0 MiB; split it into smaller files"
    )


# -- case 10: an output that cannot be written is one line naming it ------------------


def test_an_output_that_cannot_be_written_is_one_line_naming_it(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qfile = questions(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("mine\n", encoding="utf-8")
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "nowhere" / "deeper")
    cases = {
        blocker / "out.jsonl": f"{blocker / 'out.jsonl'}: cannot use it as the output: Not a dir",
        dangling / "out.jsonl": f"{dangling / 'out.jsonl'}: cannot write there: File exists",
        folder: f"{folder}: is a directory; give a file for the output (-o)",
        fifo: f"{fifo}: is not a regular file; give a file for the output (-o)",
    }
    for out, message in cases.items():
        assert cli(["batch", str(qfile), "-o", str(out)]) == 1
        captured = capsys.readouterr()
        assert captured.err.startswith(f"webqa batch: {message}"), captured.err
        assert len(captured.err.strip().splitlines()) == 1
    assert blocker.read_text(encoding="utf-8") == "mine\n"
    assert leftovers(tmp_path) == [] and list(folder.iterdir()) == []


# -- case 16: no lock file is left behind ---------------------------------------------


def test_no_lock_file_is_left_after_a_run_a_refusal_or_a_failure(cli: Cli, tmp_path: Path) -> None:
    qfile = questions(tmp_path)
    out = tmp_path / "answers.jsonl"
    assert cli(["batch", str(qfile), "-o", str(out)]) == 0
    assert leftovers(tmp_path) == []
    (tmp_path / "other").mkdir()
    other = questions(tmp_path / "other", "A different question?\n")
    assert cli(["batch", str(other), "-o", str(out)]) == 1  # refused: answers other questions
    assert leftovers(tmp_path) == []

    exploding = FakeBackends(ModelError("the model exploded"))
    assert main(["batch", str(qfile), "-o", str(tmp_path / "b.jsonl")], exploding) == 1
    assert leftovers(tmp_path) == []


def test_the_lock_still_keeps_a_second_run_out_and_is_gone_after(tmp_path: Path) -> None:
    qf = read_questions(questions(tmp_path))
    out = tmp_path / "a.jsonl"
    with AnswerFile.open(out, qf):
        assert leftovers(tmp_path) == [".a.jsonl.lock"]
        with pytest.raises(InputError, match="another webqa batch is writing this file"):
            AnswerFile.open(out, qf)
        assert leftovers(tmp_path) == [".a.jsonl.lock"]  # the loser removed nothing
    assert leftovers(tmp_path) == []
    with AnswerFile.open(out, qf):  # and the next run takes it again
        pass
    assert leftovers(tmp_path) == []


def test_a_second_process_is_refused_at_once_in_one_line_naming_the_file(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock holds between processes (a `webqa batch` in another terminal), not only
    between two opens in one process."""
    qfile = questions(tmp_path)
    out = tmp_path / "a.jsonl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path\n"
            "from webqa.answerfile import AnswerFile\n"
            "from webqa.questionfile import read_questions\n"
            "with AnswerFile.open(Path(sys.argv[1]), read_questions(Path(sys.argv[2]))):\n"
            "    print('holding', flush=True)\n"
            "    sys.stdin.read()\n",
            str(out),
            str(qfile),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        started = time.monotonic()
        assert cli(["batch", str(qfile), "-o", str(out)]) == 1
        assert time.monotonic() - started < 5  # at once: no waiting for the other run
        err = capsys.readouterr().err.strip()
        assert err == f"webqa batch: {out}: another webqa batch is writing this file"
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0
    assert leftovers(tmp_path) == []
    assert cli(["batch", str(qfile), "-o", str(out)]) == 0  # and it is free again


def test_runs_racing_for_the_lock_never_both_hold_it(tmp_path: Path) -> None:
    """Removing the lock file races with a run that opened it just before; whoever
    holds the lock must be alone, however the opens and removals interleave."""
    qf = read_questions(questions(tmp_path))
    out = tmp_path / "a.jsonl"
    holding = 0
    most = 0
    guard = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        nonlocal holding, most
        for _ in range(100):
            try:
                f = AnswerFile.open(out, qf)
            except InputError:
                continue
            except BaseException as error:  # noqa: BLE001 (reported below)
                errors.append(error)
                return
            with guard:
                holding += 1
                most = max(most, holding)
            time.sleep(0.0005)
            with guard:
                holding -= 1
            f.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and most == 1
    assert leftovers(tmp_path) == []
