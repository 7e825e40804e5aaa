"""The model seams: a policy (text generator) and a reward model (answer scorer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from webqa.values import Quote


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: str  # "system" | "user" | "assistant"
    content: str


Chat = Sequence[Message]


@runtime_checkable
class Constraint(Protocol):
    """Restricts what a generation may be (browser commands; cited answers).

    ``allows(text)`` is true when ``text`` is a prefix of some valid output;
    ``complete(text)`` is true when ``text`` is a whole valid output. A constrained
    generation ends at the first newline after a complete output (the newline is not
    part of the result) or at end of sequence; one whose constraint has a true
    ``multiline`` attribute goes on past newlines (``webqa.answering.CitedClaims``).
    """

    def allows(self, text: str) -> bool: ...

    def complete(self, text: str) -> bool: ...


@runtime_checkable
class ForcingConstraint(Constraint, Protocol):
    """A constraint that can also say what every valid output growing from ``text`` goes
    on with (``webqa.browser.commands.CommandConstraint``); a local decoder feeds that
    text in one step instead of a token at a time."""

    def forced(self, text: str) -> str: ...


@dataclass(frozen=True)
class GenerationRequest:
    """One generation in a batch."""

    chat: Chat
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 means greedy
    constraint: Constraint | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Generation:
    """What a policy produced for one request."""

    text: str
    tokens: int  # new tokens generated
    prompt_tokens: int = 0


@runtime_checkable
class Policy(Protocol):
    """A language model: chats in, completions out, as one batch."""

    name: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Complete every request; local backends run them as one batched decode."""
        ...

    def yes_probability(self, chats: Sequence[Chat]) -> list[float]:
        """P("yes") / (P("yes") + P("no")) for the first token of each reply."""
        ...


# An answer to score, with the quotes it may cite (its [n] is quotes[n - 1]).
Scorable = tuple[Sequence[Quote], str]


@runtime_checkable
class RewardModel(Protocol):
    """Scores the answers to a question, each with the quotes it may cite."""

    name: str

    def score(self, question: str, answers: Sequence[Scorable]) -> list[float]:
        """One score per answer, higher is better; all of a question's answers (best-of-n's
        candidates) in one call, so that a model scores them as one batch."""
        ...
