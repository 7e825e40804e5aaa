"""The fakes at webqa's seams, one a seam, for every test: a Web, a Policy, a reward
model, a passage ranker, and the Backends a front door gets its parts from."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from webqa.api import Backends
from webqa.errors import FetchError, ModelError, SearchError
from webqa.models.base import Chat, Generation, GenerationRequest, Policy, RewardModel, Scorable
from webqa.shortlist import PassageRanker
from webqa.web.base import Document, SearchResult, Web

BF = Document(
    url="https://example.org/bf",
    title="Burkina Faso",
    body="<html><body><h1>Burkina Faso</h1><p>Burkina Faso is a landlocked country in West"
    " Africa. Its capital and largest city is Ouagadougou.</p></body></html>",
    clean=True,
)
QUOTE = "Its capital and largest city is Ouagadougou."
SCRIPT = ("Search Burkina Faso", "Clicked on link 0", f"Quote: {QUOTE}", "End: Answer")


class FakeWeb:
    """Fetches from ``docs`` by URL; searches ``results`` by exact query, else by words
    (with ``any_query``, every document whatever the query: guided browsing searches for
    the whole question, which the word match rarely fits).

    Every call is recorded in ``searches`` / ``fetches``. ``search_error`` (if set) makes
    every search fail; URLs not in ``docs`` fail to fetch.
    """

    def __init__(
        self,
        docs: Iterable[Document] = (),
        results: dict[str, list[SearchResult]] | None = None,
        *,
        name: str = "fake",
        search_error: str | None = None,
        any_query: bool = False,
    ) -> None:
        self.name = name
        self.docs = {doc.url: doc for doc in docs}
        self.results = dict(results or {})
        self.search_error = search_error
        self.any_query = any_query
        self.searches: list[str] = []
        self.fetches: list[str] = []

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """Canned results for ``query``, else documents whose title or body has every word."""
        self.searches.append(query)
        if self.search_error is not None:
            raise SearchError(self.search_error)
        if query in self.results:
            return self.results[query][:k]
        words = query.lower().split()
        hits = [
            SearchResult(doc.title, doc.url, doc.body[:80])
            for doc in self.docs.values()
            if self.any_query or all(w in f"{doc.title} {doc.body}".lower() for w in words)
        ]
        return hits[:k]

    def fetch(self, url: str) -> Document:
        """The document at ``url``; FetchError if there is none."""
        self.fetches.append(url)
        if url not in self.docs:
            raise FetchError(f"404 Not Found: {url}", url=url)
        return self.docs[url]


def steps_taken(observation: str) -> int:
    """How many actions the observation lists under ``●Past actions``."""
    past = observation.split("●Past actions\n", 1)[1].split("\n●", 1)[0]  # to the next section
    return 0 if past.strip() == "None yet" else len(past.splitlines())


def question_of(answer_prompt: str) -> str:
    return answer_prompt.split("Question: ", 1)[1].split("\n", 1)[0]


def scripted_reply(chat: Sequence[Any], seed: int | None, temperature: float) -> str:
    """The rules: the next command of ``SCRIPT`` from the observation alone; the answer
    names its question without its end mark (an answer that repeats the question whole
    is an echo, which drafting drops) and, sampled, its seed."""
    system, user = chat[0], chat[-1]
    content = user["content"] if isinstance(user, dict) else user.content
    system_text = system["content"] if isinstance(system, dict) else system.content
    if system_text.startswith("You answer questions by browsing"):
        return SCRIPT[min(steps_taken(content), len(SCRIPT) - 1)]
    suffix = f" (seed {seed})" if temperature > 0 else ""
    return f"Ouagadougou [1], for: {question_of(content).rstrip('.!?')}{suffix}"


def _rules(request: GenerationRequest) -> str:
    return scripted_reply(request.chat, request.seed, request.temperature)


class FakePolicy:
    """The fake Policy: each request's reply is ``reply(request)`` (default: the rules,
    ``scripted_reply``: the same four commands for any question); thread-safe.

    Records ``requests``, each batch's size (``batches``) and last messages (``prompts``),
    each ``yes_probability`` batch's size (``yes_batches``) and most calls at once
    (``max_concurrent``). ``fail_on``: text whose requests raise ModelError; ``delay``:
    seconds each ``generate`` takes; ``yes``: every ``yes_probability`` (a number, or a
    function of the chat); the chats asked are kept in ``yes_chats``. ``hardware``: the
    precision choice (``models.hardware.Choice``) it reports, as a local model does,
    from its first ``generate`` (its load) on.
    """

    def __init__(
        self,
        reply: Callable[[GenerationRequest], str] = _rules,
        *,
        name: str = "rules",
        fail_on: str | None = None,
        delay: float = 0.0,
        yes: float | Callable[[Chat], float] = 0.5,
        hardware: Any = None,
    ) -> None:
        self.reply = reply
        self.name = name
        self.fail_on = fail_on
        self.delay = delay
        self.yes = yes
        self.batches: list[int] = []
        self.prompts: list[list[str]] = []
        self.requests: list[GenerationRequest] = []
        self.yes_batches: list[int] = []
        self.yes_chats: list[Chat] = []
        self.hardware: Any = None  # a local model's precision choice: set once "loaded"
        self._hardware = hardware
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        with self._lock:
            self.hardware = self._hardware  # a local model chooses it as it loads
            self.batches.append(len(requests))
            self.prompts.append([r.chat[-1].content for r in requests])
            self.requests.extend(requests)
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            if self.delay:
                time.sleep(self.delay)
            if self.fail_on is not None and any(
                self.fail_on in m.content for r in requests for m in r.chat
            ):
                raise ModelError(f"{self.name}: scripted failure")
            return [Generation(self.reply(r), tokens=3) for r in requests]
        finally:
            with self._lock:
                self.concurrent -= 1

    def yes_probability(self, chats: Sequence[Chat]) -> list[float]:
        with self._lock:
            self.yes_batches.append(len(chats))
            self.yes_chats.extend(chats)
        yes = self.yes
        return [yes(chat) if callable(yes) else yes for chat in chats]


def scripted_policy(
    scripts: list[list[str]], answers: list[str], spans: list[str] | None = None
) -> FakePolicy:
    """A FakePolicy that plays fixed browsing commands (one list per episode: the
    command for each step, found by the request's seed, ``episode * 1000 + step``) and
    fixed answers in turn. A step the agent takes without asking (the guided first
    search, a step with one admissible command) skips its script entry. Asked to copy
    out the quotes' words that answer the question (``webqa.reading``), it gives
    ``spans`` in turn (none given: it copies nothing)."""
    scripts = [list(s) for s in scripts]
    answers = list(answers)
    copied = list(spans or [])

    def reply(request: GenerationRequest) -> str:
        if request.chat[0].content.startswith("You answer questions by browsing"):
            episode, step = divmod(request.seed if request.seed is not None else 0, 1000)
            return scripts[episode][step]
        if request.chat[0].content.startswith("You copy"):
            return copied.pop(0) if copied else ""
        return answers.pop(0)

    return FakePolicy(reply, name="scripted")


class FakeReward:
    """The fake RewardModel: each answer's score looked up in ``table``, or (no table)
    its length, so longer answers score higher. Records each call's answers."""

    def __init__(self, table: dict[str, float] | None = None) -> None:
        self.table = table
        self.name = "table" if table is not None else "length"
        self.calls: list[list[str]] = []

    def score(self, question: str, answers: Sequence[Scorable]) -> list[float]:
        texts = [answer for _, answer in answers]
        self.calls.append(texts)
        if self.table is not None:
            return [self.table[t] for t in texts]
        return [float(len(t)) for t in texts]


def flat_ranker(question: str, passages: Sequence[str]) -> list[float]:
    """The fake passage ranker: every passage alike (the shortlist keeps page order)."""
    return [0.0] * len(passages)


class FakeBackends(Backends):
    """The fake ``webqa.api.Backends``: the parts given here, whatever is named, and
    every request recorded in ``calls`` (what was asked for, with its options). A part
    given as an exception is raised when asked for."""

    def __init__(
        self,
        policy: Policy | BaseException | None = None,
        *,
        web: Web | BaseException | None = None,
        reward: RewardModel | None = None,
        ranker: PassageRanker = flat_ranker,
    ) -> None:
        self._policy = policy if policy is not None else FakePolicy()
        self._web = web if web is not None else FakeWeb([BF], any_query=True)
        self._reward = reward if reward is not None else FakeReward()
        self._ranker = ranker
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def policy(
        self,
        model: str | None,
        *,
        api_base: str | None = None,
        dtype: str | None = None,
        concurrency: int = 1,
        decoding: str | None = None,
    ) -> Policy:
        call = {"model": model, "api_base": api_base, "dtype": dtype}
        if decoding is not None:
            call["decoding"] = decoding
        self.calls.append(("policy", call))
        if isinstance(self._policy, BaseException):
            raise self._policy
        return self._policy

    def reward(self, spec: str | None, policy: Policy) -> RewardModel:
        self.calls.append(("reward", {"spec": spec}))
        return self._reward

    def web(
        self,
        *,
        live: bool = False,
        zim: str | Path | None = None,
        searxng: str | None = None,
        engine: str | None = None,
        allow_private: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> Web:
        self.calls.append(("web", {"live": live, "zim": zim}))
        if isinstance(self._web, BaseException):
            raise self._web
        return self._web

    def ranker(self) -> PassageRanker:
        self.calls.append(("ranker", {}))
        return self._ranker

    def asked(self, part: str, option: str) -> list[Any]:
        """``option`` of every request for ``part`` so far."""
        return [options[option] for what, options in self.calls if what == part]


class FakeCorpusSources:
    """The default corpus' records (``webqa.web.corpus.CorpusSources``) from lists given
    here; ``loads`` records each load ("wiki", "factbook")."""

    def __init__(self, wiki: list[Any], factbook: list[Any]) -> None:
        self._wiki, self._factbook = wiki, factbook
        self.loads: list[str] = []

    def wiki(self) -> list[Any]:
        self.loads.append("wiki")
        return self._wiki

    def factbook(self) -> list[Any]:
        self.loads.append("factbook")
        return self._factbook
