"""The comparisons file: the WebGPT schema read and written, lenient forms read, and
every bad row an error naming its file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webqa.comparisons import Comparison, from_dict, pairs, read_comparisons, write_comparisons
from webqa.errors import InputError
from webqa.values import Quote

WEBGPT_ROW = {
    "question": {"full_text": "Why is the sky blue?", "dataset": "eli5"},
    "quotes_0": {"title": ["Rayleigh scattering"], "extract": ["Short waves scatter more."]},
    "answer_0": "Blue light scatters more [1].",
    "tokens_0": [1, 2],
    "score_0": 1.0,
    "quotes_1": {"title": [], "extract": []},
    "answer_1": "Because of the ocean.",
    "tokens_1": [3],
    "score_1": -1.0,
}

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(
    str.strip
)


@given(
    question=text,
    answers=st.tuples(text, text),
    score=st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]),
    note=st.text(max_size=20),
)
def test_a_written_comparison_reads_back_the_same(
    question: str, answers: tuple[str, str], score: float, note: str
) -> None:
    quote = Quote("T", "https://example.org/t", "", "An extract.")
    c = Comparison(question.strip(), (quote,), answers[0], (), answers[1], score, note=note)
    back = from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == Comparison(
        question.strip(),
        (Quote("T", "https://example.org/t", "", "An extract."),),
        answers[0],
        (),
        answers[1],
        score,
        note=note,
    )


def test_the_public_webgpt_schema_and_lenient_forms(tmp_path: Path) -> None:
    c = from_dict(WEBGPT_ROW)
    assert c.question == "Why is the sky blue?" and c.preferred == 0 and c.score_1 == -1.0
    assert c.quotes_0 == (Quote("Rayleigh scattering", "", "", "Short waves scatter more."),)
    assert c.extra["tokens_0"] == [1, 2]  # unknown fields are kept on export
    lenient = from_dict(
        {
            "question": "Q?",
            "quotes_0": [{"title": "T", "text": "x", "url": "u"}],
            "answer_0": "a",
            "answer_1": "b",
            "score_0": 0,
        }
    )
    assert lenient.preferred is None and lenient.quotes_1 == ()
    path = tmp_path / "c.jsonl"
    assert write_comparisons(path, [c, lenient]) == 2
    assert read_comparisons(path) == [c, lenient]
    assert [p for _, p in pairs([c, lenient])] == [1.0, 0.5]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**WEBGPT_ROW, "answer_1": ""}, "no answer_1"),
        ({**WEBGPT_ROW, "score_0": 2}, "score_0 2 is not in"),
        ({**WEBGPT_ROW, "score_1": 1.0}, "do not sum to 0"),
        ({**WEBGPT_ROW, "question": {}}, "no question"),
        ({**WEBGPT_ROW, "quotes_0": {"title": ["a"], "extract": []}}, "differ in length"),
        ({**WEBGPT_ROW, "quotes_0": [{"title": "a"}]}, r"quotes_0 \[1\] has no extract"),
    ],
)
def test_a_bad_row_names_its_file_and_line(
    tmp_path: Path, row: dict[str, object], message: str
) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(WEBGPT_ROW) + "\n\n" + json.dumps(row) + "\n")
    with pytest.raises(InputError, match=rf"c\.jsonl line 3: .*{message}"):
        read_comparisons(path)


def test_unreadable_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_comparisons(tmp_path / "missing.jsonl")
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(InputError, match=r"folder\.jsonl: is a folder, not a JSONL file$"):
        read_comparisons(tmp_path / "folder.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(InputError, match=r"bad\.jsonl line 1: not valid JSON"):
        read_comparisons(bad)
    bad.write_bytes(b"\xff\xfe\n")
    with pytest.raises(InputError, match=r"bad\.jsonl line 1: not valid UTF-8"):
        read_comparisons(bad)
