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
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from webqa.models.base import Chat, Generation, GenerationRequest, Policy


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
