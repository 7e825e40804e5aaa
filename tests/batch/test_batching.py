from __future__ import annotations

import threading
import time

import pytest

from tests.fakes import BF, FakePolicy, FakeWeb
from webqa.agent import AgentConfig
from webqa.errors import ModelError
from webqa.models.base import Generation, GenerationRequest, Message
from webqa.models.batching import BatchingPolicy
from webqa.runner import run_many
from webqa.values import Question
from webqa.web.base import SearchResult


def req(text: str) -> GenerationRequest:
    return GenerationRequest(chat=[Message("user", text)])


def echo_policy() -> FakePolicy:
    """Echoes each request in capitals; fails any batch holding a request that says
    "boom"."""
    return FakePolicy(lambda r: r.chat[-1].content.upper(), name="echo", fail_on="boom", yes=0.25)


def in_threads(batcher: BatchingPolicy, jobs: dict[str, object]) -> dict[str, object]:
    """Run each job (a callable) in its own registered worker thread; name -> outcome."""
    out: dict[str, object] = {}
    everyone = threading.Barrier(len(jobs))

    def run(name: str, job: object) -> None:
        with batcher.worker():
            everyone.wait()  # all live before anyone calls
            try:
                out[name] = job()  # type: ignore[operator]
            except Exception as error:
                out[name] = error

    threads = [threading.Thread(target=run, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return out


def test_concurrent_calls_become_one_batch_when_every_worker_waits() -> None:
    echo = echo_policy()
    with BatchingPolicy(echo, window=5.0) as batcher:  # only "all waiting" can end a wait
        started = time.perf_counter()
        out = in_threads(batcher, {w: (lambda w=w: batcher.generate([req(w)])) for w in "abcd"})
        assert time.perf_counter() - started < 4.0
    assert out == {w: [Generation(w.upper(), tokens=3)] for w in "abcd"}
    assert len(echo.prompts) == 1 and sorted(echo.prompts[0]) == list("abcd")
    assert batcher.stats.largest == 4 and batcher.stats.calls == 4


def test_a_worker_busy_elsewhere_does_not_hold_the_batch() -> None:
    echo = echo_policy()
    release = threading.Event()
    finished_at: dict[str, float] = {}

    def quick(name: str) -> object:
        result = batcher.generate([req(name)])
        finished_at[name] = time.perf_counter()
        return result

    def slow() -> object:
        release.wait(5)  # a slow fetch: live, but not calling the model
        return batcher.generate([req("slow")])

    with BatchingPolicy(echo, window=0.05) as batcher:
        timer = threading.Timer(1.0, release.set)
        timer.start()
        started = time.perf_counter()
        out = in_threads(batcher, {"a": lambda: quick("a"), "b": lambda: quick("b"), "s": slow})
        timer.cancel()
    assert out["s"] == [Generation("SLOW", tokens=3)]
    assert all(finished_at[w] - started < 0.9 for w in "ab")
    assert sorted(echo.prompts[0]) == ["a", "b"] and echo.prompts[-1] == ["slow"]


def test_a_failing_request_fails_only_its_caller() -> None:
    echo = echo_policy()
    with BatchingPolicy(echo, window=5.0) as batcher:
        out = in_threads(
            batcher,
            {w: (lambda w=w: batcher.generate([req(w), req(w + "2")])) for w in ["x", "boom"]}
            | {"y": lambda: batcher.generate([req("y")])},
        )
    assert out["x"] == [Generation("X", tokens=3), Generation("X2", tokens=3)]
    assert out["y"] == [Generation("Y", tokens=3)]
    assert isinstance(out["boom"], ModelError) and str(out["boom"]) == "echo: scripted failure"
    assert len(echo.prompts[0]) == 5  # merged first, then each caller alone
    assert sorted(echo.prompts[1:]) == [["boom", "boom2"], ["x", "x2"], ["y"]]


def test_kinds_are_not_mixed_and_max_batch_is_kept() -> None:
    echo = echo_policy()
    with BatchingPolicy(echo, window=5.0, max_batch=2) as batcher:
        jobs: dict[str, object] = {w: (lambda w=w: batcher.generate([req(w)])) for w in "abc"}
        jobs["yes"] = lambda: batcher.yes_probability([[Message("user", "?")]] * 2)
        out = in_threads(batcher, jobs)
    assert out["yes"] == [0.25, 0.25] and echo.yes_batches == [2]
    assert sorted(len(b) for b in echo.prompts) == [1, 2]


def test_run_many_batches_questions_and_yields_each_as_it_finishes() -> None:
    class SlowSearch(FakeWeb):
        def search(self, query: str, k: int = 10) -> list[SearchResult]:
            if query == "Search slow":
                time.sleep(0.5)
            return super().search(query, k)

    policy = FakePolicy()
    questions = [Question(f"capital of Burkina Faso {i}?", id=f"q{i}", index=i) for i in range(6)]
    with BatchingPolicy(policy, window=0.2) as batcher:
        done = list(
            run_many(
                questions,
                policy=batcher,
                web=SlowSearch([BF]),
                reward=None,
                config=AgentConfig(),
                concurrency=3,
            )
        )
    assert sorted(d.question.id for d in done) == [f"q{i}" for i in range(6)]
    assert all(
        d.ok and d.answer == f"Ouagadougou [1], for: {d.question.text.rstrip('?')}" for d in done
    )
    assert max(policy.batches) == 3  # three questions in flight share each decode
    assert policy.max_concurrent == 1  # one model call at a time


def test_run_many_reports_failures_and_goes_on() -> None:
    policy = FakePolicy(fail_on="doomed")
    questions = [Question(t, id=t, index=i) for i, t in enumerate(["fine", "doomed", "  "])]
    done = {
        d.question.id: d
        for d in run_many(
            questions,
            policy=BatchingPolicy(policy),
            web=FakeWeb([BF], any_query=True),
            reward=None,
            config=AgentConfig(),
            concurrency=2,
        )
    }
    assert done["fine"].ok and done["fine"].result is not None
    assert (done["doomed"].error, done["doomed"].error_type) == ("rules: scripted failure", "model")
    assert (done["  "].error, done["  "].error_type) == ("the question is empty", "input")


def test_every_search_failing_is_a_failure() -> None:
    [done] = run_many(
        [Question("capital?", id="a")],
        policy=FakePolicy(),
        web=FakeWeb([BF], any_query=True, search_error="429 rate limited"),
        reward=None,
        config=AgentConfig(max_actions=3),
    )
    assert done.error_type == "search" and done.result is not None
    assert done.error == "every search failed (1); the last: 429 rate limited"
    assert [(v.kind, v.ok) for v in done.visits] == [("search", False)]


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(Exception, match="concurrency must be at least 1"):
        list(
            run_many(
                [],
                policy=FakePolicy(),
                web=FakeWeb(),
                reward=None,
                config=AgentConfig(),
                concurrency=0,
            )
        )
