"""The Python front door: answer() and the pieces every front door shares."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from webqa.agent import AgentConfig, EventSink, Result, run_question
from webqa.errors import InputError
from webqa.models.base import Policy, RewardModel
from webqa.web.base import Web

DEFAULT_MODEL = "qwen-0.5b"
_policies: dict[tuple[str, str | None], Policy] = {}


def load_policy(model: str | None = None, *, api_base: str | None = None) -> Policy:
    """A policy by preset name, HF id, folder or GGUF path; or a model behind an
    OpenAI-compatible server when ``api_base`` is given. Loaded policies are reused."""
    model = model or os.environ.get("WEBQA_MODEL") or DEFAULT_MODEL
    key = (model, api_base)
    if key not in _policies:
        if api_base:
            from webqa.models.openai import OpenAIPolicy

            _policies[key] = OpenAIPolicy(model, api_base=api_base)
        else:
            from webqa.models.local import LocalPolicy

            _policies[key] = LocalPolicy(model)
    return _policies[key]


def open_web(
    *,
    live: bool = False,
    zim: str | Path | None = None,
    searxng: str | None = None,
    engine: str | None = None,
    allow_private: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Web:
    """The web to browse: the embedded corpus (default), a ZIM file, or the live web."""
    if live or searxng or engine:
        from webqa.web.live import make_live_web

        chosen = engine or ("searxng" if searxng else "duckduckgo")
        return make_live_web(engine=chosen, searxng_url=searxng, allow_private=allow_private)
    from webqa.web.zimweb import ZimWeb, open_default_corpus

    if zim is not None:
        return ZimWeb(Path(zim))
    return open_default_corpus(progress=progress)


def load_reward(spec: str | None, policy: Policy) -> RewardModel:
    """The reward model: "grounding" (default) or a sequence-classification model."""
    from webqa.models.reward import load_reward_model

    return load_reward_model(spec or "grounding", policy=policy)


def answer(
    question: str,
    *,
    n: int = 1,
    model: str | None = None,
    api_base: str | None = None,
    web: Web | None = None,
    live: bool = False,
    reward_model: str | None = None,
    temperature: float | None = None,
    max_actions: int = 20,
    seed: int = 0,
    on_event: EventSink | None = None,
) -> Result:
    """Answer ``question`` by browsing; with n > 1, best-of-n under the reward model."""
    question = validate_question(question)
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    policy = load_policy(model, api_base=api_base)
    web = web or open_web(live=live)
    reward = load_reward(reward_model, policy) if n > 1 else None
    if temperature is None:
        temperature = 0.8 if n > 1 else 0.0
    config = AgentConfig(max_actions=max_actions, temperature=temperature, seed=seed)
    return run_question(
        question, policy=policy, web=web, reward=reward, n=n, config=config, on_event=on_event
    )


def validate_question(question: str) -> str:
    """The question stripped; an InputError if it is empty or absurdly long."""
    if not isinstance(question, str):
        raise InputError(f"question must be text, got {type(question).__name__}")
    question = " ".join(question.split())
    if not question:
        raise InputError("the question is empty")
    if len(question) > 2000:
        raise InputError(f"the question is {len(question)} characters long (at most 2000)")
    return question
