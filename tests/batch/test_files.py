from __future__ import annotations

import json
from pathlib import Path

import pytest

from webqa.answerfile import AnswerFile, answer_record, default_output, read_records
from webqa.errors import InputError
from webqa.questionfile import parse_shard, read_questions
from webqa.runner import Answered
from webqa.values import Question


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_txt_one_question_a_line_blank_lines_skipped(tmp_path: Path) -> None:
    qf = read_questions(write(tmp_path / "q.txt", "What is A?\n\n  What  is B?  \r\n"))
    assert [(q.id, q.line, q.index, q.text) for q in qf.questions] == [
        ("line-1", 1, 0, "What is A?"),
        ("line-3", 3, 1, "What is B?"),
    ]
    assert qf.bad == ()


def test_jsonl_ids_carried_fields_and_every_kind_of_bad_line(tmp_path: Path) -> None:
    lines = [
        '{"id": "a", "question": "First?", "answers": ["x"]}',
        '{"question": "Second?"',
        '{"id": 7, "question": "Third?"}',
        '["not", "an", "object"]',
        '{"id": "b"}',
        '{"id": "c", "question": "   "}',
        '{"id": "a", "question": "Again?"}',
        '{"id": [1], "question": "Bad id?"}',
        '{"question": 42}',
    ]
    qf = read_questions(write(tmp_path / "q.jsonl", "\n".join(lines) + "\n"))
    assert [(q.id, q.line, q.text, dict(q.extra)) for q in qf.questions] == [
        ("a", 1, "First?", {"answers": ["x"]}),
        ("7", 3, "Third?", {}),
    ]
    assert [(b.line, b.message) for b in qf.bad] == [
        (2, "malformed JSON: Expecting ',' delimiter (column 23)"),
        (4, "expected a JSON object, got an array"),
        (5, 'no "question" field'),
        (6, "the question is empty"),
        (7, "duplicate id 'a' (first on line 1)"),
        (8, '"id" must be text or a whole number, got an array'),
        (9, '"question" is a number, not text'),
    ]


def test_csv_with_quoted_newlines_and_ragged_rows(tmp_path: Path) -> None:
    text = 'id,question,topic\nx,"Two\nlines?",geo\ny,Short?\n,No id?,misc\n'
    qf = read_questions(write(tmp_path / "q.csv", text))
    assert [(q.id, q.line, q.text, dict(q.extra)) for q in qf.questions] == [
        ("x", 2, "Two lines?", {"topic": "geo"}),
        ("line-5", 5, "No id?", {"topic": "misc"}),
    ]
    assert [(b.line, b.message) for b in qf.bad] == [(4, "expected 3 fields, got 2")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "missing.txt: no such file"),
        ("q.pdf", "x", "unknown question file type '.pdf'; expected .txt, .jsonl or .csv"),
        ("q.csv", "id,text\n1,hello\n", 'the CSV header has no "question" column'),
        ("q.csv", b"question\n\xff\xfe\n", "not UTF-8 text (byte 10)"),
    ],
)
def test_unreadable_files_are_one_input_error(
    tmp_path: Path, name: str, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_questions(path)
    assert str(info.value).endswith(message) and "\n" not in str(info.value)


def test_a_folder_is_one_input_error(tmp_path: Path) -> None:
    folder = tmp_path / "q.jsonl"
    folder.mkdir()
    with pytest.raises(InputError, match=r"q\.jsonl: is a folder, not a question file$"):
        read_questions(folder)


def test_a_bad_utf8_line_in_jsonl_is_one_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'{"question": "ok?"}\n{"question": "\xff"}\n')
    qf = read_questions(path)
    assert [q.text for q in qf.questions] == ["ok?"]
    assert [(b.line, b.message) for b in qf.bad] == [(2, "not UTF-8 text (byte 15)")]


def test_shards_split_the_file_without_overlap(tmp_path: Path) -> None:
    qf = read_questions(write(tmp_path / "q.txt", "".join(f"Q{i}?\n" for i in range(10))))
    parts = [qf.shard((i, 3)).questions for i in (1, 2, 3)]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sorted(q.id for p in parts for q in p) == sorted(q.id for q in qf.questions)
    assert parse_shard("2/3") == (2, 3)
    for bad in ["0/3", "4/3", "1/0", "a/b", "1", "1/2/3"]:
        with pytest.raises(InputError, match="--shard takes i/N with 1 <= i <= N"):
            parse_shard(bad)
    assert default_output(Path("d/q.jsonl")) == Path("d/q.answers.jsonl")
    assert default_output(Path("q.txt"), (2, 4)) == Path("q.answers.2of4.jsonl")


def done(q: Question, error: str | None = None) -> Answered:
    return Answered(q, None, error, "model" if error else None, 1.7e9, 0.5)


def test_answer_file_drops_a_partial_line_and_knows_what_is_done(tmp_path: Path) -> None:
    qf = read_questions(write(tmp_path / "q.txt", "A?\nB?\nC?\n"))
    out = tmp_path / "a.jsonl"
    with AnswerFile.open(out, qf) as f:
        f.write(answer_record(done(qf.questions[0])))
    with open(out, "ab") as raw:
        raw.write(b'{"id": "line-2", "line": 2, "quest')  # a write cut off by a kill
    with AnswerFile.open(out, qf) as f:
        assert f.repaired == ["dropped a partial last line (the previous run was cut off)"]
        assert [f.done(q) for q in qf.questions] == [True, False, False]
        f.write(answer_record(done(qf.questions[1], error="boom")))
    assert out.read_bytes().endswith(b"\n")
    assert [r["id"] for r in read_records(out)] == ["line-1", "line-2"]
    with AnswerFile.open(out, qf, retry_failed=True) as f:  # the failed record goes
        assert [f.done(q) for q in qf.questions] == [True, False, False]
        assert f.repaired == ["retrying 1 failed question(s)"]
    assert [r["id"] for r in read_records(out)] == ["line-1"]


def test_answer_file_refuses_a_different_question_file_and_a_second_writer(
    tmp_path: Path,
) -> None:
    qf = read_questions(write(tmp_path / "q.txt", "A?\n"))
    out = tmp_path / "a.jsonl"
    with AnswerFile.open(out, qf) as f:
        f.write(answer_record(done(qf.questions[0])))
        with pytest.raises(InputError, match="another webqa batch is writing this file"):
            AnswerFile.open(out, qf)
    other = read_questions(write(tmp_path / "other.txt", "Z?\n"))
    with pytest.raises(InputError, match="already answers id 'line-1' for a different question"):
        AnswerFile.open(out, other)
    with pytest.raises(InputError, match="would overwrite the question file"):
        AnswerFile.open(tmp_path / "q.txt", qf)


def test_records_carry_input_fields_without_clobbering_output_fields() -> None:
    q = Question("A?", id="x", line=3, extra={"answers": ["a"], "answer": "gold", "seconds": 1})
    record = answer_record(Answered(q, None, "boom", "model", 0.0, 1.25, log_id=9))
    assert record["answers"] == ["a"] and record["input_answer"] == "gold"
    assert record["input_seconds"] == 1 and record["seconds"] == 1.25
    assert record["answer"] is None and record["error"] == "boom" and record["log_id"] == 9
    assert record["started"] == "1970-01-01T00:00:00.000Z"
    assert record["finished"] == "1970-01-01T00:00:01.250Z"
    json.dumps(record)
