"""Bootstrap comparisons: candidates judged by gold answers, and the command's file
handling (gold answers required, appended as it goes, resumable)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import BF, FakeBackends, FakePolicy, FakeWeb
from webqa.bootstrap import judge_pairs, regrade
from webqa.cli import main as cli_main
from webqa.comparisons import read_comparisons
from webqa.errors import InputError
from webqa.frontend.bootstrap import gold_items
from webqa.values import Candidate, Reference


def cand(answer: str, extract: str = "Its capital is Ouagadougou.") -> Candidate:
    ref = Reference(1, "Burkina Faso", "https://example.org/bf", extract)
    return Candidate(answer, (ref,), (), (), "answer", 0, None, 1.0)


ITEM = {"question": "What is the capital of Burkina Faso?", "answers": ["Ouagadougou"]}


def test_right_beats_wrong_and_equals_tie() -> None:
    right, wrong = cand("It is Ouagadougou [1]."), cand("It is Bobo-Dioulasso [1].")
    also_right = cand("Ouagadougou is the capital [1].")
    made, same = judge_pairs(
        {**ITEM, "answerable": True, "id": "q1"}, [wrong, right, also_right, right]
    )
    assert same == 1  # the two identical answers say nothing
    scores = {(c.answer_0, c.answer_1): c.score_0 for c in made}
    assert scores[(wrong.answer, right.answer)] == -1.0
    assert scores[(right.answer, also_right.answer)] == 0.0  # both right: a tie
    assert all(c.source == "bootstrap" and c.extra["id"] == "q1" for c in made)
    assert made[0].quotes_0[0].text == "Its capital is Ouagadougou."


def test_a_decline_wins_on_an_unanswerable_question_and_loses_on_an_answerable_one() -> None:
    decline = cand("I could not find the answer: the passages do not state it.")
    guess = cand("It is Ouagadougou [1].")
    made, _ = judge_pairs({**ITEM, "answerable": False, "answers": []}, [decline, guess])
    assert made[0].score_0 == 1.0
    made, _ = judge_pairs({**ITEM, "answerable": True}, [decline, guess])
    assert made[0].score_0 == -1.0


def test_a_right_answer_its_quotes_do_not_state_is_no_better_than_a_wrong_one() -> None:
    item = {**ITEM, "answerable": True}
    guess = cand("It is Ouagadougou [1].", "Burkina Faso is a landlocked country.")
    wrong, cited = cand("It is Bobo-Dioulasso [1]."), cand("Ouagadougou, its capital [1].")
    made, _ = judge_pairs(item, [guess, wrong, cited])
    scores = {(c.answer_0, c.answer_1): c.score_0 for c in made}
    assert scores[(guess.answer, wrong.answer)] == 0.0  # both unsupported: a tie
    assert scores[(guess.answer, cited.answer)] == -1.0
    # regrading a comparison made under the old rule (right by its words alone) agrees
    old = replace(made[0], score_0=1.0)
    assert regrade(item, old).score_0 == 0.0
    assert regrade(item, made[1]) == made[1]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_gold_answers_are_required_line_by_line(tmp_path: Path) -> None:
    good = {"question": "Q?", "answers": ["x"], "answerable": True}
    f = write(tmp_path / "q.jsonl", [good, {"question": "R?", "answerable": True}])
    with pytest.raises(InputError, match=r"q\.jsonl line 2: answers must be a list"):
        gold_items(f)
    f = write(tmp_path / "q.jsonl", [good, {"question": "R?", "answers": []}])
    with pytest.raises(InputError, match=r"line 2: no answerable"):
        gold_items(f)
    with pytest.raises(InputError, match="needs a .jsonl"):
        gold_items(tmp_path / "q.txt")
    assert [i["question"] for i in gold_items(write(tmp_path / "q.jsonl", [good]))] == ["Q?"]


def test_the_command_appends_comparisons_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEBQA_HOME", str(tmp_path / "home"))
    rows = [
        {
            "id": "a",
            "question": "What is the capital of Burkina Faso?",
            "answers": ["Ouaga"],
            "answerable": True,
        },
        {"id": "b", "question": "Who painted the sky?", "answers": [], "answerable": False},
    ]
    questions = write(tmp_path / "train.jsonl", rows)
    out = tmp_path / "cmp.jsonl"
    backends = FakeBackends(FakePolicy(), web=FakeWeb([BF], any_query=True))

    def main(argv: list[str]) -> int:
        return cli_main(["reward", *argv], backends)

    assert main(["bootstrap", str(questions), "-o", str(out), "-n", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 2 and report["failed"] == 0
    kept = read_comparisons(out)
    assert len(kept) == report["comparisons"]
    assert main(["bootstrap", str(questions), "-o", str(out), "-n", "2"]) == 1  # exists
    assert "use --resume" in capsys.readouterr().err
    assert main(["bootstrap", str(questions), "-o", str(out), "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["questions"] == 2 - len(
        {c.extra["id"] for c in kept}
    )
    assert main(["bootstrap", str(questions), "-o", str(out), "-n", "1"]) == 1
