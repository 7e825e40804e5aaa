"""Comparisons: which of two answers to a question is better, as people (``webqa
compare``) or the bootstrap judge them, and what a reward model trains on.

One comparison per JSON line, in the public WebGPT comparisons schema:

    {"question": {"full_text": "..."},
     "quotes_0": {"title": ["..."], "extract": ["..."], "url": ["..."]},
     "answer_0": "... [1].",
     "quotes_1": {...}, "answer_1": "...",
     "score_0": 1.0, "score_1": -1.0}

``score_k`` is in [-1, 1] and ``score_0 == -score_1``: 1 for the better answer, 0 both
for a tie. Read leniently as well: ``question`` may be a plain string, ``quotes_k`` a list
of ``{"title", "extract"|"text", "url"}`` objects, and ``url`` may be missing; ``note``
(a person's remark) and ``source`` (who judged: "person", "bootstrap", ...) are kept.

Every row is checked, and a bad one is an ``InputError`` naming the file and line and
what is wrong (a missing answer, a score out of range, scores that disagree); nothing is
dropped silently. Bounded: at most ``MAX_ROWS`` rows, ``MAX_LINE_BYTES`` a line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webqa.errors import InputError
from webqa.jsonl import read_jsonl
from webqa.values import Quote

MAX_ROWS = 1_000_000
MAX_LINE_BYTES = 1_000_000  # a comparison's line (two answers and their quotes)
SCORE_TOLERANCE = 1e-6  # score_0 + score_1 may be off zero by this much


@dataclass(frozen=True)
class Comparison:
    """Two answers to one question, each with the quotes it cites, and the judgement:
    ``score_0`` in [-1, 1] (``score_1`` is its negation), 0 a tie."""

    question: str
    quotes_0: tuple[Quote, ...]
    answer_0: str
    quotes_1: tuple[Quote, ...]
    answer_1: str
    score_0: float
    note: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # kept on export

    @property
    def score_1(self) -> float:
        return -self.score_0

    @property
    def preferred(self) -> int | None:
        """0 or 1, the better answer; None for a tie."""
        if self.score_0 > 0:
            return 0
        if self.score_0 < 0:
            return 1
        return None

    def to_dict(self) -> dict[str, Any]:
        """The row in the WebGPT schema (with ``note`` and ``source`` when set)."""
        row: dict[str, Any] = {**self.extra, "question": {"full_text": self.question}}
        for k, quotes, answer, score in (
            (0, self.quotes_0, self.answer_0, self.score_0),
            (1, self.quotes_1, self.answer_1, self.score_1),
        ):
            row[f"quotes_{k}"] = {
                "title": [q.title for q in quotes],
                "extract": [q.text for q in quotes],
                "url": [q.url for q in quotes],
            }
            row[f"answer_{k}"] = answer
            row[f"score_{k}"] = score + 0.0  # never -0.0
        if self.note:
            row["note"] = self.note
        if self.source:
            row["source"] = self.source
        return row


def from_dict(row: object) -> Comparison:
    """A comparison from one row (see the module's docstring); ValueError says what is
    wrong with it."""
    if not isinstance(row, dict):
        raise ValueError("a comparison is a JSON object")
    question = row.get("question")
    if isinstance(question, dict):
        question = question.get("full_text")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("no question")
    answers = []
    for k in (0, 1):
        answer = row.get(f"answer_{k}")
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError(f"no answer_{k}")
        answers.append(answer)
    score_0 = _score(row, 0)
    if "score_1" in row:
        score_1 = _score(row, 1)
        if abs(score_0 + score_1) > SCORE_TOLERANCE:
            raise ValueError(f"score_0 {score_0:g} and score_1 {score_1:g} do not sum to 0")
    note, source = row.get("note", ""), row.get("source", "")
    if not isinstance(note, str) or not isinstance(source, str):
        raise ValueError("note and source must be strings")
    known = {"question", "note", "source"} | {
        f"{name}_{k}" for name in ("quotes", "answer", "score") for k in (0, 1)
    }
    return Comparison(
        question=question.strip(),
        quotes_0=_quotes(row.get("quotes_0"), 0),
        answer_0=answers[0],
        quotes_1=_quotes(row.get("quotes_1"), 1),
        answer_1=answers[1],
        score_0=score_0,
        note=note,
        source=source,
        extra={key: value for key, value in row.items() if key not in known},
    )


def _score(row: dict[str, Any], k: int) -> float:
    value = row.get(f"score_{k}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"score_{k} must be a number in [-1, 1]")
    score = float(value)
    if not math.isfinite(score) or not -1.0 <= score <= 1.0:
        raise ValueError(f"score_{k} {value!r} is not in [-1, 1]")
    return score


def _quotes(value: object, k: int) -> tuple[Quote, ...]:
    """WebGPT's column form ({"title": [...], "extract": [...]}) or a list of objects."""
    if value is None:
        return ()
    if isinstance(value, dict):
        titles, extracts = value.get("title", []), value.get("extract", [])
        urls = value.get("url") or [""] * len(titles)
        if not all(isinstance(v, list) for v in (titles, extracts, urls)):
            raise ValueError(f"quotes_{k}: title, extract and url must be lists")
        if not len(titles) == len(extracts) == len(urls):
            raise ValueError(f"quotes_{k}: title, extract and url differ in length")
        columns = zip(titles, extracts, urls, strict=True)
        rows = [{"title": t, "extract": e, "url": u} for t, e, u in columns]
    elif isinstance(value, list):
        rows = value
    else:
        raise ValueError(f"quotes_{k} must be an object of lists or a list of objects")
    quotes = []
    for n, item in enumerate(rows, 1):
        if not isinstance(item, dict):
            raise ValueError(f"quotes_{k} [{n}] is not an object")
        title = item.get("title", "")
        text = item.get("extract", item.get("text"))
        url = item.get("url", "") or ""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"quotes_{k} [{n}] has no extract")
        if not isinstance(title, str) or not isinstance(url, str):
            raise ValueError(f"quotes_{k} [{n}]: title and url must be strings")
        quotes.append(Quote(title, url, "", text))
    return tuple(quotes)


def read_comparisons(path: str | Path) -> list[Comparison]:
    """Every comparison in a JSONL file; InputError names the file and line of a bad
    row (blank lines are skipped)."""
    out: list[Comparison] = []
    for number, row in read_jsonl(path, MAX_LINE_BYTES):
        if len(out) >= MAX_ROWS:
            raise InputError(f"{path}: more than {MAX_ROWS} comparisons")
        try:
            out.append(from_dict(row))
        except ValueError as exc:
            raise InputError(f"{path} line {number}: {exc}") from None
    return out


def write_comparisons(path: str | Path, comparisons: Iterable[Comparison]) -> int:
    """Write ``comparisons`` as JSONL (replacing the file at once); how many."""
    where = Path(path)
    partial = where.with_name(f".{where.name}.partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8") as out:
            for c in comparisons:
                out.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
                count += 1
        partial.replace(where)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"{where}: cannot write: {exc.strerror or exc}") from None
    return count


def pairs(comparisons: Sequence[Comparison]) -> Iterator[tuple[Comparison, float]]:
    """Each comparison with the probability that answer 0 is the better one (1, 0, or
    0.5 for a tie: ties count half-half in a Bradley-Terry loss)."""
    for c in comparisons:
        yield c, 0.5 + 0.5 * c.score_0
