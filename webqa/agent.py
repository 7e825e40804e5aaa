"""One question, n episodes: browse in lockstep, answer, score, keep the best.

The data flows one way: the procedure (``webqa.procedure``) sets up each episode's
browser and guides its commands; the episodes browse together (``webqa.browsing``);
their answers are written in one batched call (``webqa.drafting``, and a weak one again
where the procedure says so: ``webqa.redraft``); the reward model scores them all in
one call and best-of-n picks one (``webqa.ranking``). The values it returns are in
``webqa.values``.

Two bounds hold whatever the procedure: ``AgentConfig.timeout`` is the question's
wall-clock budget (browsing stops at the first step past it, and the answer is written
from the quotes so far, or declined; a model call in flight is not cut short), and an
interrupt (Ctrl-C, SIGTERM, a client gone) hands ``on_interrupt`` the episodes so far
before it goes on up, so that what was browsed can be logged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from webqa import drafting, ranking
from webqa.answering import references
from webqa.browsing import browse
from webqa.episode import Episode, new_episode
from webqa.errors import InputError
from webqa.models.base import Policy, RewardModel
from webqa.procedure import Course, Free, Procedure, quotes_key
from webqa.redraft import redraft, reread
from webqa.values import INTERRUPTED, Candidate, EventSink, Result
from webqa.web.base import Web

# the answer logged for an episode interrupted before its answer was written
INTERRUPTED_ANSWER = "Interrupted before an answer was written."


@dataclass(frozen=True)
class AgentConfig:
    """How an episode runs (how it browses is its procedure's: ``webqa.procedure``)."""

    max_actions: int = 20  # browsing actions per episode (WebGPT evaluated with 100)
    temperature: float = 0.0  # browsing and answering; 0 is greedy. best-of-n uses >0
    command_max_tokens: int = 48  # a browser command is one short line
    answer_max_tokens: int = 200
    # a redraft (see webqa.redraft) restates a short answer; left at 200 tokens, a
    # constrained redraft that never closed its sentence ran to the limit (27 s on AVX2)
    redraft_max_tokens: int = 64
    seed: int = 0  # episode i of a question samples with seed + i
    abstain: bool = True  # an answer that adds nothing from its quotes becomes a decline
    consensus: float = 0.0  # best-of-n adds this x each answer's agreement with the others
    greedy_first: bool = True  # best-of-n: episode 0 is greedy, the rest sample
    # best-of-n: the greedy episode's ranking gets this much more than a sampled one's (its
    # answer is the policy's likeliest: the 0.5B's greedy answers were right 21 times in
    # 40, its sampled ones 9 in 57), so a sample replaces it only when clearly better
    greedy_prior: float = 0.3
    # the question's wall-clock budget in seconds (None or 0: none): browsing stops at the
    # first step past it and the answer is written from the quotes so far
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout >= 0):
            raise InputError(f"timeout must be a number of seconds, 0 or more, not {self.timeout}")


def run_question(
    question: str,
    *,
    policy: Policy,
    web: Web,
    reward: RewardModel | None,
    n: int = 1,
    config: AgentConfig | None = None,
    procedure: Procedure | None = None,
    on_event: EventSink | None = None,
    on_interrupt: Callable[[Result], None] | None = None,
) -> Result:
    """Browse n episodes together, answer each, and return the best under ``reward``.

    ``procedure`` is how the policy browses (default: ``Free``, WebGPT's command set;
    small local models browse ``Guided``). If it is interrupted (a ``BaseException``
    that is not an ``Exception``: KeyboardInterrupt, or a front door's own), the
    episodes so far go to ``on_interrupt`` as a Result (``interrupted``) first.
    """
    config = config or AgentConfig()
    course = (procedure or Free()).start(question)
    emit = on_event or (lambda event: None)
    started = time.perf_counter()
    if config.timeout:
        load_model(policy)  # the budget is the question's, not the model's start-up
    deadline = time.monotonic() + config.timeout if config.timeout else None
    episodes = [
        new_episode(
            i,
            question,
            web,
            course,
            max_actions=config.max_actions,
            seed=config.seed + i,
            # best-of-n keeps one greedy episode, so sampling can only add candidates
            temperature=0.0 if greedy else config.temperature,
            started=started,
        )
        for i in range(n)
        for greedy in [config.greedy_first and n > 1 and i == 0]
    ]
    for episode in episodes:
        episode.env.deadline = deadline
    try:
        return _run(question, episodes, policy, reward, config, course, emit, started)
    except BaseException as stop:
        if on_interrupt is not None and not isinstance(stop, Exception):
            on_interrupt(interrupted(question, episodes, policy.name, started))
        raise


