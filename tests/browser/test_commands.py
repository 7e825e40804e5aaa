"""Parsing and formatting browser commands."""

from __future__ import annotations

import pytest

from webqa.browser.commands import (
    Back,
    ClickLink,
    Command,
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
from webqa.errors import WebQAError

CANONICAL: list[tuple[str, Command]] = [
    ("Search how tall is mount everest", Search("how tall is mount everest")),
    ("Clicked on link 0", ClickLink(0)),
    ("Clicked on link 17", ClickLink(17)),
    ("Find in page: Sagarmatha", FindInPage("Sagarmatha")),
    ("Quote: It is 8,849 m high.", QuoteText("It is 8,849 m high.")),
    ("Quote: It is━high.", QuoteText("It is", "high.")),
    ("Scrolled down 1", Scroll(1)),
    ("Scrolled down 3", Scroll(3)),
    ("Scrolled up 2", Scroll(-2)),
    ("Top", Top()),
    ("Back", Back()),
    ("End: Answer", End("answer")),
    ("End: Nonsense", End("nonsense")),
    ("End: Controversial", End("controversial")),
]


@pytest.mark.parametrize(("text", "command"), CANONICAL)
def test_every_command_parses_and_formats_back(text: str, command: Command) -> None:
    assert parse_command(text) == command
    assert format_command(command) == text


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("  Top \n", Top()),
        ("\tSearch   cats  ", Search("cats")),
        ("Clicked on link  3", ClickLink(3)),
        ("Quote: start ━ end ", QuoteText("start", "end")),
        ("Find in page:  x y ", FindInPage("x y")),
    ],
)
def test_surrounding_whitespace_is_forgiven(text: str, command: Command) -> None:
    assert parse_command(text) == command


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty command"),
        ("   \n", "empty command"),
        ("Search a\nb", "a command must be one line"),
        ("Search", "Search needs an argument: Search <query>"),
        ("Find in page:   ", "Find in page needs text after it"),
        ("Search " + "x" * 201, "Search text is over 200 characters"),
        (
            "search cats",
            "unknown command (commands are case-sensitive: did you mean 'Search <query>'?)",
        ),
        ("top", "unknown command (commands are case-sensitive: did you mean 'Top'?)"),
        ("Clicked on link x", "link id must be a number, got 'x'"),
        ("Clicked on link -1", "link id must be a number, got '-1'"),
        ("Clicked on link ٣", "link id must be a number, got '٣'"),
        ("Scrolled down 4", "scroll amount must be 1, 2 or 3, got '4'"),
        ("Scrolled up 0", "scroll amount must be 1, 2 or 3, got '0'"),
        ("Scrolled down", "Scrolled down needs an argument: Scrolled down <1|2|3>"),
        ("End: Maybe", "End must be followed by Answer, Nonsense or Controversial, got 'Maybe'"),
        ("Quote:", "Quote needs text"),
        ("Quote: a━", "Quote needs start and end"),
        ("Quote: a━b━c", "a quote may hold at most one ━"),
        ("Top please", "unknown command (commands are case-sensitive: did you mean 'Top'?)"),
        (
            "Open the page",
            "unknown command; expected one of: Search, Clicked on link, Find in page:, Quote:, "
            "Scrolled down, Scrolled up, Top, Back, End:",
        ),
    ],
)
def test_bad_commands_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidCommandError) as caught:
        parse_command(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, WebQAError)


def test_format_then_parse_is_identity_for_odd_arguments() -> None:
    odd: list[Command] = [Search("a  b — ünïcode"), FindInPage("【x】"), QuoteText("a", "b c")]
    for command in odd:
        assert parse_command(format_command(command)) == command
