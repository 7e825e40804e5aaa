"""The value types every layer shares, and their validation: a question as every front
door takes it (validated text, and the id and place that let a caller match it with its
answer), a quote the browser recorded, and what answering a question produces (its
steps, references, candidates and result, and the progress events on the way). The
lowest layer above ``errors``: the browser, the models, the agent, the log, the API,
question files and ``webqa browse`` all take their values from here, and it imports
nothing of webqa's but errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from webqa.errors import InputError

# how a policy browses (``webqa.procedure.guided_browsing``): the --browsing choices
BROWSING = ("auto", "guided", "free")

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


# Why an episode ended: an End command (answer, nonsense, controversial), or the browser's
# limits (its actions ran out, its quotes passed their length limit, too many invalid
# commands in a row, the question's time budget ran out).
EndReason = Literal[
    "answer",
    "nonsense",
    "controversial",
    "actions",
    "quote_limit",
    "invalid_actions",
    "time_budget",
]
# An episode cut short by Ctrl-C, SIGTERM or its client going away (as logged).
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Step:
    """One browsing step as it happened (as the agent took it and the log keeps it)."""

    command: str
    valid: bool
    message: str
    prompt: str  # the observation the model answered to


@dataclass(frozen=True)
class Reference:
    """A numbered reference, built only from a quote the browser recorded."""

    n: int
    title: str
    url: str
    extract: str


@dataclass(frozen=True)
class Candidate:
    """One full episode: its browsing, quotes, answer and reward."""

    answer: str
    references: tuple[Reference, ...]
    steps: tuple[Step, ...]
    visited: tuple[str, ...]  # URLs of the pages the browser opened, in order
    end_reason: str
    removed_citations: int
    score: float | None  # the reward model's
    seconds: float
    agreement: float | None = None  # best-of-n: how much the other answers say the same

    @property
    def invalid_actions(self) -> int:
        return sum(not s.valid for s in self.steps)

    def ranking(self, consensus: float) -> float | None:
        """What best-of-n maximises: the reward, plus ``consensus`` x the agreement."""
        if self.score is None:
            return None
        return self.score + consensus * (self.agreement or 0.0)


@dataclass(frozen=True)
class Result:
    """What answer() returns: the best candidate and every candidate with its score."""

    question: str
    answer: str
    references: tuple[Reference, ...]
    best: int
    candidates: tuple[Candidate, ...]
    model: str
    seconds: float

    def to_dict(self) -> dict[str, object]:
        """The result as JSON-ready data (``ask --json``, a batch's answer records)."""

        def ref(r: Reference) -> dict[str, object]:
            return {"n": r.n, "title": r.title, "url": r.url, "extract": r.extract}

        return {
            "question": self.question,
            "answer": self.answer,
            "references": [ref(r) for r in self.references],
            "best": self.best,
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "candidates": [
                {
                    "answer": c.answer,
                    "score": c.score,
                    "agreement": c.agreement,
                    "end_reason": c.end_reason,
                    "removed_citations": c.removed_citations,
                    "invalid_actions": c.invalid_actions,
                    "seconds": round(c.seconds, 3),
                    "references": [ref(r) for r in c.references],
                    "visited": list(c.visited),
                    "trajectory": [
                        {"command": s.command, "valid": s.valid, "message": s.message}
                        for s in c.steps
                    ],
                }
                for c in self.candidates
            ],
        }


@dataclass(frozen=True)
class Event:
    """Progress reported while episodes run (for live display and --verbose)."""

    kind: str  # "command" | "prompt" | "answering" | "answer" | "scored"
    episode: int
    text: str


EventSink = Callable[[Event], None]
