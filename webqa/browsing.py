"""The episode loop: a question's episodes browse in lockstep until each has ended.

Every active episode's next command comes from one batched policy call (or from the
procedure, where it leaves no choice); each environment then takes its step, the
fetches in parallel threads. What the policy sees and the grammar it decodes under are
its procedure's (``webqa.procedure``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from webqa import prompting
from webqa.browser.env import Observation
from webqa.episode import Episode, answer_request
from webqa.models.base import Chat, GenerationRequest, Message, Policy
from webqa.procedure import Course, quotes_key
from webqa.redraft import redraft
from webqa.text import first_line, strip_think
from webqa.values import Event, EventSink, Step


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
    redraft_max_tokens: int = 64,
) -> None:
    """Run ``episodes`` until each has ended (``max_tokens``: a command's budget;
    ``answer_max_tokens``: an answer's, where the procedure's judge drafts one;
    ``redraft_max_tokens``: a redraft's, where it redrafts one)."""
    with ThreadPoolExecutor(max_workers=max(1, len(episodes))) as pool:
        while active := [e for e in episodes if not e.done]:
            # a step the procedure decides (its opening command, or a step whose grammar
            # admits one command) is taken without asking the model
            judge(active, policy, course, (answer_max_tokens, redraft_max_tokens), emit)
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
    max_tokens: tuple[int, int],
    emit: EventSink,
) -> None:
    """Ask the policy, in one batch, what ``course`` wants to know before the episodes'
    next commands (whether their quotes so far state the answer): its P(yes), the same
    chat asked once, or (``course.judge_by == "draft"``) each episode's answer drafted
    as the end would draft it (``answer_request``) and, where the procedure redrafts,
    a draft that adds nothing from its quotes written again as the end would
    (``webqa.redraft``), so that the judge sees the answer the end would show; the
    answer is kept in ``Episode.drafts``. ``max_tokens``: an answer's and a redraft's
    budgets."""
    asking = [
        (e, chat) for e in active if e.steps and (chat := course.judge(e.observation)) is not None
    ]
    if not asking:
        return
    if course.judge_by == "draft":
        for e, _ in asking:
            emit(Event("answering", e.index, f"{len(e.quotes)} quote(s), to judge them"))
        answer_tokens, redraft_tokens = max_tokens
        drafted = [e for e, _ in asking]
        question = drafted[0].observation.question
        requests = [answer_request(question, e, answer_tokens) for e in drafted]
        texts = {e.index: g.text for e, g in zip(drafted, policy.generate(requests), strict=True)}
        if course.redraft:
            most = min(answer_tokens, redraft_tokens)
            texts.update(
                redraft(
                    question,
                    drafted,
                    texts,
                    policy,
                    max_tokens=most,
                    emit=emit,
                    read_span=course.read_span,
                )
            )
        for e in drafted:
            key = quotes_key(e.quotes)
            e.drafts[key] = texts[e.index]
            if course.redraft:
                e.redrafted.add(key)
            course.judged(e.observation, texts[e.index])
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


def show_chat(chat: Sequence[Message]) -> str:
    """A chat as --verbose prints it."""
    return "\n".join(f"<{m.role}>\n{m.content}" for m in chat)
