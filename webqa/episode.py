"""An episode: one browser on its way through a question, and the request that writes
its answer from its quotes (the same whether the answer is drafted while browsing, to
judge the quotes, or at the end).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from webqa.answering import CitedClaims, answer_chat
from webqa.browser.env import BrowserEnv, Observation
from webqa.models.base import GenerationRequest
from webqa.procedure import Course, quotes_key
from webqa.values import Quote, Step
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
    # the quotes whose draft was already written again where it added nothing from them
    # (``webqa.redraft``): the end does not try again
    redrafted: set[tuple[str, ...]] = field(default_factory=set)

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
