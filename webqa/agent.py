"""One question, n episodes: browse in lockstep, answer, score, keep the best.

The loop is the whole agent. Every active episode's next command comes from one batched
policy call; each environment then takes its step (fetches run in parallel threads).
When browsing ends (an End command, or a limit with quotes in hand) the answers of all
episodes are written in one more batched call, and the reward model picks the best.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from webqa import prompting
from webqa.answering import (
    DECLINED,
    NOT_IN_QUOTES,
    NOTHING_FOUND,
    CitedClaims,
    Reference,
    clean_citations,
    format_quotes,
    references,
    ungrounded,
)
from webqa.browser.commands import MAX_TEXT_CHARS, CommandConstraint
from webqa.browser.env import BrowserEnv, Observation
from webqa.models.base import GenerationRequest, Message, Policy, RewardModel
from webqa.shortlist import PassageRanker, Shortlister
from webqa.text import (
    find_citations,
    first_line,
    is_decline,
    new_keywords,
    remove_citations,
    split_sentences,
    strip_think,
)
from webqa.values import Quote
from webqa.web.base import Web


@dataclass(frozen=True)
class AgentConfig:
    """How an episode runs."""

    max_actions: int = 20  # browsing actions per episode (WebGPT evaluated with 100)
    temperature: float = 0.0  # browsing and answering; 0 is greedy. best-of-n uses >0
    command_max_tokens: int = 48  # a browser command is one short line
    answer_max_tokens: int = 200
    # a redraft (see _redraft) restates a short answer; left at 200 tokens, a constrained
    # redraft that never closed its sentence ran to the limit (27 s on an AVX2 CPU)
    redraft_max_tokens: int = 64
    # lines of page text shown a step: WebGPT's window for models that choose every
    # command; guided episodes (whose pages open at the passage to quote) see fewer, as
    # every step re-sends its window and a CPU prefills ~100 tokens a second
    window_lines: int = 20
    guided_window_lines: int = 12
    constrain: bool = True  # restrict local decoding to valid commands on the page
    guided: bool = True  # and to a sound browsing procedure (see Observation.constraint)
    shortlist: int = 1  # guided, with a ranker: quotes start at one of the k best passages
    min_passage_chars: int = 20  # shorter sentences are not offered as quote starts
    # guided, with a ranker: once a page gave a quote, may the episode leave it (follow a
    # link, go back, search again)? Off, it quotes more of the page or ends. On the 40 dev
    # questions the 0.5B, free to leave, followed link 0 in 35 and ended on the next page
    # without quoting it, every time: off gave the same 40 answers 27% faster.
    explore: bool = False
    seed: int = 0  # episode i of a question samples with seed + i
    abstain: bool = True  # an answer that adds nothing from its quotes becomes a decline
    # ... after one redraft (local models) that may cite only once a sentence states
    # something from the quotes, kept if the support judge agrees (see _redraft)
    redraft: bool = True
    consensus: float = 0.0  # best-of-n adds this x each answer's agreement with the others
    greedy_first: bool = True  # best-of-n: episode 0 is greedy (shortlist 1), the rest sample
    # best-of-n: the greedy episode's ranking gets this much more than a sampled one's (its
    # answer is the policy's likeliest: the 0.5B's greedy answers were right 21 times in
    # 40, its sampled ones 9 in 57), so a sample replaces it only when clearly better
    greedy_prior: float = 0.3


@dataclass(frozen=True)
class Step:
    """One browsing step as it happened."""

    command: str
    valid: bool
    message: str
    prompt: str  # the observation the model answered to


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


@dataclass
class _Episode:
    index: int
    env: BrowserEnv
    observation: Observation
    seed: int
    started: float
    temperature: float
    shortlist: int  # guided: how many of a page's best passages a quote may start at
    steps: list[Step] = field(default_factory=list)
    done: bool = False
    end_reason: str = ""


def browse_chat(observation: Observation, *, guided: bool = False) -> list[Message]:
    """The exact messages the policy sees for one browsing step (``guided``: the prompt
    whose worked example follows the guided procedure)."""
    system = "browse_guided_system" if guided else "browse_system"
    return [
        Message("system", prompting.render(system)),
        Message("user", observation.text),
    ]


def first_search(question: str) -> str:
    """Guided browsing's first command: the question itself as the query."""
    return "Search " + " ".join(question.split())[:MAX_TEXT_CHARS].rstrip()


