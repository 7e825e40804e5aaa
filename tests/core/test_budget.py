"""The time budget of a question (``timeout``): browsing stops at it and the answer is
written from the quotes so far, or declined; and the episode ends on a loop."""

from __future__ import annotations

import json
import time

import pytest

from tests.fakes import BF, QUOTE, FakeBackends, FakePolicy, FakeWeb, scripted_policy
from webqa import api
from webqa.agent import AgentConfig, run_question
from webqa.answering import NOTHING_FOUND
from webqa.cli import main
from webqa.errors import InputError
from webqa.models.base import GenerationRequest
from webqa.procedure import Free

Q = "What is the capital of Burkina Faso?"
BROWSING = "You answer questions by browsing"


def slow_at(step: int, seconds: float, script: list[str], answer: str) -> FakePolicy:
    """A policy that plays ``script`` at once, but takes ``seconds`` to choose command
    number ``step``."""

    def reply(request: GenerationRequest) -> str:
        if not request.chat[0].content.startswith(BROWSING):
            return answer
        n = (request.seed or 0) % 1000
        if n == step:
            time.sleep(seconds)
        return script[n]

    return FakePolicy(reply, name="slow")


def endless(delay: float) -> FakePolicy:
    """A policy that never stops searching (a new query each time), ``delay`` a call."""

    def reply(request: GenerationRequest) -> str:
        return f"Search capital {(request.seed or 0) % 1000}"

    return FakePolicy(reply, name="endless", delay=delay)


def test_a_question_stops_at_its_budget() -> None:
    clock = time.perf_counter()
    result = run_question(
        Q,
        policy=endless(0.1),
        web=FakeWeb([BF], any_query=True),
        reward=None,
        config=AgentConfig(max_actions=100, timeout=0.5),
        procedure=Free(),
    )
    seconds = time.perf_counter() - clock
    cand = result.candidates[0]
    assert cand.end_reason == "time_budget"
    assert 4 <= len(cand.steps) < 20  # ~5 steps of 0.1 s, not the 100 it was allowed
    assert seconds < 5
    assert result.answer == NOTHING_FOUND  # nothing quoted: it says it found nothing


def test_past_the_budget_the_answer_comes_from_the_quotes_so_far() -> None:
    script = ["Search Burkina Faso", "Clicked on link 0", f"Quote: {QUOTE}", "Scrolled down 1"]
    policy = slow_at(3, 1.5, script, "Ouagadougou [1].")
    result = run_question(
        Q,
        policy=policy,
        web=FakeWeb([BF]),
        reward=None,
        config=AgentConfig(timeout=1.0),
        procedure=Free(),
    )
    cand = result.candidates[0]
    assert cand.end_reason == "time_budget"
    assert [s.command for s in cand.steps] == script  # the slow step was still carried out
    assert result.answer == "Ouagadougou [1]."
    assert [r.extract for r in result.references] == [QUOTE]


def test_no_budget_lets_the_question_run_on() -> None:
    result = run_question(
        Q,
        policy=endless(0.0),
        web=FakeWeb([BF], any_query=True),
        reward=None,
        config=AgentConfig(max_actions=30, timeout=0),
        procedure=Free(),
    )
    assert result.candidates[0].end_reason == "actions"
    assert len(result.candidates[0].steps) == 30


def test_a_looping_model_is_stopped_after_three_refusals() -> None:
    policy = scripted_policy([["Search Burkina Faso"] * 20], [])
    result = run_question(Q, policy=policy, web=FakeWeb([BF]), reward=None, procedure=Free())
    cand = result.candidates[0]
    assert [s.valid for s in cand.steps] == [True, False, False, False]
    assert cand.steps[1].message == "already searched for this"
    assert "Invalid: Search Burkina Faso (already searched for this)" in cand.steps[2].prompt
    assert cand.end_reason == "invalid_actions"
    assert result.answer == NOTHING_FOUND


def test_ask_timeout_reaches_the_result_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    backends = FakeBackends(endless(0.1))
    code = main(["ask", Q, "--timeout", "0.4", "--max-actions", "100", "--json"], backends)
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["candidates"][0]["end_reason"] == "time_budget"
    assert main(["ask", Q, "--timeout", "0.4"], FakeBackends(endless(0.1))) == 0
    shown = capsys.readouterr().out
    assert "browsing stopped: the time budget (--timeout) ran out (time_budget)" in shown


def test_timeout_is_in_help_and_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("ask", "batch"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--timeout SECONDS" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["ask", Q, "--timeout", "-1"])
    assert exit_.value.code == 2
    assert "expected a number of seconds, 0 or more, not '-1'" in capsys.readouterr().err
    with pytest.raises(InputError, match="timeout must be a number of seconds"):
        api.answer(Q, timeout=float("nan"), backends=FakeBackends())


def test_answer_many_takes_a_timeout() -> None:
    done = list(
        api.answer_many(
            [Q, Q], model=endless(0.05), timeout=0.3, max_actions=100, backends=FakeBackends()
        )
    )
    assert [d.result.candidates[0].end_reason for d in done if d.result] == ["time_budget"] * 2


class SlowToLoad(FakePolicy):
    """A policy that, like a local model, loads on first use: for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.loads = 0

    def load(self) -> None:
        if not self.loads:
            time.sleep(self.seconds)
        self.loads += 1


def test_loading_the_model_is_not_the_questions_time() -> None:
    policy = SlowToLoad(1.0)
    result = run_question(
        Q,
        policy=policy,
        web=FakeWeb([BF]),
        reward=None,
        config=AgentConfig(timeout=0.8),
        procedure=Free(),
    )
    assert policy.loads == 1
    assert result.candidates[0].end_reason == "answer"
    assert "Ouagadougou [1]" in result.answer
