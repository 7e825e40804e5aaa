"""One path that answers one question, and the executor that answers many at once.

``answer_one`` is what ``answer()``, ``answer_many()`` and ``webqa batch`` all call for a
question: it validates the question, runs the agent over a recording web and turns
"every search failed" into an error, so what counts as a failure cannot differ between
them.

``run_many`` is the executor every batch front door shares (``answer_many`` and
``webqa batch``): K worker threads, each answering one question at a time with
``answer_one``, results yielded as they finish. A question that fails is yielded with
its error; it never stops the others. With a ``BatchingPolicy``
(``webqa.models.batching``) the workers' model calls are merged into batched calls.
"""

from __future__ import annotations

import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace

from webqa.agent import AgentConfig, run_question
from webqa.errors import FetchError, InputError, ModelError, SearchError, WebQAError
from webqa.models.base import Policy, RewardModel
from webqa.models.batching import BatchingPolicy
from webqa.procedure import Procedure
from webqa.values import INTERRUPTED, EventSink, Question, Result, validate_question
from webqa.web.base import Web
from webqa.web.recording import RecordingWeb, Visit


@dataclass(frozen=True)
class Answered:
    """One finished question: its result, or why it failed."""

    question: Question
    result: Result | None  # None when it failed before an answer was written
    error: str | None  # None when it was answered
    error_type: str | None  # "input" | "model" | "search" | "fetch" | "error" | "internal"
    # (and "interrupted", given only to answer_one's on_interrupt)
    started: float  # unix time
    seconds: float  # wall time, start to finish
    visits: tuple[Visit, ...] = ()  # searches and fetches, in order
    log_id: int | None = None  # its run in the log (webqa.store), when logged
    # what was raised, for a caller that answers one question and re-raises it (answer())
    failure: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def answer(self) -> str | None:
        return self.result.answer if self.result is not None else None


Logger = Callable[[Answered], int | None]


def run_many(
    questions: Iterable[Question],
    *,
    policy: Policy,
    web: Web,
    reward: RewardModel | None,
    config: AgentConfig,
    n: int = 1,
    concurrency: int = 4,
    log: Logger | None = None,
    procedure: Procedure | None = None,
) -> Iterator[Answered]:
    """Answer ``questions`` with ``concurrency`` worker threads; yield each as it finishes.

    With a ``BatchingPolicy``, the workers' model calls are merged into batches. ``log``
    (called in the worker, before the answer is yielded) returns the log id it wrote;
    ``procedure`` goes to ``run_question`` as it is.
    Closing the iterator early stops the workers after their current question.
    """
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}")
    source = iter(questions)
    take = threading.Lock()
    stop = threading.Event()
    done: queue.Queue[Answered | BaseException | None] = queue.Queue()

    def next_question() -> Question | None:
        with take:
            if stop.is_set():
                return None
            return next(source, None)

    def work() -> None:
        try:
            while (question := next_question()) is not None:
                answered = answer_one(
                    question,
                    policy=policy,
                    web=web,
                    reward=reward,
                    config=config,
                    n=n,
                    procedure=procedure,
                )
                if stop.is_set():  # abandoned by the caller mid-question: not a result
                    break
                done.put(_logged(answered, log) if log is not None else answered)
        except BaseException as error:  # the input iterator itself failed
            stop.set()
            done.put(error)
        finally:
            done.put(None)

    workers = [
        threading.Thread(target=work, name=f"webqa-worker-{i}", daemon=True)
        for i in range(concurrency)
    ]
    for worker in workers:
        worker.start()
    try:
        running = len(workers)
        while running:
            item = done.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()


def answer_one(
    question: Question,
    *,
    policy: Policy,
    web: Web,
    reward: RewardModel | None,
    config: AgentConfig,
    n: int = 1,
    procedure: Procedure | None = None,
    on_event: EventSink | None = None,
    on_interrupt: Logger | None = None,
) -> Answered:
    """Answer one question: the one path ``answer()``, ``answer_many()`` and ``webqa
    batch`` share, so that what counts as a failure (a bad question, a model error,
    every search failing) and what is logged cannot differ between them. Never raises
    for the question's own failure: it is the ``Answered``'s ``error`` (and
    ``failure``, what was raised).

    An interrupt (KeyboardInterrupt, or another ``BaseException`` that is not an
    ``Exception``) goes on up, after ``on_interrupt`` (the logger, say) is given the
    question as far as it got: error "interrupted", its episodes so far as the result."""
    started, clock = time.time(), time.perf_counter()
    recording = RecordingWeb(web)
    live: AbstractContextManager[None] = (
        policy.worker() if isinstance(policy, BatchingPolicy) else nullcontext()
    )
    result: Result | None = None
    error: str | None = None
    kind: str | None = None
    failure: BaseException | None = None
    partial: list[Result] = []  # the episodes so far, if interrupted

    def answered(
        result: Result | None, error: str | None, kind: str | None, failure: BaseException | None
    ) -> Answered:
        return Answered(
            question=question,
            result=result,
            error=error,
            error_type=kind,
            started=started,
            seconds=time.perf_counter() - clock,
            visits=recording.visits,
            failure=failure,
        )

    try:
        text = validate_question(question.text)
        with live:
            result = run_question(
                text,
                policy=policy,
                web=recording,
                reward=reward,
                n=n,
                config=config,
                on_event=on_event,
                procedure=procedure,
                on_interrupt=partial.append,
            )
        error = search_failure(result, recording.visits)
        if error:
            kind, failure = "search", SearchError(error)
    except Exception as exc:  # one question's failure never stops the batch
        (error, kind), failure = _describe(exc), exc
    except BaseException as stop:
        if on_interrupt is not None:
            on_interrupt(answered(partial[0] if partial else None, INTERRUPTED, INTERRUPTED, stop))
        raise
    return answered(result, error, kind, failure)


def _logged(answered: Answered, log: Logger) -> Answered:
    try:
        return replace(answered, log_id=log(answered))
    except Exception as exc:  # the answer matters more than its log entry
        warnings.warn(f"could not log question {answered.question.id!r}: {exc}", stacklevel=1)
        return answered


def search_failure(result: Result, visits: Sequence[Visit]) -> str | None:
    """Why a question failed when nothing was found because every search failed."""
    searches = [v for v in visits if v.kind == "search"]
    if not searches or any(v.ok for v in searches):
        return None
    if any(c.references for c in result.candidates):
        return None
    return f"every search failed ({len(searches)}); the last: {searches[-1].error}"


def _describe(exc: Exception) -> tuple[str, str]:
    kinds: tuple[tuple[type[Exception], str], ...] = (
        (InputError, "input"),
        (ModelError, "model"),
        (SearchError, "search"),
        (FetchError, "fetch"),
        (WebQAError, "error"),
    )
    for cls, kind in kinds:
        if isinstance(exc, cls):
            return str(exc) or cls.__name__, kind
    return f"{type(exc).__name__}: {exc}", "internal"
