"""CommandConstraint: prefixes and whole commands valid on the current page."""

from __future__ import annotations

import time
from typing import Any

import pytest

from webqa.browser.commands import CommandConstraint, QuoteText, format_command, parse_command
from webqa.browser.page import match_quote
from webqa.models.base import Constraint

PLAIN = "The Quick brown fox.\nJumps over   the lazy dog."
C = CommandConstraint([0, 1, 12], PLAIN)


def test_is_a_constraint() -> None:
    assert isinstance(C, Constraint)


ALLOWED = [
    "",
    "S",
    "Search ",
    "Search what is the fox",
    "Search trailing space ",
    "Cl",
    "Clicked on link ",
    "Clicked on link 1",
    "Clicked on link 12",
    "Scrolled ",
    "Scrolled down 3",
    "Scrolled up 1",
    "Find in page: ",
    "Find in page: anything",
    "T",
    "Top",
    "Back",
    "End: ",
    "End: Answer",
    "End: Cont",
    "Quote: ",
    "Quote: the quick",
    "Quote: THE QUICK BROWN",
    "Quote: fox. jumps",
    "Quote: fox.  Jumps over the ",
    "Quote: qu",
    "Quote: the quick━",
    "Quote: the quick━lazy",
    "Quote: the quick━the lazy dog.",
]


@pytest.mark.parametrize("text", ALLOWED)
def test_allows_prefixes_of_valid_commands(text: str) -> None:
    assert C.allows(text)


REJECTED = [
    " ",
    "Top ",
    "Topp",
    "search",
    "Search  leading space",
    "Search line\nbreak",
    "Search " + "x" * 201,
    "Clicked on link 2",
    "Clicked on link 13",
    "Clicked on link 120",
    "Clicked on link x",
    "Scrolled down 4",
    "Scrolled down 0",
    "Scrolled sideways",
    "Find in page:  x",
    "End: Maybe",
    "Quote:  the",
    "Quote: the quick cat",
    "Quote: dog. The",
    "Quote: the ━",
    "Quote: ━",
    "Quote: lazy━quick",
    "Quote: the quick━ brown",
    "Quote: the quick━brown━fox",
    "Quote: quick   brown━Quick",
    "Quote: dog.━",
    "Quote: fox\nJumps",
]


@pytest.mark.parametrize("text", REJECTED)
def test_rejects_what_cannot_become_valid(text: str) -> None:
    assert not C.allows(text)
    assert not C.complete(text)


WHOLE = [
    ("Top", True),
    ("Back", True),
    ("Search ", False),
    ("Search fox", True),
    ("Search fox ", False),
    ("Find in page: fox", True),
    ("Clicked on link 1", True),
    ("Clicked on link ", False),
    ("Scrolled up 2", True),
    ("Scrolled up", False),
    ("End: Answer", True),
    ("End: Answe", False),
    ("Quote: ", False),
    ("Quote: the qu", True),
    ("Quote: the quick ", False),
    ("Quote: brown fox. jumps", True),
    ("Quote: the quick━", False),
    ("Quote: the quick━lazy dog.", True),
    ("Quote: the quick━lazy ", False),
    ("Quote: fox.   jumps━the", True),
    ("Quote: The   Quick━brown", True),
]


@pytest.mark.parametrize(("text", "whole"), WHOLE)
def test_complete_only_for_whole_commands(text: str, whole: bool) -> None:
    assert C.allows(text)
    assert C.complete(text) is whole


@pytest.mark.parametrize(
    "text",
    ["Quote: the quick", "Quote: fox.  Jumps over the lazy", "Quote: the quick━lazy dog."],
)
def test_complete_quotes_are_canonical_and_on_the_page(text: str) -> None:
    command = parse_command(text)
    assert format_command(command) == text
    start, _, end = text[len("Quote: ") :].partition("━")
    assert match_quote(PLAIN, start, end or None) is not None


def test_complete_agrees_with_the_parser_and_quote_matching() -> None:
    texts = ALLOWED + REJECTED + [text for text, _ in WHOLE]
    for text in texts:
        if C.complete(text):
            command = parse_command(text)
            assert format_command(command) == text
            if isinstance(command, QuoteText):
                assert match_quote(PLAIN, command.text, command.end) is not None
    assert sum(map(C.complete, texts)) == 27  # the loop above checked these


def test_blank_browser_allows_only_search_and_giving_up() -> None:
    blank = CommandConstraint([], "", page_open=False, can_go_back=False, can_answer=False)
    for text in ["Search x", "End: Nonsense", "End: Controversial"]:
        assert blank.complete(text)
    for text in [
        "Top",
        "Back",
        "Scrolled down 1",
        "Find in page: x",
        "Quote: ",
        "End: Answer",
        "Clicked on link 0",
        "C",
    ]:
        assert not blank.allows(text)


