"""Many threads, one model: gather concurrent policy calls into batched calls.

``BatchingPolicy`` wraps a ``Policy`` and is one itself. Each question of a batch runs
``run_question`` in its own worker thread; every ``generate`` (or ``yes_probability``)
call a worker makes is queued, and one model thread merges the queued calls into a
single call of the wrapped policy: the same batched decode best-of-n uses.

When does a batch go? As soon as every live worker is waiting on the model, or a short
window after the model became free with work queued, whichever comes first. A worker
that is busy elsewhere (a slow fetch, the reward model) does not hold the others up: the
window passes and they go ahead; it joins a later batch. The window adapts: a tenth of
the last batch's model time, between 20 ms and 0.5 s, so that a model step of seconds
waits a little longer for workers still stepping their browsers rather than splitting
the batch in two, while a fast model never waits long. Workers say they are live with
``with batcher.worker():`` so the batcher knows how many to wait for.

A failing merged call does not fail every caller: the calls are retried one by one, and
each caller gets its own result or its own exception.

``run_many`` is the executor every batch front door shares (``answer_many`` and
``webqa batch``): K worker threads, each answering one question at a time with
``run_question``, results yielded as they finish. A question that fails is yielded with
its error; it never stops the others.
"""

from __future__ import annotations

import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from webqa.agent import AgentConfig, EventSink, PassageRanker, Result, run_question
from webqa.errors import FetchError, InputError, ModelError, SearchError, WebQAError
from webqa.models.base import Chat, Generation, GenerationRequest, Policy, RewardModel
from webqa.values import Question, validate_question
from webqa.web.base import Web
from webqa.web.recording import RecordingWeb, Visit


