"""The value types every layer shares, and their validation: a question as every front
door takes it (validated text, and the id and place that let a caller match it with its
answer) and a quote the browser recorded. The lowest layer above ``errors``: the
browser, the models, the agent, the API, question files and ``webqa browse`` all take
their values from here, and it imports nothing of webqa's but errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webqa.errors import InputError

MAX_QUESTION_CHARS = 2000


def validate_question(question: str) -> str:
    """The question with its whitespace collapsed; an InputError if it is empty or
    absurdly long."""
    if not isinstance(question, str):
        raise InputError(f"question must be text, got {type(question).__name__}")
    question = " ".join(question.split())
    if not question:
        raise InputError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(
            f"the question is {len(question)} characters long (at most {MAX_QUESTION_CHARS})"
        )
    return question


@dataclass(frozen=True)
class Question:
    """One question of a batch, with the id and place that let callers match answers."""

    text: str
    id: str
    index: int = 0  # position among the questions given (0-based)
    line: int | None = None  # line number in its question file (1-based), if any
    extra: Mapping[str, Any] = field(default_factory=dict)  # other fields, carried through


@dataclass(frozen=True)
class Quote:
    """An extract the browser recorded: the exact page text, with where it came from."""

    title: str
    url: str
    domain: str
    text: str
