"""Property tests of the question-file reader (issue 11): for any bytes, any lines, any
JSON, it returns questions and per-line errors, or one InputError for the whole file; it
never raises anything else and never hangs; and what it reads can be written and read
back as an answer file."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webqa.answerfile import AnswerFile, answer_record, bad_line_record, read_records
from webqa.errors import InputError
from webqa.questionfile import QuestionFile, read_questions
from webqa.runner import Answered

SETTINGS = settings(
    max_examples=150,
    deadline=2000,  # ms an example may take: a hang fails the test instead of stalling it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def read(folder: Path, suffix: str, data: bytes) -> QuestionFile | None:
    path = folder / f"q{suffix}"
    path.write_bytes(data)
    started = time.monotonic()
    try:
        qf = read_questions(path)
    except InputError as error:
        message = str(error)
        assert message.startswith(str(path)) and "\n" not in message  # one line, naming it
        return None
    assert time.monotonic() - started < 2.0
    return qf


def check(qf: QuestionFile, data: bytes) -> None:
    lines = data.count(b"\n") + 1
    seen: set[str] = set()
    for q in qf.questions:
        assert q.text and q.text == " ".join(q.text.split()) and len(q.text) <= 2000
        assert q.text.encode("utf-8")  # valid Unicode: it can be logged and written
        assert q.id.encode("utf-8") and q.id not in seen
        seen.add(q.id)
        assert q.line is not None and 1 <= q.line <= lines
    for bad in qf.bad:
        assert 1 <= bad.line <= lines and bad.message and "\n" not in bad.message
    indexes = sorted([q.index for q in qf.questions] + [b.index for b in qf.bad])
    assert indexes == list(range(len(indexes)))  # every entry once, for sharding


def round_trip(folder: Path, qf: QuestionFile) -> None:
    """Every entry's record (each carries its line's own fields) writes and reads back."""
    out = folder / "answers.jsonl"
    out.unlink(missing_ok=True)
    with AnswerFile.open(out, qf) as f:
        for bad in qf.bad:
            f.write(bad_line_record(bad))
        for q in qf.questions:
            f.write(answer_record(Answered(q, None, "not run", "model", 0.0, 0.0)))
    assert len(read_records(out)) == len(qf.bad) + len(qf.questions)
    with AnswerFile.open(out, qf) as f:  # recognised as webqa's own, nothing dropped
        assert f.repaired == []
        assert all(f.has_bad_line(bad) for bad in qf.bad)
        assert all(f.done(q) for q in qf.questions)


@SETTINGS
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".txt", ".jsonl", ".csv"]))
def test_any_bytes_are_questions_bad_lines_or_one_input_error(
    folder: Path, data: bytes, suffix: str
) -> None:
    qf = read(folder, suffix, data)
    if qf is not None:
        check(qf, data)


# text made of what question files are made of, hostile pieces included
pieces = st.sampled_from(
    [
        "\n", "\r\n", "\r", ",", '"', "{", "}", "[", "]", ":", "\\", "\\u", "\\ud800",
        "\\udfff", "\\u0000", "\x00", "\x1b[31m", "\u2028", "\ufeff", "question", "id",
        '"question": ', '"id": ', "9" * 30, "1e999", "NaN", "true", "null", " ", "\t",
        "é", "漢", "🙂", "What is it?",
    ]
)  # fmt: skip
texts = st.lists(st.one_of(pieces, st.text(max_size=8)), max_size=60).map("".join)


@SETTINGS
@given(text=texts, suffix=st.sampled_from([".txt", ".jsonl", ".csv"]))
def test_any_text_is_questions_bad_lines_or_one_input_error(
    folder: Path, text: str, suffix: str
) -> None:
    data = text.encode("utf-8", "surrogatepass")  # encoded surrogates: not UTF-8
    qf = read(folder, suffix, data)
    if qf is not None:
        check(qf, data)
        round_trip(folder, qf)


LONE = "\ud800\udbff\udc00\udfff"  # lone surrogates: valid JSON escapes, not valid Unicode
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(alphabet=st.characters(exclude_categories=()) | st.sampled_from(LONE), max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
objects = st.dictionaries(
    st.sampled_from(["question", "id", "answers", "answer", "line", "error", "x"]),
    json_values,
    max_size=5,
)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)  # lone surrogates become \\udXXX escapes


@settings(SETTINGS, max_examples=80)  # each example fsyncs a record a line
@given(lines=st.lists(st.one_of(objects.map(dumps), json_values.map(dumps)), max_size=12))
def test_any_json_lines_are_questions_or_bad_lines_and_write_back(
    folder: Path, lines: list[str]
) -> None:
    data = "\n".join(lines).encode("ascii")
    qf = read(folder, ".jsonl", data)
    assert qf is not None  # a .jsonl file is never refused whole
    check(qf, data)
    round_trip(folder, qf)


@SETTINGS
@given(depth=st.integers(min_value=1, max_value=200_000), kind=st.sampled_from("[{"))
def test_deep_nesting_is_one_bad_line(folder: Path, depth: int, kind: str) -> None:
    inner = "[" * depth + "]" * depth if kind == "[" else '{"a": ' * depth + "1" + "}" * depth
    data = ('{"question": "Deep?", "x": ' + inner + "}\n").encode("ascii")
    qf = read(folder, ".jsonl", data)
    assert qf is not None
    check(qf, data)
    assert len(qf.questions) + len(qf.bad) == 1