@dataclass(eq=False)
class _Call:
    kind: str  # "generate" | "yes"
    items: list[Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: list[Any] | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class BatchStats:
    """What the batcher has done so far."""

    calls: int  # calls made by workers
    batches: int  # calls made to the wrapped policy (retries included)
    items: int  # requests and chats sent to the wrapped policy
    largest: int  # the most items in one batch


class BatchingPolicy:
    """A ``Policy`` that merges concurrent calls from worker threads into batches.

    ``max_batch`` caps the items (requests or chats) in one merged call; a single call
    larger than that still goes whole. ``window`` is how long (seconds) the model
    thread waits for more callers once it has work and is free; None adapts it to the
    model's speed (see the module notes).
    """

    MIN_WINDOW = 0.02
    MAX_WINDOW = 0.5

    def __init__(self, policy: Policy, *, max_batch: int = 32, window: float | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.policy = policy
        self.name = policy.name
        self.max_batch = max_batch
        self.window = window
        self._last_call = 0.0  # seconds the last merged call took
        self._cond = threading.Condition()
        self._pending: list[_Call] = []
        self._live = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._calls = self._batches = self._items = self._largest = 0

    # -- the Policy protocol ------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Complete ``requests`` as part of a merged batch (results in request order)."""
        return self._submit("generate", list(requests))

    def yes_probability(self, chats: Sequence[Chat]) -> list[float]:
        """P("yes") for each chat, merged with other callers' chats."""
        return self._submit("yes", list(chats))

    # -- workers and lifecycle ----------------------------------------------------

    @contextmanager
    def worker(self) -> Iterator[None]:
        """Count the calling thread as live (it will call the model) while inside."""
        with self._cond:
            self._live += 1
        try:
            yield
        finally:
            with self._cond:
                self._live -= 1
                self._cond.notify_all()

    @property
    def stats(self) -> BatchStats:
        with self._cond:
            return BatchStats(self._calls, self._batches, self._items, self._largest)

    def close(self) -> None:
        """Stop the model thread once the queued calls are done."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> BatchingPolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------

    def _submit(self, kind: str, items: list[Any]) -> list[Any]:
        if not items:
            return []
        call = _Call(kind, items)
        with self._cond:
            if self._closed:
                raise RuntimeError("the BatchingPolicy is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="webqa-batcher", daemon=True
                )
                self._thread.start()
            self._pending.append(call)
            self._calls += 1
            self._cond.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return  # closed and drained
                deadline = time.monotonic() + self._window()
                while (
                    not self._closed
                    and len(self._pending) < self._live
                    and sum(len(c.items) for c in self._pending) < self.max_batch
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._cond.wait(left)
                calls = self._take()
            self._run(calls)

    def _window(self) -> float:
        if self.window is not None:
            return self.window
        return min(self.MAX_WINDOW, max(self.MIN_WINDOW, self._last_call / 10))

    def _take(self) -> list[_Call]:
        """The oldest call and the calls of its kind that fit with it (lock held)."""
        kind = self._pending[0].kind
        taken: list[_Call] = []
        size = 0
        for call in self._pending:
            if call.kind != kind:
                continue
            if taken and size + len(call.items) > self.max_batch:
                break
            taken.append(call)
            size += len(call.items)
        self._pending = [c for c in self._pending if c not in taken]
        return taken

    def _run(self, calls: list[_Call]) -> None:
        try:
            results = self._call(calls[0].kind, [item for c in calls for item in c.items])
        except Exception as error:
            if len(calls) == 1:
                self._deliver(calls[0], None, error)
                return
            for call in calls:  # find out whose items fail; the rest still get answers
                try:
                    self._deliver(call, self._call(call.kind, call.items), None)
                except Exception as own:
                    self._deliver(call, None, own)
            return
        at = 0
        for call in calls:
            self._deliver(call, results[at : at + len(call.items)], None)
            at += len(call.items)

    def _call(self, kind: str, items: list[Any]) -> list[Any]:
        with self._cond:
            self._batches += 1
            self._items += len(items)
            self._largest = max(self._largest, len(items))
        started = time.perf_counter()
        if kind == "generate":
            out: list[Any] = list(self.policy.generate(items))
        else:
            out = list(self.policy.yes_probability(items))
        self._last_call = time.perf_counter() - started
        if len(out) != len(items):
            raise RuntimeError(f"{self.name} returned {len(out)} results for {len(items)} inputs")
        return out

    @staticmethod
    def _deliver(call: _Call, result: list[Any] | None, error: BaseException | None) -> None:
        call.result, call.error = result, error
        call.done.set()


# -- the executor -------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """One finished question: its result, or why it failed."""

    question: Question
    result: Result | None  # None when it failed before an answer was written
    error: str | None  # None when it was answered
    error_type: str | None  # "input" | "model" | "search" | "fetch" | "error" | "internal"
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
    ranker: PassageRanker | None = None,
) -> Iterator[Answered]:
    """Answer ``questions`` with ``concurrency`` worker threads; yield each as it finishes.

    With a ``BatchingPolicy``, the workers' model calls are merged into batches. ``log``
    (called in the worker, before the answer is yielded) returns the log id it wrote;
    ``ranker`` goes to ``run_question`` as it is.
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
                    ranker=ranker,
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
    ranker: PassageRanker | None = None,
    on_event: EventSink | None = None,
) -> Answered:
    """Answer one question: the one path ``answer()``, ``answer_many()`` and ``webqa
    batch`` share, so that what counts as a failure (a bad question, a model error,
    every search failing) and what is logged cannot differ between them. Never raises
    for the question's own failure: it is the ``Answered``'s ``error`` (and
    ``failure``, what was raised)."""
    started, clock = time.time(), time.perf_counter()
    recording = RecordingWeb(web)
    live: AbstractContextManager[None] = (
        policy.worker() if isinstance(policy, BatchingPolicy) else nullcontext()
    )
    result: Result | None = None
    error: str | None = None
    kind: str | None = None
    failure: BaseException | None = None
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
                ranker=ranker,
            )
        error = search_failure(result, recording.visits)
        if error:
            kind, failure = "search", SearchError(error)
    except Exception as exc:  # one question's failure never stops the batch
        (error, kind), failure = _describe(exc), exc
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
