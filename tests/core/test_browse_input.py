"""Property tests for the line reader of `webqa browse` (issue 11, case 11): whatever
bytes are piped in, every line comes back as clean UTF-8 text, numbered, in bounded
memory, and never an exception."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webqa.frontend import browse
from webqa.frontend.browse import Input, check_text, decode_line

LINE_PIECES = st.sampled_from(
    [b"Search ", b"caf\xc3\xa9", b"\xe9", b"\xff\xfe", b"\xed\xa0\x80", b"\r", b"\x00", b" "]
)


@settings(max_examples=200, deadline=2000)
@given(st.lists(st.one_of(st.binary(max_size=30), LINE_PIECES), max_size=30))
def test_any_piped_bytes_read_as_clean_lines(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    for errors in ("surrogateescape", "strict"):
        lines = Input(False, io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors=errors))
        seen = []
        while (line := lines.read()) is not None:
            line.text.encode("utf-8")  # never a surrogate
            assert "\n" not in line.text
            assert (line.problem is None) == (line.text.encode() in data)
            seen.append(line.number)
        expected = data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")
        assert seen == list(range(1, len(expected) + 1 if data else 1))


@settings(max_examples=200, deadline=2000)
@given(st.text(max_size=40))
def test_text_with_surrogates_is_cleaned(text: str) -> None:
    clean, problem = check_text(text)
    clean.encode("utf-8")
    assert (problem is None) == (clean == text)


@given(st.binary(max_size=40))
def test_decoded_lines_name_the_first_bad_byte(raw: bytes) -> None:
    text, problem = decode_line(raw)
    text.encode("utf-8")
    if problem is not None:
        assert problem.startswith("not valid UTF-8 (byte 0x")


def test_an_overlong_line_is_skipped_a_piece_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browse, "MAX_LINE_BYTES", 10)
    data = b"short\n" + b"y" * 95 + b"\nafter\nlast-no-newline"
    lines = Input(False, io.TextIOWrapper(io.BytesIO(data)))
    got = []
    while (line := lines.read()) is not None:
        got.append((line.number, line.text, line.problem, line.usable))
    assert got == [
        (1, "short", None, True),
        (2, "", "longer than 10 bytes", False),
        (3, "after", None, True),
        (4, "", "longer than 10 bytes", False),
    ]
