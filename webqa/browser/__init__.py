"""WebGPT's text-mode browser: pages, commands, the observation and the environment."""

from webqa.browser.commands import (
    ActionRecord,
    Back,
    ClickLink,
    Command,
    CommandConstraint,
    End,
    FindInPage,
    InvalidCommandError,
    QuoteText,
    Scroll,
    Search,
    Top,
    format_command,
    parse_command,
)
from webqa.browser.env import BrowserEnv, EpisodeOverError, Observation, StepResult
from webqa.browser.page import (
    Link,
    Page,
    match_quote,
    page_from_document,
    page_from_html,
    page_from_text,
    search_results_page,
)
from webqa.browser.render import render_observation
from webqa.values import Quote

__all__ = [
    "ActionRecord",
    "Back",
    "BrowserEnv",
    "ClickLink",
    "Command",
    "CommandConstraint",
    "End",
    "EpisodeOverError",
    "FindInPage",
    "InvalidCommandError",
    "Link",
    "Observation",
    "Page",
    "Quote",
    "QuoteText",
    "Scroll",
    "Search",
    "StepResult",
    "Top",
    "format_command",
    "match_quote",
    "page_from_document",
    "page_from_html",
    "page_from_text",
    "parse_command",
    "render_observation",
    "search_results_page",
]
