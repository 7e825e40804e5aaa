"""BrowserEnv's bounds on a browsing loop: exact repeats refused, K invalid commands in a
row end the episode, and a deadline passed ends it."""

from __future__ import annotations

import time

from tests.browser.conftest import EVEREST
from tests.fakes import FakeWeb
from webqa.browser.env import (
    ALREADY_DONE,
    ALREADY_SEARCHED,
    MAX_INVALID_IN_A_ROW,
    BrowserEnv,
    StepResult,
)

Q = "How tall is Mount Everest?"


def started(web: FakeWeb, **options: object) -> BrowserEnv:
    env = BrowserEnv(web, window_lines=10, **options)  # type: ignore[arg-type]
    env.reset(Q)
    return env


def refused(step: StepResult, why: str) -> None:
    assert step.info["valid"] is False
    assert step.info["error"] == why


def test_a_repeated_search_is_refused_and_the_model_is_told(web: FakeWeb) -> None:
    env = started(web)
    env.step("Search highest mountain")
    again = env.step("Search highest mountain")
    refused(again, ALREADY_SEARCHED)
    assert web.searches == ["highest mountain"]  # not searched twice
    assert again.observation.actions_left == 98  # it cost an action
    past = again.observation.text.split("●Past actions\n", 1)[1]
    assert f"Invalid: Search highest mountain ({ALREADY_SEARCHED})" in past
    # from another page too: the same query gives the same results
    env.step("Clicked on link 0")
    refused(env.step("Search highest mountain"), ALREADY_SEARCHED)
    assert env.step("Search highest mountain range").info["valid"] is True


def test_a_link_followed_from_a_page_is_not_followed_again_from_it(web: FakeWeb) -> None:
    env = started(web)
    env.step("Search highest mountain")
    env.step("Clicked on link 0")
    env.step("Back")
    refused(env.step("Clicked on link 0"), ALREADY_DONE)
    assert web.fetches == [EVEREST]
    assert env.step("Clicked on link 1").info["valid"] is True  # another link is fine


def test_view_commands_repeat_only_from_the_same_view(web: FakeWeb) -> None:
    env = started(web)
    env.step("Search highest mountain")
    env.step("Clicked on link 0")
    # scrolling on moves the view, so the same command is not a repeat
    assert env.step("Scrolled down 1").info["valid"] is True
    assert env.step("Scrolled down 1").info["valid"] is True
    env.step("Scrolled up 2")  # back at the top, where "Scrolled down 1" was taken
    refused(env.step("Scrolled down 1"), ALREADY_DONE)
    assert env.observation.scroll == 0  # a refused command changes nothing
    assert "Scrolled down 1" in env.observation.repeats
    assert not env.observation.constraint().complete("Scrolled down 1")  # nor is it decoded
    env.step("Quote: Fact 1:")
    refused(env.step("Quote: Fact 1:"), ALREADY_DONE)
    assert [q.text for q in env.quotes] == ["Fact 1:"]


def test_at_the_bottom_scrolling_on_is_a_loop(web: FakeWeb) -> None:
    env = started(web)
    env.step("Search highest mountain")
    env.step("Clicked on link 0")
    while env.step("Scrolled down 3").info["message"] != "already at the bottom":
        assert not env.done
    refused(env.step("Scrolled down 3"), ALREADY_DONE)


def test_the_episode_ends_after_k_invalid_commands_in_a_row(web: FakeWeb) -> None:
    assert MAX_INVALID_IN_A_ROW == 3
    env = started(web)
    env.step("Search highest mountain")
    first = env.step("Search highest mountain")
    second = env.step("Open the first result")  # not a command
    assert not (first.truncated or second.truncated)
    last = env.step("Clicked on link 7")  # no such link
    assert last.truncated and not last.terminated
    assert last.info["end_reason"] == env.end_reason == "invalid_actions"
    assert env.done


def test_a_valid_command_resets_the_count(web: FakeWeb) -> None:
    env = started(web)
    for i in range(3):  # two invalid, then a valid one, three times over
        env.step("Open the first result")  # not a command
        env.step("Clicked on link 99")  # no page yet, then no such link
        env.step(f"Search highest mountain {i}")
    assert not env.done
    assert sum(not a.valid for a in env.trajectory) == 6


def test_a_deadline_passed_ends_the_episode_after_its_step(web: FakeWeb) -> None:
    env = started(web, deadline=time.monotonic() + 3600)
    assert not env.step("Search highest mountain").truncated
    env.deadline = time.monotonic() - 1  # the budget has run out
    step = env.step("Clicked on link 0")
    assert step.info["valid"] is True and web.fetches == [EVEREST]  # carried out, then
    assert step.truncated and not step.terminated
    assert step.info["end_reason"] == env.end_reason == "time_budget"


def test_an_end_command_past_the_deadline_still_ends_as_itself(web: FakeWeb) -> None:
    env = started(web)
    env.step("Search highest mountain")
    env.step("Clicked on link 0")
    env.step("Quote: Fact 1:")
    env.deadline = time.monotonic() - 1
    step = env.step("End: Answer")
    assert step.terminated and step.info["end_reason"] == "answer"


def test_no_deadline_never_ends_an_episode(web: FakeWeb) -> None:
    env = started(web, max_actions=5)
    for i in range(4):
        assert not env.step(f"Search q{i}").truncated
    assert env.step("Search q4").info["end_reason"] == "actions"
