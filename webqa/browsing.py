"""The episode loop: a question's episodes browse in lockstep until each has ended.

Every active episode's next command comes from one batched policy call (or from the
procedure, where it leaves no choice); each environment then takes its step, the
fetches in parallel threads. What the policy sees and the grammar it decodes under are
its procedure's (``webqa.procedure``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from webqa import prompting
from webqa.answering import CitedClaims, answer_chat
from webqa.browser.env import BrowserEnv, Observation
from webqa.models.base import Chat, GenerationRequest, Message, Policy
from webqa.procedure import Course, quotes_key
from webqa.text import first_line, strip_think
from webqa.values import Event, EventSink, Quote, Step
from webqa.web.base import Web


@dataclass
class Episode:
    """One episode's browser and how far it has got."""

    index: int
    env: BrowserEnv
    observation: Observation
    seed: int
    started: float
    temperature: float
    steps: list[Step] = field(default_factory=list)
    done: bool = False
    end_reason: str = ""
    # answers drafted while browsing (a judge's drafts), by the quotes they were written
    # from: the answer, if the episode ends with the same quotes
    drafts: dict[tuple[str, ...], str] = field(default_factory=dict)

    @property
    def quotes(self) -> tuple[Quote, ...]:
        return tuple(self.observation.quotes)

    @property
    def draft(self) -> str | None:
        """The answer drafted while browsing from the quotes the episode has now."""
        return self.drafts.get(quotes_key(self.quotes))


def new_episode(
    index: int,
    question: str,
    web: Web,
    course: Course,
    *,
    max_actions: int,
    seed: int,
    temperature: float,
    started: float,
) -> Episode:
    """An episode on a blank browser laid out as ``course`` says."""
    env = BrowserEnv(
        web,
        max_actions=max_actions,
        page_first=course.page_first,
        window_lines=course.window_lines,
        results_lines=course.results_lines,
        opens_at=course.opens_at,
    )
    return Episode(index, env, env.reset(question), seed, started, temperature)


def browse_chat(observation: Observation, prompt: str) -> list[Message]:
    """The exact messages the policy sees for one browsing step (``prompt``: the
    procedure's system prompt template)."""
    return [
        Message("system", prompting.render(prompt)),
        Message("user", observation.text),
    ]


def browse(
    episodes: list[Episode],
    policy: Policy,
    course: Course,
    *,
    max_tokens: int,
    emit: EventSink,
    answer_max_tokens: int = 200,
) -> None:
    """Run ``episodes`` until each has ended (``max_tokens``: a command's budget;
    ``answer_max_tokens``: an answer's, where the procedure's judge drafts one)."""
    with ThreadPoolExecutor(max_workers=max(1, len(episodes))) as pool:
        while active := [e for e in episodes if not e.done]:
            # a step the procedure decides (its opening command, or a step whose grammar
            # admits one command) is taken without asking the model
            judge(active, policy, course, answer_max_tokens, emit)
            decided: dict[int, str] = {}
            requests = []
            for e in active:
                opening = course.opening(e.observation) if not e.steps else None
                if opening is not None:
                    decided[e.index] = opening
                    continue
                constraint = course.grammar(e.observation, e.temperature, e.index)
                only = constraint.only()
                if only is not None:
                    decided[e.index] = only
                    continue
                chat = browse_chat(e.observation, course.prompt_at(e.observation))
                emit(Event("prompt", e.index, show_chat(chat)))
                requests.append(
                    GenerationRequest(
                        chat=chat,
                        max_new_tokens=max_tokens,
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


def judge(
    active: Sequence[Episode],
    policy: Policy,
    course: Course,
    answer_max_tokens: int,
    emit: EventSink,
) -> None:
    """Ask the policy, in one batch, what ``course`` wants to know before the episodes'
    next commands (whether their quotes so far state the answer): its P(yes), the same
    chat asked once, or (``course.judge_by == "draft"``) each episode's answer drafted
    as the end would draft it (``answer_request``), kept in ``Episode.drafts``."""
    asking = [
        (e, chat) for e in active if e.steps and (chat := course.judge(e.observation)) is not None
    ]
    if not asking:
        return
    if course.judge_by == "draft":
        for e, _ in asking:
            emit(Event("answering", e.index, f"{len(e.quotes)} quote(s), to judge them"))
        requests = [answer_request(e.observation.question, e, answer_max_tokens) for e, _ in asking]
        for (e, _), g in zip(asking, policy.generate(requests), strict=True):
            e.drafts[quotes_key(e.quotes)] = g.text
            course.judged(e.observation, g.text)
        return
    asked: dict[tuple[str, ...], list[Episode]] = {}
    chats: list[Chat] = []
    for e, chat in asking:
        key = tuple(m.content for m in chat)
        if key not in asked:
            asked[key] = []
            chats.append(chat)
        asked[key].append(e)
    for episodes, yes in zip(asked.values(), policy.yes_probability(chats), strict=True):
        for e in episodes:
            course.judged(e.observation, yes)


def answer_request(
    question: str, e: Episode, max_tokens: int, constraint: CitedClaims | None = None
) -> GenerationRequest:
    """The request that writes ``e``'s answer from its quotes (under ``constraint``, if
    given), decoded as ``e`` browses: its temperature and seed. The same request whether
    the answer is drafted to judge the quotes or at the end, so a draft can stand."""
    return GenerationRequest(
        chat=answer_chat(question, e.quotes),
        max_new_tokens=max_tokens,
        temperature=e.temperature,
        seed=e.seed,
        constraint=constraint,
    )


def show_chat(chat: Sequence[Message]) -> str:
    """A chat as --verbose prints it."""
    return "\n".join(f"<{m.role}>\n{m.content}" for m in chat)