def _run(
    question: str,
    episodes: list[Episode],
    policy: Policy,
    reward: RewardModel | None,
    config: AgentConfig,
    course: Course,
    emit: EventSink,
    started: float,
) -> Result:
    n = len(episodes)
    browse(
        episodes,
        policy,
        course,
        max_tokens=config.command_max_tokens,
        emit=emit,
        answer_max_tokens=config.answer_max_tokens,
        redraft_max_tokens=config.redraft_max_tokens,
    )
    written = drafting.to_write(question, episodes, abstain=config.abstain)
    texts = drafting.write(
        question, written, policy, max_tokens=config.answer_max_tokens, emit=emit
    )
    most = min(config.answer_max_tokens, config.redraft_max_tokens)  # a rewrite's budget
    if config.abstain and course.redraft:
        fresh = [e for e in written if quotes_key(e.quotes) not in e.redrafted]
        texts.update(
            redraft(
                question,
                fresh,
                texts,
                policy,
                max_tokens=most,
                emit=emit,
                read_span=course.read_span,
            )
        )
    if config.abstain and course.read_span:
        texts.update(reread(question, written, texts, policy, max_tokens=most, emit=emit))
    candidates = drafting.candidates(question, episodes, texts, abstain=config.abstain, emit=emit)
    if reward is not None and len(candidates) > 1:
        quotes = [e.quotes for e in episodes]
        candidates = ranking.scored(question, candidates, quotes, reward, emit=emit)
        if config.consensus:
            candidates = ranking.with_agreement(question, candidates)
    best = ranking.choose(
        candidates,
        consensus=config.consensus,
        greedy_prior=config.greedy_prior if config.greedy_first and n > 1 else 0.0,
    )
    chosen = candidates[best]
    return Result(
        question=question,
        answer=chosen.answer,
        references=chosen.references,
        best=best,
        candidates=tuple(candidates),
        model=policy.name,
        seconds=time.perf_counter() - started,
    )


def load_model(policy: Policy) -> None:
    """Load a model that loads on first use (a local model's ``load()``) now, so that a
    time budget counts the question's work, not converting and loading the weights
    (minutes the first time). A policy with no ``load`` is left as it is."""
    load = getattr(policy, "load", None)
    if callable(load):
        load()


def interrupted(question: str, episodes: Sequence[Episode], model: str, started: float) -> Result:
    """What ``episodes`` had done when the question was interrupted, as a Result to log:
    each episode's steps and quotes, ended "interrupted" unless it had already ended,
    and no answer (``INTERRUPTED_ANSWER``)."""
    now = time.perf_counter()
    candidates = tuple(
        Candidate(
            answer=INTERRUPTED_ANSWER,
            references=tuple(references(e.quotes)),
            steps=tuple(e.steps),
            visited=e.env.visited_urls,
            end_reason=e.end_reason if e.done else INTERRUPTED,
            removed_citations=0,
            score=None,
            seconds=now - e.started,
        )
        for e in episodes
    )
    return Result(
        question=question,
        answer=INTERRUPTED_ANSWER,
        references=(),
        best=0,
        candidates=candidates,
        model=model,
        seconds=now - started,
    )
