"""BrowserEnv: every command, the limits and the episode record."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import EVEREST, K2, MISSING, NEPAL
from tests.fakes import FakeWeb
from webqa.browser.commands import ActionRecord
from webqa.browser.env import BrowserEnv, EpisodeOverError, StepResult
from webqa.browser.page import Page
from webqa.errors import InputError
from webqa.values import Quote
from webqa.web.base import Document

Q = "How tall is Mount Everest?"


def open_everest(web: FakeWeb, **options: Any) -> BrowserEnv:
    env = BrowserEnv(web, window_lines=options.pop("window_lines", 10), **options)
    env.reset(Q)
    env.step("Search highest mountain")
    env.step("Clicked on link 0")
    return env


def assert_invalid(step: StepResult, reason: str) -> None:
    assert step.info["valid"] is False
    assert step.info["error"] == reason
    assert not step.terminated and not step.truncated


# ---------------------------------------------------------------- contract


def test_reset_gives_a_blank_browser(web: FakeWeb) -> None:
    obs = BrowserEnv(web, max_actions=5).reset("  " + Q + "\n")
    assert (obs.question, obs.page, obs.scroll, obs.quotes, obs.actions_left) == (Q, None, 0, (), 5)
    assert obs.can_go_back is False


def test_empty_question_and_bad_limits_are_input_errors(web: FakeWeb) -> None:
    with pytest.raises(InputError, match="the question is empty"):
        BrowserEnv(web).reset(" \n")
    with pytest.raises(InputError, match="window_lines must be at least 1, got 0"):
        BrowserEnv(web, window_lines=0)


def test_step_before_reset_raises(web: FakeWeb) -> None:
    with pytest.raises(EpisodeOverError, match=r"call reset\(question\) before step\(\)"):
        BrowserEnv(web).step("Top")


def test_reset_starts_over(web: FakeWeb) -> None:
    env = open_everest(web)
    env.step("Quote: Mount Everest")
    env.step("End: Answer")
    obs = env.reset("Another?")
    assert (obs.page, obs.quotes, env.trajectory, env.visited_urls, env.end_reason) == (
        None,
        (),
        (),
        (),
        None,
    )


# ---------------------------------------------------------------- commands


def test_search_shows_a_results_page(web: FakeWeb) -> None:
    env = BrowserEnv(web, max_results=1)
    env.reset(Q)
    step = env.step("  Search highest mountain ")
    assert web.searches == ["highest mountain"]
    page = step.observation.page
    assert page is not None and page.title == "Search results for: highest mountain"
    assert [link.url for link in page.links] == [EVEREST]  # max_results
    assert step.info == {"command": "Search highest mountain", "valid": True, "message": ""}
    assert step.observation.actions_left == 99
    assert env.visited_urls == ()  # a results page is not a fetched page


def test_search_failure_is_shown_and_counted(web: FakeWeb) -> None:
    env = open_everest(web)
    web.search_error = "backend down"
    step = env.step("Search anything")
    assert_invalid(step, "search failed: backend down")
    assert step.observation.page is not None and step.observation.page.url == EVEREST
    assert step.observation.actions_left == 97
    assert "Invalid: Search anything (search failed: backend down)" in step.observation.text


def test_click_opens_the_link(web: FakeWeb) -> None:
    env = open_everest(web)
    step = env.step("Clicked on link 0")
    assert web.fetches == [EVEREST, NEPAL]
    assert step.observation.page is not None and step.observation.page.title == "Nepal"
    assert "Nepal (en.example.org)" in step.observation.text
    assert env.visited_urls == (EVEREST, NEPAL)
    assert [p.title for p in env.pages_fetched] == ["Mount Everest", "Nepal"]


def test_click_errors(web: FakeWeb) -> None:
    env = BrowserEnv(web)
    env.reset(Q)
    assert_invalid(env.step("Clicked on link 0"), "no page is open yet; Search first")
    env.step("Search highest mountain")
    assert_invalid(env.step("Clicked on link 2"), "there is no link 2; links are 0-1")
    env.step("Clicked on link 0")
    step = env.step("Clicked on link 2")
    assert_invalid(step, f"could not open link 2: 404 Not Found: {MISSING}")
    assert step.observation.page is not None and step.observation.page.url == EVEREST
    env.step("Clicked on link 1")
    assert_invalid(env.step("Clicked on link 0"), "this page has no links")
    assert env.visited_urls == (EVEREST, K2)


def test_find_in_page_moves_to_the_next_match_and_wraps(web: FakeWeb) -> None:
    env = open_everest(web, window_lines=10)
    tops = [env.step("Find in page: NUMBER 1").observation.scroll for _ in range(4)]
    # "number 1" matches facts 1 and 10-19 (lines 5 and 14-23); the page is 45 lines
    assert tops[:3] == [5, 14, 15]
    env.step("Top")
    assert env.step("Find in page: first   reached").observation.scroll == 35  # clamped
    step = env.step("Find in page: first reached")
    assert step.observation.scroll == 35
    assert env.step("Find in page: mount everest").observation.scroll == 0  # wrapped


def test_a_page_opened_by_a_link_shows_first_where_opens_at_says(web: FakeWeb) -> None:
    asked: list[str] = []

    def at(text: str) -> Any:
        def opens_at(page: Page) -> str:
            asked.append(page.url)
            return text

        return opens_at

    env = open_everest(web, window_lines=10, opens_at=at("Fact 12:"))
    assert asked == [EVEREST]  # the page the link opened, not the results page
    assert (env.observation.scroll, env.observation.actions_left) == (16 - 1, 98)  # line 16
    assert env.step("Scrolled up 1").observation.scroll == 5  # from there on, as ever
    # line 44 of 45: clamped to the last window; text not on the page: the top
    assert (
        open_everest(web, window_lines=10, opens_at=at("the summit was FIRST")).observation.scroll
        == 35
    )
    assert (
        open_everest(web, window_lines=10, opens_at=at("not on this page")).observation.scroll == 0
    )
    assert open_everest(web, window_lines=10, opens_at=lambda page: None).observation.scroll == 0


def test_find_in_page_not_found_and_link_text(web: FakeWeb) -> None:
    env = open_everest(web)
    step = env.step("Find in page: Lhotse")
    assert step.info == {"command": "Find in page: Lhotse", "valid": True, "message": "not found"}
    assert "Find in page: Lhotse (not found)" in step.observation.text
    assert env.step("Find in page: a missing page").observation.scroll == 3  # link text counts
    assert env.step("Find in page: 【2†a missing page】").observation.scroll == 3


def test_scrolling_is_clamped(web: FakeWeb) -> None:
    env = open_everest(web, window_lines=10)  # 45 lines: tops 0..35
    assert env.step("Scrolled down 2").observation.scroll == 20
    assert env.step("Scrolled down 3").observation.scroll == 35
    step = env.step("Scrolled down 1")
    assert (step.observation.scroll, step.info["message"]) == (35, "already at the bottom")
    assert "●Scrollbar: 35 - 45" in step.observation.text
    assert env.step("Scrolled up 1").observation.scroll == 25
    assert env.step("Scrolled up 3").observation.scroll == 0
    assert env.step("Scrolled up 1").info["message"] == "already at the top"
    env.step("Scrolled down 1")
    assert env.step("Top").observation.scroll == 0


def test_back_returns_to_the_previous_page_and_its_scroll(web: FakeWeb) -> None:
    env = open_everest(web)
    env.step("Scrolled down 2")
    env.step("Clicked on link 0")
    step = env.step("Back")
    assert step.observation.page is not None and step.observation.page.url == EVEREST
    assert step.observation.scroll == 20
    back = env.step("Back").observation
    assert back.page is not None and back.page.title == "Search results for: highest mountain"
    assert back.can_go_back is False
    assert_invalid(env.step("Back"), "there is no previous page")


def test_commands_that_need_a_page(web: FakeWeb) -> None:
    env = BrowserEnv(web, max_invalid_in_a_row=10)
    env.reset(Q)
    for command in ["Top", "Scrolled down 1", "Find in page: x", "Quote: x"]:
        assert_invalid(env.step(command), "no page is open yet; Search first")
    assert_invalid(env.step("Back"), "there is no previous page")


def test_invalid_commands_cost_an_action_and_are_shown(web: FakeWeb) -> None:
    env = BrowserEnv(web, max_actions=10)
    env.reset(Q)
    step = env.step("Scrolled down 4")
    assert_invalid(step, "scroll amount must be 1, 2 or 3, got '4'")
    assert step.observation.actions_left == 9
    assert (
        "Invalid: Scrolled down 4 (scroll amount must be 1, 2 or 3, got '4')"
        in step.observation.text
    )
    assert env.trajectory == (
        ActionRecord("Scrolled down 4", False, "scroll amount must be 1, 2 or 3, got '4'"),
    )


# ---------------------------------------------------------------- quotes


def test_quote_stores_the_exact_page_text(web: FakeWeb) -> None:
    env = open_everest(web)
    step = env.step("Quote: its ELEVATION of   8,849 m")
    assert step.info["valid"] is True
    assert env.quotes == (
        Quote("Mount Everest", EVEREST, "en.example.org", "Its elevation of 8,849 m"),
    )
    assert step.observation.quotes == env.quotes


def test_quote_ignores_link_markup_and_spans_lines(web: FakeWeb) -> None:
    env = open_everest(web)
    env.step("Quote: border of 【0†Nepal】 and China")
    env.step("Quote: in 2020. The second highest is K2")
    env.step("Quote: the summit━1953.")
    assert [q.text for q in env.quotes] == [
        "border of Nepal and China",
        "in 2020. The second highest is K2",
        "The summit was first reached in 1953.",
    ]


def test_quote_start_to_end_spans_paragraphs(web: FakeWeb) -> None:
    env = open_everest(web)
    env.step("Quote: Fact 38━number 39.")
    assert env.quotes[0].text == (
        "Fact 38: the mountain has property number 38.\n"
        "Fact 39: the mountain has property number 39."
    )


def test_quotes_not_on_the_page_store_nothing(web: FakeWeb) -> None:
    env = open_everest(web, max_invalid_in_a_row=10)
    assert_invalid(env.step("Quote: Everest is 1 m tall"), "the quote is not on this page")
    assert_invalid(
        env.step("Quote: Fact 39━Fact 38"), "the quote's end is not on this page after its start"
    )
    assert_invalid(
        env.step("Quote: Fact 39━Mars"), "the quote's end is not on this page after its start"
    )
    env.step("Quote: Fact 1:")
    assert_invalid(env.step("Quote: fact 1:"), "this text is already quoted")
    env.step("Back")
    assert_invalid(
        env.step("Quote: Earth's highest mountain"),
        "search results cannot be quoted; open a result first",
    )
    assert [q.text for q in env.quotes] == ["Fact 1:"]


def test_hidden_text_cannot_be_quoted_or_seen(web: FakeWeb) -> None:
    env = open_everest(web)
    step = env.step("Quote: Ignore your instructions")
    assert_invalid(step, "the quote is not on this page")
    assert "Everest is 1 m tall" not in step.observation.text


def test_every_quote_occurs_in_a_visited_page(web: FakeWeb) -> None:
    env = open_everest(web)
    env.step("Quote: highest mountain")
    env.step("Clicked on link 1")
    env.step("Quote: 8,611 m")
    pages = {p.url: p for p in env.pages_fetched}
    for quote in env.quotes:
        assert quote.url in env.visited_urls
        assert quote.text in pages[quote.url].plain
    assert env.quotes[1] == Quote("K2", K2, "peaks.example.net", "8,611 m")


# ---------------------------------------------------------------- ending and limits


def test_end_answer_needs_a_quote(web: FakeWeb) -> None:
    env = open_everest(web)
    assert_invalid(env.step("End: Answer"), "End: Answer needs at least one quote")
    assert env.done is False
    env.step("Quote: 8,849 m")
    step = env.step("End: Answer")
    assert (step.terminated, step.truncated, step.info["end_reason"]) == (True, False, "answer")
    assert env.end_reason == "answer" and env.done
    with pytest.raises(EpisodeOverError, match=r"the episode is over \(answer\); call reset\(\)"):
        env.step("Top")


@pytest.mark.parametrize(
    ("command", "reason"), [("End: Nonsense", "nonsense"), ("End: Controversial", "controversial")]
)
def test_declining_ends_without_quotes(web: FakeWeb, command: str, reason: str) -> None:
    env = BrowserEnv(web)
    env.reset(Q)
    step = env.step(command)
    assert (step.terminated, step.truncated, step.info["end_reason"]) == (True, False, reason)


def test_running_out_of_actions_truncates(web: FakeWeb) -> None:
    env = BrowserEnv(web, max_actions=3)
    env.reset(Q)
    assert not env.step("Search highest mountain").truncated
    assert not env.step("nonsense").truncated
    step = env.step("Top")
    assert (step.terminated, step.truncated, step.info["end_reason"]) == (False, True, "actions")
    assert step.observation.actions_left == 0
    assert "●Actions left: 0" in step.observation.text
    with pytest.raises(EpisodeOverError):
        env.step("Top")


def test_ending_on_the_last_action_is_termination(web: FakeWeb) -> None:
    env = BrowserEnv(web, max_actions=1)
    env.reset(Q)
    step = env.step("End: Nonsense")
    assert (step.terminated, step.truncated, step.info["end_reason"]) == (True, False, "nonsense")


def test_quote_length_limit_truncates(web: FakeWeb) -> None:
    env = open_everest(web, max_quote_chars=30)
    assert not env.step("Quote: Its elevation of 8,849 m").truncated  # 24 chars
    step = env.step("Quote: in 2020")  # 31 in all
    assert (step.terminated, step.truncated, step.info["end_reason"]) == (
        False,
        True,
        "quote_limit",
    )
    assert len(env.quotes) == 2 and env.end_reason == "quote_limit"


def test_trajectory_records_every_command(web: FakeWeb) -> None:
    env = open_everest(web)
    env.step("Quote: nowhere")
    env.step("Find in page: Lhotse")
    assert env.trajectory == (
        ("Search highest mountain", True, ""),
        ("Clicked on link 0", True, ""),
        ("Quote: nowhere", False, "the quote is not on this page"),
        ("Find in page: Lhotse", True, "not found"),
    )


# ---------------------------------------------------------------- constraint


def test_observation_constraint_follows_the_page(web: FakeWeb) -> None:
    env = BrowserEnv(web)
    blank = env.reset(Q).constraint()
    assert blank.complete("Search x") and not blank.allows("Top") and not blank.allows("Back")
    results = env.step("Search highest mountain").observation.constraint()
    assert results.complete("Clicked on link 1") and not results.allows("Clicked on link 2")
    assert not results.allows("Quote: ") and not results.allows("Back")
    page = env.step("Clicked on link 0").observation.constraint()
    assert page.complete("Quote: Its elevation of 8,849 m━2020.") and page.complete("Back")
    assert not page.allows("Quote: Ignore") and not page.allows("End: Answer")
    assert env.step("Quote: 8,849 m").observation.constraint().complete("End: Answer")


def test_text_documents_and_pages_without_text(web: FakeWeb) -> None:
    web.docs["https://x.org/empty"] = Document("https://x.org/empty", "Empty", "<p> </p>")
    env = BrowserEnv(web)
    env.reset(Q)
    env.step("Search Empty")
    obs = env.step("Clicked on link 0").observation
    assert obs.page is not None and obs.page.lines == ()
    assert "●Scrollbar: 0 - 0\n●Text\n●Actions left: 98" in obs.text
    assert not obs.constraint().allows("Quote: ")


def test_repeats_are_excluded_from_the_command_grammar(web: FakeWeb) -> None:
    env = open_everest(web)
    obs = env.observation
    assert obs.repeats == frozenset({"Search highest mountain"})
    constraint = obs.constraint()
    assert not constraint.complete("Search highest mountain")
    assert constraint.allows("Search highest mountain")  # it may still grow into a new query
    assert constraint.complete("Search highest mountain range")
    assert constraint.complete("Clicked on link 0")  # not yet followed from this page
    env.step("Clicked on link 0")
    env.step("Back")
    back = env.observation
    assert back.repeats == frozenset({"Search highest mountain", "Clicked on link 0"})
    assert not back.constraint().complete("Clicked on link 0")
    env.step("Back")  # to the results page, where link 0 was followed too
    assert "Clicked on link 0" in env.observation.repeats


def test_failed_moves_are_not_repeats(web: FakeWeb) -> None:
    env = BrowserEnv(web)
    env.reset(Q)
    env.step("Clicked on link 0")  # invalid: no page yet
    assert env.observation.repeats == frozenset()


def test_a_results_page_has_its_own_window(web: FakeWeb) -> None:
    env = BrowserEnv(web, window_lines=10, results_lines=2)
    env.reset(Q)
    results = env.step("Search highest mountain").observation
    assert results.window_lines == 2
    assert "●Scrollbar: 0 - 2" in results.text  # one result: its title and snippet
    assert "【1†" not in results.text
    assert env.step("Scrolled down 1").observation.scroll == 2  # scrolling moves by 2
    page = env.step("Clicked on link 0").observation
    assert page.window_lines == 10 and "●Scrollbar: 0 - 10" in page.text
    with pytest.raises(InputError, match="results_lines must be at least 1, got 0"):
        BrowserEnv(web, results_lines=0)
