"""benchmarks/quality.py's scoring: per kind, declining, answer hygiene, question files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import quality  # noqa: E402

QUESTION = "What is the capital of Poland?"


@pytest.mark.parametrize(
    ("answer", "problems"),
    [
        ("The capital of Poland is Warsaw [1].", []),
        ("Warsaw is the capital [1][2]. It lies on the Vistula [2].", []),
        ("I could not find the answer: the passages I quoted do not state it.", []),
        (f"{QUESTION}\nWarsaw [1].", ["question"]),
        ("Warsaw [1].\n[1] Poland - The World Factbook (zim://webqa/factbook/Poland)",
         ["reference list"]),
        ("Answer: Warsaw [1].", ["label"]),
        ("**Answer:** Warsaw [1].", ["label"]),
        ('Question: what is it?\n- "Capital - name: Warsaw"\n- "Warsaw is the capital"',
         ["label", "quote list"]),
        (f'{QUESTION}\n[1] Poland - The World Factbook\nAnswer: Warsaw [1].',
         ["question", "reference list", "label"]),
    ],
)  # fmt: skip
def test_hygiene_finds_answers_that_echo_the_prompt(answer: str, problems: list[str]) -> None:
    assert quality.hygiene_problems(QUESTION, answer) == problems


def row(answerable: bool, answer: str, kind: str | None = None) -> dict:
    item = {"answerable": answerable, "answers": ["Warsaw"] if answerable else []}
    return {
        "answerable": answerable,
        "kind": kind,
        "correct": quality.correct(item, answer),
        "declined": quality.declined(answer),
        "hygiene": quality.hygiene_problems(QUESTION, answer),
    }


DECLINE = "I could not find an answer to this question."


def test_decline_report_gives_precision_recall_and_the_answerable_decline_rate() -> None:
    rows = [
        row(False, DECLINE),  # right decline
        row(False, DECLINE),  # right decline
        row(False, "It is Cracow [1]."),  # answered an unanswerable question
        row(True, DECLINE),  # declined an answerable one
        row(True, "Warsaw [1]."),
        row(True, "Warsaw [1]."),
        row(True, "Warsaw [1]."),
    ]
    assert quality.decline_report(rows) == {
        "declined": 3,
        "precision": 0.667,
        "recall": 0.667,
        "answerable_declined_rate": 0.25,
    }


def test_decline_report_without_declines_or_unanswerable_questions_says_none() -> None:
    report = quality.decline_report([row(True, "Warsaw [1].")])
    assert report == {
        "declined": 0,
        "precision": None,
        "recall": None,
        "answerable_declined_rate": 0.0,
    }


def test_per_kind_counts_right_answers_of_each_kind() -> None:
    rows = [
        row(True, "Warsaw [1].", "wiki"),
        row(True, "Cracow [1].", "wiki"),
        row(False, DECLINE, "unanswerable"),
        row(True, "Warsaw [1]."),  # no kind: dev.jsonl rows
    ]
    assert quality.per_kind(rows) == {
        "unanswerable": {"questions": 1, "correct": 1, "accuracy": 1.0},
        "wiki": {"questions": 2, "correct": 1, "accuracy": 0.5},
    }
    assert quality.per_kind([row(True, "Warsaw")]) == {}


def test_hygiene_report_counts_answers_and_ways() -> None:
    rows = [
        row(True, "Warsaw [1]."),
        row(True, "Answer: Warsaw [1].\n[1] Poland"),
        row(True, "Answer: Warsaw."),
    ]
    assert quality.hygiene_report(rows) == {
        "echoing_answers": 2,
        "share": 0.667,
        "by_way": {"reference list": 1, "label": 2},
    }


def test_load_items_reads_question_files(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "question": "Q?", "answers": ["x"], "answerable": true, "kind": "wiki"}\n'
        "\n"
        '{"id": "b", "question": "R?", "answers": [], "answerable": false}\n',
        encoding="utf-8",
    )
    assert [i["id"] for i in quality.load_items(str(path))] == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"id": "a", "question": "Q?", "answers": [], "answerable": true}\n{oops\n',
         ":2: not JSON"),
        (b'{"id": "a", "question": "Q?", "answers": "x", "answerable": true}\n',
         ":1: needs id and question"),
        (b'{"id": "a", "question": "Q?", "answers": [], "answerable": "yes"}\n',
         ":1: needs id and question"),
        (b'["a"]\n', ":1: needs id and question"),
        (b"\xff\xfe\n", ": not UTF-8 text"),
        (b"{" + b" " * (quality.MAX_LINE_CHARS + 10) + b"}\n", ":1: line longer than"),
    ],
)  # fmt: skip
def test_load_items_names_the_file_and_line_of_a_bad_question(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        quality.load_items(str(path))
    assert str(err.value).startswith(str(path) + message)
    assert "\n" not in str(err.value)


def test_load_items_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no.jsonl: No such file or directory"):
        quality.load_items(str(tmp_path / "no.jsonl"))


def test_correct_grades_answers_and_declines_as_before() -> None:
    item = {"answerable": True, "answers": ["Warsaw", "Warszawa"]}
    assert quality.correct(item, "The capital is WARSZAWA [1].")
    assert not quality.correct(item, "Cracow [1].")
    assert quality.correct({"answerable": False, "answers": []}, DECLINE)
    assert not quality.correct({"answerable": False, "answers": []}, "Cracow [1].")
