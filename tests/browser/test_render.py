"""The rendered observation, compared with golden files in tests/browser/golden/."""

from __future__ import annotations

from collections.abc import Callable

from tests.browser.conftest import EVEREST
from tests.fakes import FakeWeb
from webqa.browser.commands import ActionRecord
from webqa.browser.env import BrowserEnv
from webqa.browser.page import Page
from webqa.browser.render import action_line, clip, render_observation, title_line
from webqa.values import Quote

Golden = Callable[[str, str], None]
QUESTION = "How tall is Mount Everest?"


def test_blank_browser(web: FakeWeb, golden: Golden) -> None:
    env = BrowserEnv(web, max_actions=10, window_lines=8)
    golden("blank", env.reset(QUESTION).text)


def test_search_results(web: FakeWeb, golden: Golden) -> None:
    env = BrowserEnv(web, max_actions=10, window_lines=8)
    env.reset(QUESTION)
    golden("search", env.step("Search highest mountain").observation.text)


def test_page_with_quotes_and_invalid_actions(web: FakeWeb, golden: Golden) -> None:
    env = BrowserEnv(web, max_actions=10, window_lines=8, max_invalid_in_a_row=10)
    env.reset(QUESTION)
    for command in [
        "Search highest mountain",
        "Clicked on link 0",
        "Quote: Its elevation of 8,849 m━2020.",
        "Clicked on link 9",
        "Quote: Everest is 1 m tall",
        "scroll down",
        "Scrolled down 1",
    ]:
        step = env.step(command)
    golden("page", step.observation.text)


def test_long_quotes_are_cut_in_the_observation_only(web: FakeWeb, golden: Golden) -> None:
    env = BrowserEnv(web, max_actions=10, window_lines=4)
    env.reset(QUESTION)
    env.step("Search highest mountain")
    env.step("Clicked on link 0")
    step = env.step("Quote: Mount Everest is━Fact 3: the mountain has property number 3.")
    assert len(env.quotes[0].text) > 300
    assert env.quotes[0].text.endswith("Fact 3: the mountain has property number 3.")
    golden("long_quote", step.observation.text)


def test_render_observation_directly() -> None:
    page = Page("https://x.org/a", "A", "x.org", ("one", "two", "three"), (), "one\ntwo\nthree")
    text = render_observation(
        question=" Q? ",
        quotes=[Quote("A", "https://x.org/a", "x.org", "one\ntwo")],
        actions=[
            ActionRecord("Top", True),
            ActionRecord("Scrolled up 1", True, "already at the top"),
        ],
        page=page,
        top=1,
        window_lines=5,
        actions_left=3,
    )
    assert text == "\n".join(
        [
            "●Question",
            "Q?",
            "●Quotes",
            "From quote 1 (A · x.org):",
            "one two",
            "●Past actions",
            "Top",
            "Scrolled up 1 (already at the top)",
            "●Title",
            "A (x.org)",
            "●Scrollbar: 1 - 3",
            "●Text",
            "two",
            "three",
            "●Actions left: 3",
            "●Next action",
        ]
    )


def test_small_pieces() -> None:
    assert clip("a  b\nc", 10) == "a b c"
    assert clip("abcdefghijkl", 6) == "abcde…"
    assert action_line(ActionRecord("Topp", False, "unknown")) == "Invalid: Topp (unknown)"
    assert (
        action_line(ActionRecord("●Next action\nX", False, "bad"))
        == "Invalid: •Next action X (bad)"
    )
    assert title_line(None) == "Blank page"
    page = Page("search:x", "Search results for: x", "", (), (), "")
    assert title_line(page) == "Search results for: x"


def test_golden_episode_page_is_everest(web: FakeWeb) -> None:
    env = BrowserEnv(web)
    env.reset(QUESTION)
    env.step("Search highest mountain")
    env.step("Clicked on link 0")
    assert env.visited_urls == (EVEREST,)


def test_page_first_layout_keeps_a_page_step_s_start_for_the_next_step(web: FakeWeb) -> None:
    """Guided layout: the page window comes before the quotes and past actions, so the
    step after a quote on the same window starts with the same text (a model that keeps
    the previous prompt's cache runs only the rest); the default layout does not."""

    def two_steps(page_first: bool) -> tuple[str, str]:
        env = BrowserEnv(web, max_actions=10, window_lines=8, page_first=page_first)
        env.reset(QUESTION)
        env.step("Search highest mountain")
        before = env.step("Clicked on link 0").observation.text
        after = env.step("Quote: Its elevation of 8,849 m━2020.").observation.text
        return before, after

    before, after = two_steps(page_first=True)
    sections = [line for line in after.splitlines() if line.startswith("●")]
    assert sections[:4] == ["●Question", "●Title", sections[2], "●Text"]
    assert sections[2].startswith("●Scrollbar") and sections[4] == "●Quotes"
    shared = before[: before.index("●Quotes")]
    assert after.startswith(shared) and "8,849" in shared  # question and the page window
    assert after[len(shared) :].count("From quote 1") == 1
    old_before, old_after = two_steps(page_first=False)
    assert old_before.index("●Quotes") < old_before.index("●Title")
    assert sorted(old_after.splitlines()) == sorted(after.splitlines())  # same content
