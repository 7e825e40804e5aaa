"""The browser's public surface and the test fake's fit to the Web seam."""

from __future__ import annotations

import webqa.browser
from tests.fakes import FakeWeb
from webqa.web.base import Web


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(webqa.browser.__all__) == webqa.browser.__all__
    assert set(webqa.browser.__all__) == {
        "ActionRecord", "Back", "BrowserEnv", "ClickLink", "Command", "CommandConstraint",
        "End", "EpisodeOverError", "FindInPage", "InvalidCommandError", "Link", "Observation",
        "Page", "Quote", "QuoteText", "Scroll", "Search", "StepResult", "Top", "format_command",
        "match_quote", "page_from_document", "page_from_html", "page_from_text",
        "parse_command", "render_observation", "search_results_page",
    }  # fmt: skip
    for name in webqa.browser.__all__:
        assert getattr(webqa.browser, name) is not None


def test_fake_web_is_a_web() -> None:
    assert isinstance(FakeWeb(), Web)
