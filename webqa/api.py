"""The Python front door: answer() and the pieces every front door shares."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from pathlib import Path

from webqa.agent import AgentConfig, load_model
from webqa.errors import InputError, ModelError, StorageError, os_error_message
from webqa.models.base import Policy, RewardModel
from webqa.models.batching import BatchingPolicy
from webqa.procedure import Free, Guided, Procedure, guided_browsing
from webqa.runner import Answered, Logger, answer_one, run_many
from webqa.shortlist import PassageRanker
from webqa.store.writer import record_or_warn
from webqa.values import EventSink, Question, Result, validate_question
from webqa.web.base import Web

DEFAULT_MODEL = "qwen-0.5b"
DEFAULT_TIMEOUT = 300.0  # seconds a question may take (answer, answer_many, the CLI)
_policies: dict[tuple[str, str | None, str | None], Policy] = {}


def check_dtype(dtype: str | None = None, *, api_base: str | None = None) -> None:
    """Fail now, in one line (ModelError), on a precision a local model could not run in:
    ``dtype`` if given, else ``$WEBQA_DTYPE``. A server model (``api_base``) ignores both.
    Cheap: torch is not imported."""
    if api_base:
        return
    from webqa.models.hardware import requested_precision
    from webqa.models.local import DTYPES

    if dtype and dtype != "auto":
        if dtype not in DTYPES:
            raise ModelError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    else:
        requested_precision()


def check_data_dir(*, write: bool = True) -> Path:
    """The data directory, created if missing; a StorageError (one line naming it and
    $WEBQA_HOME) if it cannot be created or, with ``write``, written to.

    Front doors call this before any work, so that nothing a person does is lost to a
    data directory found unusable at the end."""
    from webqa import paths

    where = paths.data_dir_path()
    hint = f"set {paths.ENV_VAR} to a folder you can write"
    try:
        path = paths.data_dir()
    except OSError as exc:
        raise StorageError(
            f"cannot use the data directory {where}: {os_error_message(exc)}; {hint}"
        ) from exc
    if write:
        try:
            fd, probe = tempfile.mkstemp(prefix=".webqa-write-test-", dir=path)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StorageError(
                f"cannot use the data directory {where}: it is not writable ({reason}); {hint}"
            ) from exc
        os.close(fd)
        os.unlink(probe)
    return path


def load_policy(
    model: str | None = None,
    *,
    api_base: str | None = None,
    dtype: str | None = None,
    decoding: str | None = None,
) -> Policy:
    """A policy by preset name, HF id, folder or GGUF path; or a model behind an
    OpenAI-compatible server when ``api_base`` is given. Loaded policies are reused.

    ``dtype`` is a local model's precision: "auto" (the default, None) lets
    ``webqa.models.hardware`` choose for this CPU unless ``$WEBQA_DTYPE`` says;
    "bfloat16", "float32" or "int8" force it. A server model ignores it. ``decoding``
    is how a server model is held to guided browsing's commands ("auto", the default
    None: probed once per server; see ``webqa.models.server_decoding``)."""
    model = model or os.environ.get("WEBQA_MODEL") or DEFAULT_MODEL
    check_dtype(dtype, api_base=api_base)
    key = (model, api_base, decoding or "auto" if api_base else dtype or "auto")
    if key not in _policies:
        if api_base:
            from webqa.models.openai import OpenAIPolicy

            _policies[key] = OpenAIPolicy(model, api_base=api_base, decoding=decoding or "auto")
        else:
            from webqa.models.local import LocalPolicy

            _policies[key] = LocalPolicy(model, dtype=dtype or "auto")
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


def load_reward(spec: str | RewardModel | None, policy: Policy) -> RewardModel:
    """The reward model: "grounding" (the grounding scorer, ``policy`` its judge),
    "bootstrap" (the feature reward model that ships with webqa, trained on comparisons
    bootstrapped from its corpus), a folder `webqa reward train` wrote (either
    architecture), a sequence-classification model's folder or id, or a ``RewardModel``
    object as it is. The default (None or ""): "bootstrap" for a local policy (it was fit
    on a small local model's candidates and picked better than the grounding scorer for
    it: see the README's Measured), "grounding" for a model behind a server."""
    if spec is not None and not isinstance(spec, str):
        return spec
    from webqa.models.feature_reward import PACKAGED, load_features, packaged

    if not spec:
        spec = "grounding" if _served(policy, None) else PACKAGED
    if spec == "grounding":
        from webqa.models.grounding import GroundingScorer

        return GroundingScorer(judge=policy)
    if spec == PACKAGED:
        return packaged()
    from webqa.models.hf_reward import HFRewardModel

    return load_features(spec) or HFRewardModel(spec)


class Backends:
    """Where a front door gets the parts it names, the way httpx takes a transport: the
    policy, the reward model, the web and guided browsing's passage ranker. This one
    loads the real ones (``load_policy``, ``load_reward``, ``open_web``,
    ``passage_ranker``); a test gives ``answer()``, ``answer_many()`` or
    ``webqa.cli.main`` another with the same methods, and no loader is patched."""

    def policy(
        self,
        model: str | None,
        *,
        api_base: str | None = None,
        dtype: str | None = None,
        concurrency: int = 1,
        decoding: str | None = None,
    ) -> Policy:
        """The policy named (see ``load_policy``). Behind a server with ``concurrency``
        above 1, a client of its own that keeps that many requests in flight, which the
        caller closes; otherwise the kept one."""
        if api_base and concurrency > 1:
            from webqa.models.openai import OpenAIPolicy

            name = model or os.environ.get("WEBQA_MODEL") or DEFAULT_MODEL
            return OpenAIPolicy(
                name, api_base=api_base, max_concurrency=concurrency, decoding=decoding or "auto"
            )
        return load_policy(model, api_base=api_base, dtype=dtype, decoding=decoding)

    # the web the options name, and the reward model named (``policy`` its judge)
    web = staticmethod(open_web)
    reward = staticmethod(load_reward)

    def ranker(self) -> PassageRanker:
        """Guided browsing's passage ranker (see ``passage_ranker``)."""
        return passage_ranker()


DEFAULT_BACKENDS = Backends()


def _policy(
    model: str | Policy | None,
    api_base: str | None,
    dtype: str | None,
    backends: Backends,
    decoding: str | None = None,
) -> Policy:
    """``model`` as a policy: an object as it is, else got by name from ``backends``."""
    if model is not None and not isinstance(model, str):
        return model
    return backends.policy(model, api_base=api_base, dtype=dtype, decoding=decoding)


def _served(policy: Policy, api_base: str | None) -> bool:
    """Whether ``policy`` (or the policy a ``BatchingPolicy`` merges calls for) is a
    model behind a server (no constrained decoding there, so it browses on the plain
    command set rather than the guided grammar)."""
    if api_base:
        return True
    from webqa.models.openai import OpenAIPolicy

    return isinstance(getattr(policy, "policy", policy), OpenAIPolicy)


def answer(
    question: str,
    *,
    n: int = 1,
    model: str | Policy | None = None,
    api_base: str | None = None,
    web: Web | None = None,
    live: bool = False,
    reward_model: str | RewardModel | None = None,
    ranker: PassageRanker | None = None,
    temperature: float | None = None,
    max_actions: int = 20,
    seed: int = 0,
    on_event: EventSink | None = None,
    log: bool = True,
    dtype: str | None = None,
    backends: Backends | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    browsing: str = "auto",
    decoding: str | None = None,
) -> Result:
    """Answer ``question`` by browsing; with n > 1, best-of-n under the reward model.

    Each part may be given as an object or named: ``model`` a ``Policy`` or a name
    (``load_policy``), ``reward_model`` a ``RewardModel`` or a name (``load_reward``),
    ``web`` a ``Web`` (default: the embedded corpus, or the live web with ``live``),
    ``ranker`` guided browsing's passage ranker (default: MiniLM relevance).
    With ``log`` (the default) every episode is recorded in the log (``webqa log``).
    ``dtype`` is a local model's precision (see ``load_policy``). ``backends`` gets the
    parts given by name or left out (default: the real loaders, ``Backends``).
    ``timeout`` is the question's wall-clock budget in seconds (None or 0: none): when
    it runs out, browsing stops at its next step and the answer is written from the
    quotes so far, or declined (the candidates' ``end_reason`` is "time_budget"); a
    model call in flight is not cut short. Interrupted (Ctrl-C), the episodes so far
    are logged, marked interrupted, before the interrupt goes on. ``browsing``: "guided"
    (the guided procedure), "free" (WebGPT's command set) or "auto" (guided for a local
    model and a served one whose name says it is small: ``procedure.guided_browsing``);
    ``decoding``: how a served model is held to the guided commands (see ``load_policy``)."""
    parts = backends or DEFAULT_BACKENDS
    question = validate_question(question)
    agent_config(
        api_base, n=n, max_actions=max_actions, temperature=temperature, seed=seed, timeout=timeout
    )  # a bad n, temperature or timeout fails here, before a model loads
    guided_browsing(browsing, False, None)  # and a bad browsing
    policy = _policy(model, api_base, dtype, parts, decoding)
    procedure = browsing_procedure(_served(policy, api_base), ranker, parts, browsing, policy.name)
    config = agent_config(
        isinstance(procedure, Free),
        n=n,
        max_actions=max_actions,
        temperature=temperature,
        seed=seed,
        timeout=timeout,
    )
    web = web or parts.web(live=live)
    reward = _reward(reward_model, policy, parts) if n > 1 else None
    recorder = (
        _recorder(config, n, policy.name, web.name, qids=False, reward=reward) if log else None
    )
    done = answer_one(
        Question(question, id="0"),
        policy=policy,
        web=web,
        reward=reward,
        config=config,
        n=n,
        procedure=procedure,
        on_event=on_event,
        on_interrupt=recorder,
    )
    if recorder is not None:
        recorder(done)
    if done.failure is not None:
        raise done.failure
    assert done.result is not None  # no failure: answered
    return done.result


LOCAL_SAMPLING_TEMPERATURE = 0.4  # best-of-n's sampled episodes, local (guided) models


def agent_config(
    served: str | bool | None,
    *,
    n: int,
    max_actions: int,
    temperature: float | None,
    seed: int,
    timeout: float | None = None,
) -> AgentConfig:
    """How episodes run. Best-of-n keeps one greedy episode and samples the others
    unless told otherwise: at 0.8 (WebGPT's setting) behind a server, at 0.4 for a
    local model (on 19 dev questions the 0.5B's sampled episodes were right 1 time in
    57 at 0.8 and 9 in 57 at 0.4). ``served``: whether the model is behind a server
    (truthy: its ``api_base``, or True). ``timeout``: the question's budget in seconds
    (None or 0: none)."""
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    if temperature is None:
        temperature = 0.0 if n == 1 else (0.8 if served else LOCAL_SAMPLING_TEMPERATURE)
    return AgentConfig(
        max_actions=max_actions, temperature=temperature, seed=seed, timeout=timeout or None
    )


def browsing_procedure(
    served: str | bool | None,
    ranker: PassageRanker | None,
    backends: Backends | None = None,
    browsing: str = "auto",
    model_name: str | None = None,
) -> Procedure:
    """How the policy browses: a small model (any local one; one behind a server
    (``served``) whose ``model_name`` says it is small) follows the guided procedure, its
    shortlist ranked by ``ranker`` (default: ``backends``' ranker, MiniLM relevance); any
    other served model chooses every command itself on WebGPT's command set (``Free``).
    ``browsing`` "guided" or "free" decides instead (``procedure.guided_browsing``)."""
    if not guided_browsing(browsing, bool(served), model_name):
        return Free()
    return Guided(ranker or (backends or DEFAULT_BACKENDS).ranker())


def _reward(spec: str | RewardModel | None, policy: Policy, backends: Backends) -> RewardModel:
    """``spec`` as a reward model: an object as it is, else got by name from ``backends``."""
    if spec is not None and not isinstance(spec, str):
        return spec
    return backends.reward(spec, policy)


def passage_ranker() -> PassageRanker:
    """The shortlist ranker for guided browsing: MiniLM relevance (loaded once)."""
    from webqa.models.embed import passage_ranker as minilm_ranker

    return minilm_ranker()


def _recorder(
    config: AgentConfig,
    n: int,
    model: str,
    web: str,
    batch: str | None = None,
    *,
    qids: bool = True,
    reward: RewardModel | None = None,
) -> Logger:
    """What logs one answered question, with its id in its batch where ``qids`` and the
    name of the ``reward`` model that scored its candidates (a log that cannot be written
    warns once and never costs the answer)."""

    def record(done: Answered) -> int | None:
        text = done.result.question if done.result is not None else done.question.text
        return record_or_warn(
            text,
            done.result,
            config=config,
            n=n,
            model=model,
            web=web,
            reward_model=reward.name if reward is not None else None,
            visits=done.visits,
            started=done.started,
            seconds=done.seconds,
            error=done.error,
            qid=done.question.id if qids else None,
            batch=batch,
        )

    return record


def answer_many(
    questions: Iterable[str | Question],
    *,
    n: int = 1,
    concurrency: int = 4,
    model: str | Policy | None = None,
    api_base: str | None = None,
    web: Web | None = None,
    live: bool = False,
    reward_model: str | RewardModel | None = None,
    ranker: PassageRanker | None = None,
    temperature: float | None = None,
    max_actions: int = 20,
    seed: int = 0,
    log: bool = True,
    batch: str | None = None,
    dtype: str | None = None,
    backends: Backends | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    browsing: str = "auto",
    decoding: str | None = None,
) -> Iterator[Answered]:
    """Answer many questions, ``concurrency`` at a time; yield each as it finishes.

    Each ``Answered`` carries its ``Question`` (a plain string becomes one whose id is
    its position, "0", "1", ...), its ``Result`` or its ``error``; a failing question
    never stops the others. Every question runs exactly as ``answer`` would run it with
    the same seed. A local model's calls from all questions in flight are batched
    together; with ``api_base``, up to ``concurrency * n`` requests are in flight.
    ``batch`` labels the questions' runs in the log; ``dtype`` is a local model's
    precision (see ``load_policy``). ``model``, ``reward_model``, ``web`` and ``ranker``
    may be objects, as for ``answer``, and ``backends`` gets those named or left out.
    ``timeout`` is each question's budget, as for ``answer`` (counted from when the
    question starts, so a question waiting on others' batched model calls uses it too).
    ``browsing`` and ``decoding`` are as for ``answer``.
    """
    parts = backends or DEFAULT_BACKENDS
    served = api_base or (not isinstance(model, str | None) and _served(model, None))
    if isinstance(model, str | None):
        name = model or os.environ.get("WEBQA_MODEL") or DEFAULT_MODEL
    else:
        name = model.name
    procedure = browsing_procedure(served, ranker, parts, browsing, name)
    config = agent_config(
        isinstance(procedure, Free),
        n=n,
        max_actions=max_actions,
        temperature=temperature,
        seed=seed,
        timeout=timeout,
    )
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}")
    check_dtype(dtype, api_base=api_base)  # a bad precision fails here, not per question
    return _answer_many(
        questions,
        n,
        concurrency,
        model,
        api_base,
        web,
        live,
        reward_model,
        procedure,
        config,
        log,
        batch,
        dtype,
        served=bool(served),
        backends=parts,
        decoding=decoding,
    )