def answer_chat(question: str, quotes: Sequence[Quote]) -> list[Message]:
    """The exact messages the policy sees when writing the answer."""
    return [
        Message("system", prompting.render("answer_system")),
        Message(
            "user", prompting.render("answer", question=question, quotes=format_quotes(quotes))
        ),
    ]


def run_question(
    question: str,
    *,
    policy: Policy,
    web: Web,
    reward: RewardModel | None,
    n: int = 1,
    config: AgentConfig | None = None,
    on_event: EventSink | None = None,
    ranker: PassageRanker | None = None,
) -> Result:
    """Browse n episodes together, answer each, and return the best under ``reward``.

    With a ``ranker`` and guided decoding, a quote may only start at one of the passages
    of the page that the ranker finds most relevant to the question (the model still
    picks which, and where the quote ends).
    """
    config = config or AgentConfig()
    emit = on_event or (lambda event: None)
    started = time.perf_counter()
    guided = _follows_shortlist(config, ranker)
    episodes = [
        _Episode(
            index=i,
            env=(
                env := BrowserEnv(
                    web,
                    max_actions=config.max_actions,
                    page_first=guided,
                    window_lines=config.guided_window_lines if guided else config.window_lines,
                )
            ),
            observation=env.reset(question),
            seed=config.seed + i,
            started=started,
            # best-of-n keeps one greedy episode, so sampling can only add candidates
            temperature=0.0 if greedy else config.temperature,
            shortlist=1 if greedy else config.shortlist,
        )
        for i in range(n)
        for greedy in [config.greedy_first and n > 1 and i == 0]
    ]
    _browse(
        episodes,
        policy,
        config,
        emit,
        Shortlister(
            question, ranker, shortlist=config.shortlist, min_chars=config.min_passage_chars
        ),
    )
    candidates = _answer(question, episodes, policy, config, emit)
    if reward is not None and len(candidates) > 1:
        scored = []
        for i, cand in enumerate(candidates):
            value = reward.score(question, _quotes_of(episodes[i]), cand.answer)
            emit(Event("scored", i, f"{value:.3f}"))
            scored.append(_with_score(cand, value))
        candidates = scored
        if config.consensus:
            agreement = agreements(question, [c.answer for c in candidates])
            candidates = [
                replace(c, agreement=a) for c, a in zip(candidates, agreement, strict=True)
            ]
    rankings = [c.ranking(config.consensus) for c in candidates]
    if config.greedy_first and n > 1 and rankings[0] is not None:
        rankings[0] += config.greedy_prior
    best = best_index(rankings)
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


def agreements(question: str, answers: Sequence[str]) -> list[float]:
    """For each answer, its mean agreement with the others, in [0, 1]: the overlap
    (Jaccard) of the keywords each adds to the question. Declines and answers that add
    nothing agree with nothing (finding nothing is no finding to agree on; the reward
    model scores them). Best-of-n leans towards what most episodes found, the way
    self-consistency and minimum-Bayes-risk selection do."""
    news = [
        set() if is_decline(remove_citations(a)) else new_keywords(question, a) for a in answers
    ]

    def same(a: set[str], b: set[str]) -> float:
        return len(a & b) / len(a | b) if a and b else 0.0

    if len(answers) < 2:
        return [0.0] * len(answers)
    return [
        sum(same(news[i], news[j]) for j in range(len(answers)) if j != i) / (len(answers) - 1)
        for i in range(len(answers))
    ]