def test_search_results_page_cannot_be_quoted() -> None:
    results = CommandConstraint([0, 1], "", can_go_back=False)
    assert results.complete("Clicked on link 1") and results.complete("Scrolled down 1")
    assert not results.allows("Q") and not results.allows("Back")


def test_fast_on_a_large_page() -> None:
    words = [f"w{i}x" for i in range(2000)]
    text = " ".join(words[(i * 7919) % 2000] for i in range(15000))
    start = time.perf_counter()
    constraint = CommandConstraint(range(300), text)
    base = "Quote: " + text[40000:40040]
    for i in range(5000):
        constraint.allows(base + words[i % 2000][: 1 + i % 4])
        constraint.allows(f"Clicked on link {i % 400}")
    assert time.perf_counter() - start < 2.0


def test_runs_of_whitespace_are_not_canonical() -> None:
    """A model must not pad a short quote with spaces until it runs out of tokens."""
    c = CommandConstraint([], "Its citizens are known as Burkinabes.")
    assert c.allows("Quote: Its   ")
    assert not c.allows("Quote: Its    ")
    assert not c.allows("Search a     b")
    assert c.complete("Quote: Its citizens")


PASSAGES = "Intro line. Capital: Ouagadougou is the capital. It lies inland. The end."


def _guided(starts: dict[int, int], **kw: Any) -> CommandConstraint:
    return CommandConstraint(
        [0, 4], PASSAGES, kinds={"Quote"}, quote_starts=starts, exact=True, **kw
    )


def test_forced_text_is_what_every_valid_command_goes_on_with() -> None:
    at = PASSAGES.index("Capital")
    least = PASSAGES.index(" It lies")
    one = _guided({at: least})
    passage = PASSAGES[at:least]
    assert one.forced("") == "Quote: " + passage  # one passage: the whole of it
    assert one.forced("Quote: Capi") == passage[len("Capi") :]
    assert one.forced("Quote: " + passage) == ""  # it may end here (or run on)
    assert one.forced("Quote: Intro") == ""  # not a valid prefix: nothing to force
    two = _guided({at: least, 0: 11})
    assert two.forced("") == "Quote: "  # the passages part at once
    both = _guided({at: least, PASSAGES.index("It lies"): len(PASSAGES)})
    assert both.forced("Quote: ") == ""
    assert both.forced("Quote: It") == " lies inland. The end."
    clicks = CommandConstraint([0, 4], "", kinds={"Click"}, exact=True)
    assert clicks.forced("") == "Clicked on link "  # the id is the model's choice
    assert CommandConstraint([7], "", kinds={"Click"}).forced("") == "Clicked on link 7"
    assert C.forced("") == "" and C.forced("Sc") == "rolled "
    assert C.forced("Quote: The") == ""  # a free quote is never forced
    for constraint, text in ((one, ""), (both, "Quote: It"), (C, "Sc")):
        assert constraint.allows(text + constraint.forced(text))


def test_forced_quote_text_runs_on_to_the_next_place_it_may_end() -> None:
    at, least = PASSAGES.index("Capital"), PASSAGES.index(" It lies")
    ends = [least, PASSAGES.index(" The end"), len(PASSAGES)]
    c = _guided({at: least}, quote_ends=ends)
    assert c.forced("Quote: " + PASSAGES[at:least]) == ""  # it may end here
    assert c.forced("Quote: " + PASSAGES[at : least + 1]) == "It lies inland."


def test_choices_list_every_whole_command_where_the_grammar_is_finite() -> None:
    at, least = PASSAGES.index("Capital"), PASSAGES.index(" It lies")
    ends = [len(PASSAGES), least, PASSAGES.index(" The end")]
    c = _guided({at: least}, quote_ends=ends)
    listed = c.choices()
    # a passage's quotes, shortest first, each a whole valid command
    assert listed == (
        "Quote: Capital: Ouagadougou is the capital.",
        "Quote: Capital: Ouagadougou is the capital. It lies inland.",
        "Quote: Capital: Ouagadougou is the capital. It lies inland. The end.",
    )
    assert all(c.complete(command) for command in listed)
    clicks = CommandConstraint(
        [0, 4, 9], "", kinds={"Click", "End: Answer"}, exclude={"Clicked on link 4"}
    )
    assert clicks.choices() == ("Clicked on link 0", "Clicked on link 9", "End: Answer")
    assert clicks.choices(limit=2) is None  # more than the limit: not listed


def test_choices_are_none_where_the_model_writes_text() -> None:
    assert C.choices() is None  # Search and Find are open
    assert CommandConstraint([], "", kinds={"Search"}).choices() is None
    free_quote = CommandConstraint([0], PASSAGES, kinds={"Quote", "Back"})
    assert free_quote.choices() is None  # a quote from anywhere
    no_ends = _guided({PASSAGES.index("Capital"): PASSAGES.index(" It lies")})
    assert no_ends.choices() is None  # a quote that may end anywhere past its passage
