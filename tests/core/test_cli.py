from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from webqa.cli import main


def browse(monkeypatch: pytest.MonkeyPatch, zim: Path, stdin: str, *args: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["browse", "--zim", str(zim), *args])


def demos(home: Path) -> list[dict]:
    lines = (home / "demonstrations.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_piped_browse_records_quote_and_saves_demonstration(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
) -> None:
    script = (
        "Search capital Burkina Faso\nClicked on link 0\nFind in page: capital\n"
        "Quote: Its capital is Ouagadougou.\nEnd: Answer\nThe capital is Ouagadougou [1].\n"
    )
    assert browse(monkeypatch, zim, script, "What is the capital of Burkina Faso?") == 0
    out = capsys.readouterr().out
    assert out.count("●Next action") == 6  # the blank browser and five commands
    assert "●Title\nBurkina Faso (site)" in out
    assert "From quote 1 (Burkina Faso · site):\nIts capital is Ouagadougou." in out
    [demo] = demos(webqa_home)
    assert demo["question"] == "What is the capital of Burkina Faso?"
    assert demo["answer"] == "The capital is Ouagadougou [1]."
    assert demo["end_reason"] == "answer"
    assert [q["text"] for q in demo["quotes"]] == ["Its capital is Ouagadougou."]
    assert [s["command"] for s in demo["steps"]][:2] == [
        "Search capital Burkina Faso",
        "Clicked on link 0",
    ]


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("Open the first result\n", "stdin line 1: unknown command"),
        ("Search Burkina Faso\nClicked on link 999\n", "stdin line 2: there is no link 999"),
        (
            "Search Burkina Faso\nClicked on link 0\nQuote: Its capital is Paris.\n",
            "stdin line 3: the quote is not on this page",
        ),
    ],
)
def test_bad_commands_are_one_line_each_and_exit_non_zero(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
    script: str,
    message: str,
) -> None:
    assert browse(monkeypatch, zim, script, "capital?") == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("webqa browse:")]
    assert len(errors) == 1
    assert message in errors[0] and errors[0].endswith("(counted as an action)")
    assert "●Past actions" in captured.out and "Invalid: " in captured.out
    [demo] = demos(webqa_home)  # the session is saved anyway
    assert demo["quotes"] == [] and demo["end_reason"] == "abandoned"


def test_missing_zim_is_one_clear_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.zim"
    assert main(["search", "x", "--zim", str(missing)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("webqa search: ") and str(missing) in err and "\n" not in err


def test_corrupt_zim_is_one_clear_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.zim"
    bad.write_bytes(b"this is not a zim file" * 100)
    assert main(["search", "x", "--zim", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("webqa search: ") and str(bad) in err and "\n" not in err


def test_search_json_lists_results(capsys: pytest.CaptureFixture[str], zim: Path) -> None:
    assert main(["search", "capital Bamako", "--json", "--zim", str(zim)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["title"] == "Mali" and rows[0]["rank"] == 0
    assert rows[0]["url"].startswith("zim://site/")


def test_empty_question_is_rejected(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], zim: Path
) -> None:
    assert browse(monkeypatch, zim, "", "   ") == 1
    assert capsys.readouterr().err.strip() == "webqa browse: the question is empty"