def best_index(scores: Sequence[float | None]) -> int:
    """The index of the highest score (the first on ties; unscored counts as lowest)."""
    best = 0
    for i, s in enumerate(scores):
        current = scores[best]
        if s is not None and (current is None or s > current):
            best = i
    return best


def _constraint(
    e: _Episode, config: AgentConfig, shortlist: Shortlister
) -> CommandConstraint | None:
    if not config.constrain:
        return None
    if not config.guided:
        return e.observation.constraint()
    passages = shortlist(e.observation, e.shortlist)
    if passages is None:
        return e.observation.constraint(guided=True)
    return e.observation.constraint(
        guided=True, quote_from=passages.starts, quote_to=passages.ends, explore=config.explore
    )


def _open_at_best(e: _Episode, shortlist: Shortlister) -> Observation:
    """Guided: a page just opened shows from its best passage (the one a quote may start at)."""
    passages = shortlist(e.observation, e.shortlist)
    return e.observation if passages is None else e.env.show(passages.focus)


def _follows_shortlist(config: AgentConfig, ranker: PassageRanker | None) -> bool:
    """Whether episodes follow the shortlist procedure: with a ranker and guided decoding,
    the question is the first query, pages open at their best passage, observations show
    the page before the quotes and past actions, and the prompt's example says so."""
    return config.constrain and config.guided and ranker is not None


def _browse(
    episodes: list[_Episode],
    policy: Policy,
    config: AgentConfig,
    emit: EventSink,
    shortlist: Shortlister,
) -> None:
    guided = _follows_shortlist(config, shortlist.ranker)
    with ThreadPoolExecutor(max_workers=max(1, len(episodes))) as pool:
        while active := [e for e in episodes if not e.done]:
            # Guided episodes start with the question as the query (see first_search); a
            # step whose grammar admits one command takes it without asking the model.
            decided: dict[int, str] = {}
            requests = []
            for e in active:
                if guided and not e.steps:
                    decided[e.index] = first_search(e.observation.question)
                    continue
                constraint = _constraint(e, config, shortlist)
                only = constraint.only() if constraint is not None else None
                if only is not None:
                    decided[e.index] = only
                    continue
                chat = browse_chat(e.observation, guided=guided)
                emit(Event("prompt", e.index, _show(chat)))
                requests.append(
                    GenerationRequest(
                        chat=chat,
                        max_new_tokens=config.command_max_tokens,
                        temperature=e.temperature,
                        constraint=constraint,
                        stop=("\n",),
                        seed=e.seed * 1000 + len(e.steps),
                    )
                )
            generations = iter(policy.generate(requests) if requests else [])
            commands = [
                decided[e.index]
                if e.index in decided
                else first_line(strip_think(next(generations).text))
                for e in active
            ]
            results = list(pool.map(lambda e, c: e.env.step(c), active, commands))
            for e, command, result in zip(active, commands, results, strict=True):
                error = result.info.get("error")
                message = str(error or result.info.get("message") or "")
                e.steps.append(Step(command, error is None, message, e.observation.text))
                emit(
                    Event("command", e.index, command if error is None else f"{command}  ✗ {error}")
                )
                e.observation = result.observation
                if result.terminated or result.truncated:
                    e.done = True
                    e.end_reason = str(result.info.get("end_reason", "ended"))
                elif guided and error is None and command.startswith("Clicked on link"):
                    e.observation = _open_at_best(e, shortlist)


