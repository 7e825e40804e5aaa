"""Fakes for batch tests: a stateless rule policy, a corpus page, a stub-server responder."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from tests.fakes import FakeWeb
from tests.models.stub_server import Reply
from webqa.errors import ModelError, SearchError
from webqa.models.base import Chat, Generation, GenerationRequest
from webqa.values import Quote
from webqa.web.base import Document, SearchResult

BF = Document(
    url="https://example.org/bf",
    title="Burkina Faso",
    body="<html><body><h1>Burkina Faso</h1><p>Burkina Faso is a landlocked country in West"
    " Africa. Its capital and largest city is Ouagadougou.</p></body></html>",
    clean=True,
)
QUOTE = "Its capital and largest city is Ouagadougou."
SCRIPT = ("Search Burkina Faso", "Clicked on link 0", f"Quote: {QUOTE}", "End: Answer")


class AnyWeb(FakeWeb):
    """A FakeWeb whose search finds every document, whatever the query (guided
    browsing searches for the whole question, which the word match rarely fits)."""

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        self.searches.append(query)
        if self.search_error is not None:
            raise SearchError(self.search_error)
        return [SearchResult(d.title, d.url, d.body[:80]) for d in self.docs.values()][:k]


def steps_taken(observation: str) -> int:
    """How many actions the observation lists under ``●Past actions``."""
    past = observation.split("●Past actions\n", 1)[1].split("\n●", 1)[0]  # to the next section
    return 0 if past.strip() == "None yet" else len(past.splitlines())


def question_of(answer_prompt: str) -> str:
    return answer_prompt.split("Question: ", 1)[1].split("\n", 1)[0]


def scripted_reply(chat: Sequence[Any], seed: int | None, temperature: float) -> str:
    """The next command from the observation alone; the answer names its question."""
    system, user = chat[0], chat[-1]
    content = user["content"] if isinstance(user, dict) else user.content
    system_text = system["content"] if isinstance(system, dict) else system.content
    if system_text.startswith("You answer questions by browsing"):
        return SCRIPT[min(steps_taken(content), len(SCRIPT) - 1)]
    suffix = f" (seed {seed})" if temperature > 0 else ""
    return f"Ouagadougou [1], for: {question_of(content)}{suffix}"


class RulePolicy:
    """Browses the same four commands for any question; thread-safe; records batches.

    ``fail_on``: a question text whose requests raise ModelError. ``delay``: seconds each
    ``generate`` call takes.
    """

    name = "rules"

    def __init__(self, *, fail_on: str | None = None, delay: float = 0.0) -> None:
        self.fail_on = fail_on
        self.delay = delay
        self.batches: list[int] = []
        self.requests: list[GenerationRequest] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        with self._lock:
            self.batches.append(len(requests))
            self.requests.extend(requests)
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            if self.delay:
                time.sleep(self.delay)
            if self.fail_on is not None and any(
                self.fail_on in m.content for r in requests for m in r.chat
            ):
                raise ModelError("rules: scripted failure")
            return [
                Generation(scripted_reply(r.chat, r.seed, r.temperature), tokens=3)
                for r in requests
            ]
        finally:
            with self._lock:
                self.concurrent -= 1

    def yes_probability(self, chats: Sequence[Chat]) -> list[float]:
        return [0.5 for _ in chats]


class LengthScorer:
    """A known reward: longer answers score higher."""

    name = "length"

    def score(self, question: str, quotes: Sequence[Quote], answer: str) -> float:
        return float(len(answer))


def stub_responder(body: dict[str, Any]) -> Reply:
    """For tests.models.stub_server: the same script over HTTP."""
    return Reply(
        scripted_reply(body["messages"], body.get("seed"), float(body.get("temperature", 0)))
    )
