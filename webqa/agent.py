"""One question, n episodes: browse in lockstep, answer, score, keep the best.

The data flows one way: the procedure (``webqa.procedure``) sets up each episode's
browser and guides its commands; the episodes browse together (``webqa.browsing``);
their answers are written in one batched call (``webqa.drafting``, and a weak one again
where the procedure says so: ``webqa.redraft``); the reward model scores them all in
one call and best-of-n picks one (``webqa.ranking``). The values it returns are in
``webqa.values``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from webqa import drafting, ranking
from webqa.browsing import browse, new_episode
from webqa.models.base import Policy, RewardModel
from webqa.procedure import Free, Procedure
from webqa.redraft import redraft
from webqa.values import EventSink, Result
from webqa.web.base import Web


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
) -> Result:
    """Browse n episodes together, answer each, and return the best under ``reward``.

    ``procedure`` is how the policy browses (default: ``Free``, WebGPT's command set;
    small local models browse ``Guided``).
    """
    config = config or AgentConfig()
    course = (procedure or Free()).start(question)
    emit = on_event or (lambda event: None)
    started = time.perf_counter()
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
    browse(episodes, policy, course, max_tokens=config.command_max_tokens, emit=emit)
    written = drafting.to_write(episodes)
    texts = drafting.write(
        question, written, policy, max_tokens=config.answer_max_tokens, emit=emit
    )
    if config.abstain and course.redraft:
        most = min(config.answer_max_tokens, config.redraft_max_tokens)
        texts.update(redraft(question, written, texts, policy, max_tokens=most, emit=emit))
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