def _answer(
    question: str,
    episodes: list[_Episode],
    policy: Policy,
    config: AgentConfig,
    emit: EventSink,
) -> list[Candidate]:
    to_write = [e for e in episodes if _quotes_of(e) and e.end_reason not in _DECLINES]
    texts: dict[int, str] = {}
    if to_write:
        for e in to_write:
            emit(Event("answering", e.index, f"{len(_quotes_of(e))} quote(s)"))
        requests = [_answer_request(question, e, config) for e in to_write]
        for e, g in zip(to_write, policy.generate(requests), strict=True):
            texts[e.index] = g.text
        if config.abstain and config.redraft and config.constrain and config.guided:
            texts.update(_redraft(question, to_write, texts, policy, config, emit))
    candidates = []
    for e in episodes:
        quotes = _quotes_of(e)
        removed = 0
        if e.end_reason in _DECLINES:
            answer = DECLINED.format(reason=_DECLINES[e.end_reason])
            refs: tuple[Reference, ...] = ()
        elif not quotes:
            answer, refs = NOTHING_FOUND, ()
        else:
            answer, removed = _cleaned(texts[e.index], quotes)
            if not answer:
                answer = NOTHING_FOUND
            elif config.abstain and ungrounded(question, answer, quotes):
                answer = NOT_IN_QUOTES
            refs = tuple(references(quotes))
        emit(Event("answer", e.index, answer))
        candidates.append(
            Candidate(
                answer=answer,
                references=refs,
                steps=tuple(e.steps),
                visited=e.env.visited_urls,
                end_reason=e.end_reason,
                removed_citations=removed,
                score=None,
                seconds=time.perf_counter() - e.started,
            )
        )
    return candidates


def _cleaned(text: str, quotes: Sequence[Quote]) -> tuple[str, int]:
    """A drafted answer without thinking and without citations of missing quotes, and
    how many citations went."""
    return clean_citations(strip_think(text), len(quotes))


def _answer_request(
    question: str, e: _Episode, config: AgentConfig, constraint: CitedClaims | None = None
) -> GenerationRequest:
    return GenerationRequest(
        chat=answer_chat(question, _quotes_of(e)),
        max_new_tokens=config.answer_max_tokens
        if constraint is None
        else min(config.answer_max_tokens, config.redraft_max_tokens),
        temperature=e.temperature,
        seed=e.seed,
        constraint=constraint,
    )


def _redraft(
    question: str,
    written: list[_Episode],
    texts: dict[int, str],
    policy: Policy,
    config: AgentConfig,
    emit: EventSink,
) -> dict[int, str]:
    """Write again the answers that would be withdrawn as adding nothing from their
    quotes, with decoding that lets a citation open only after its sentence has said
    something the quotes say (``CitedClaims``); keep a redraft only if it is grounded
    and the support judge finds every cited sentence backed by the quotes it cites."""
    weak = [
        e
        for e in written
        if (text := _cleaned(texts[e.index], _quotes_of(e))[0])
        and ungrounded(question, text, _quotes_of(e))
    ]
    if not weak:
        return {}
    from webqa.models.embed import shared_embedder
    from webqa.models.reward import GroundingScorer

    for e in weak:
        emit(Event("answering", e.index, "again: the draft cited without saying anything"))
    requests = [
        _answer_request(question, e, config, CitedClaims(question, _quotes_of(e))) for e in weak
    ]
    judge = GroundingScorer(shared_embedder(), judge=policy)
    kept: dict[int, str] = {}
    for e, g in zip(weak, policy.generate(requests), strict=True):
        quotes = _quotes_of(e)
        text = _cleaned(g.text, quotes)[0]
        claims = [s for s in split_sentences(text) if find_citations(s)]
        if (
            claims
            and not ungrounded(question, text, quotes)
            and all(
                judge.supported(s, [quotes[n - 1] for n in set(find_citations(s))]) for s in claims
            )
        ):
            kept[e.index] = g.text
    return kept


_DECLINES = {
    "nonsense": "it does not make sense as asked",
    "controversial": "it is too controversial to answer from sources",
}


def _quotes_of(e: _Episode) -> tuple[Quote, ...]:
    return tuple(e.observation.quotes)


def _with_score(c: Candidate, score: float) -> Candidate:
    return replace(c, score=score)


def _show(chat: Sequence[Message]) -> str:
    return "\n".join(f"<{m.role}>\n{m.content}" for m in chat)