def _answer_many(
    questions: Iterable[str | Question],
    n: int,
    concurrency: int,
    model: str | Policy | None,
    api_base: str | None,
    web: Web | None,
    live: bool,
    reward_model: str | RewardModel | None,
    procedure: Procedure,
    config: AgentConfig,
    log: bool,
    batch: str | None,
    dtype: str | None,
    *,
    served: bool,
    backends: Backends,
    decoding: str | None = None,
) -> Iterator[Answered]:
    policy: Policy
    if model is not None and not isinstance(model, str):  # an object: used, never closed
        policy = model if served else BatchingPolicy(model, max_batch=max(32, n))
    elif api_base:  # the server batches; keep K questions' requests in flight (a client
        # of this call's own, closed below)
        policy = backends.policy(
            model, api_base=api_base, concurrency=max(8, concurrency * n), decoding=decoding
        )
    else:
        local = backends.policy(model, dtype=dtype)
        if config.timeout:  # each question's budget is its own work, not the model's load
            with suppress(Exception):  # (a model that cannot load fails each question)
                load_model(local)
        policy = BatchingPolicy(local, max_batch=max(32, n))
    try:
        web = web or backends.web(live=live)
        reward = _reward(reward_model, policy, backends) if n > 1 else None
        name = web.name

        record = _recorder(config, n, policy.name, name, batch, reward=reward)

        yield from run_many(
            _as_questions(questions),
            policy=policy,
            web=web,
            reward=reward,
            config=config,
            n=n,
            concurrency=concurrency,
            log=record if log else None,
            procedure=procedure,
        )
    finally:
        close = getattr(policy, "close", None)
        if close is not None and policy is not model:  # what this call made, it closes
            close()


def _as_questions(questions: Iterable[str | Question]) -> Iterator[Question]:
    for i, q in enumerate(questions):
        yield q if isinstance(q, Question) else Question(q, id=str(i), index=i)
