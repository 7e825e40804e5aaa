"""Reading the quotes: the answer's words copied out of them (webqa.reading), and a
redraft that must say them before it cites."""

from __future__ import annotations

from tests.fakes import BF, FakeReward, FakeWeb, scripted_policy
from webqa.agent import AgentConfig, run_question
from webqa.answering import CitedClaims
from webqa.procedure import Guided
from webqa.reading import SPAN_MAX_CHARS, QuoteSpan, answer_spans
from webqa.values import Event, Quote
from webqa.web.base import SearchResult

AGE = Quote(
    "Burma - The World Factbook",
    "zim://c/factbook/burma",
    "c",
    "Median age\ntotal: 31.1 years (2025 est.)\nmale: 29.9 years\nfemale: 31.6 years",
)
QUESTION = "What is the median age in Burma?"


def test_a_span_is_a_stretch_of_a_quote_from_a_word_start() -> None:
    span = QuoteSpan(QUESTION, [AGE])
    assert span.allows("") and span.allows(" 31") and span.allows("31.1 ye")
    assert span.allows("TOTAL:  31.1")  # case and spacing aside, across the line break
    assert span.allows("years (2025 est.) male")
    assert not span.allows("1.1 years")  # starts inside "31.1"
    assert not span.allows("32 years")  # not in the quote
    assert not span.allows("edian age")


def test_a_span_is_complete_at_a_word_end_when_it_adds_to_the_question() -> None:
    span = QuoteSpan(QUESTION, [AGE])
    assert span.complete("31.1 years") and span.complete(" 31.1")
    assert not span.complete("31.1 yea")  # ends inside a word
    assert not span.complete("Median age")  # only the question's own words
    assert not span.complete("")
    long = Quote("Long", "zim://c/long", "c", "word " * 100)
    assert QuoteSpan("What?", [long]).allows("word " * 10)
    assert not QuoteSpan("What?", [long]).allows("word " * (SPAN_MAX_CHARS // 5 + 1))


def test_a_required_span_must_be_said_before_the_first_citation() -> None:
    claims = CitedClaims(QUESTION, [AGE], required="31.1 years")
    assert not claims.allows("The median age in Burma is [")
    assert not claims.allows("The median age in Burma is 29.9 years [")  # a fact, not it
    assert claims.allows("The median age in Burma is 31.1 years [1]. Men: 29.9 years [1]")
    # without a required span any fact the quotes state may be cited
    assert CitedClaims(QUESTION, [AGE]).allows("The median age in Burma is 29.9 years [")


def test_answer_spans_keep_only_whole_spans() -> None:
    policy = scripted_policy([], [], spans=["31.1 years", "31.1 yea", "median age"])
    quotes = [[AGE], [AGE], [AGE]]
    assert answer_spans(QUESTION, quotes, policy, seeds=[0, 1, 2]) == ["31.1 years", None, None]
    [request, *_] = policy.requests
    assert isinstance(request.constraint, QuoteSpan) and request.temperature == 0.0
    assert "31.1 years" in request.chat[-1].content and QUESTION in request.chat[-1].content
    assert answer_spans(QUESTION, [], policy, seeds=[]) == []


GOOD = [
    "Search capital",
    "Clicked on link 0",
    "Quote: Its capital and largest city is Ouagadougou.",
    "End: Answer",
]


CAPITAL = "What is the capital?"


def answer(
    read_span: bool, drafts: list[str], spans: list[str], events: list[Event] | None = None
) -> tuple[str, list[CitedClaims]]:
    """The answer to CAPITAL from BF's quote, the policy drafting ``drafts`` in turn and
    copying out ``spans``, and the constraints of the answers it was asked to rewrite."""
    policy = scripted_policy([list(GOOD)], drafts, spans=spans)
    result = run_question(
        CAPITAL,
        policy=policy,
        web=FakeWeb([BF], {CAPITAL: [SearchResult(BF.title, BF.url, "")]}),
        reward=FakeReward(),
        config=AgentConfig(),
        procedure=Guided(
            lambda q, ps: [float("Ouagadougou" in p) for p in ps], read_span=read_span
        ),
        on_event=(events if events is not None else []).append,
    )
    again = [r.constraint for r in policy.requests if isinstance(r.constraint, CitedClaims)]
    return result.answer, again


def test_a_bare_draft_is_redrafted_saying_the_copied_words() -> None:
    events: list[Event] = []
    drafts = ["The capital is [1].", "It is Ouagadougou [1]."]
    kept, [again] = answer(True, drafts, ["Ouagadougou"], events)
    assert kept == "It is Ouagadougou [1]."
    assert not again.allows("The capital is the largest city [")  # the copied words first
    assert again.allows("The capital is Ouagadougou [")
    assert any("the quotes' words that answer it: Ouagadougou" in e.text for e in events)
    kept, [plain] = answer(False, drafts, ["Ouagadougou"])
    assert kept == "It is Ouagadougou [1]."
    assert plain.allows("The capital is the largest city [")


def test_an_answer_that_misreads_its_quote_is_written_again_saying_the_copied_words() -> None:
    misread = "The capital is the largest city [1]."  # grounded, but not what was asked
    fixed, [again] = answer(True, [misread, "The capital is Ouagadougou [1]."], ["Ouagadougou"])
    assert fixed == "The capital is Ouagadougou [1]."
    assert not again.allows("The capital is the largest city [")
    # a rewrite that still does not say the copied words is not kept
    assert (
        answer(True, [misread, "The capital is the largest one [1]."], ["Ouagadougou"])[0]
        == misread
    )
    # an answer that says them is left as it is; without read_span nothing is copied
    assert answer(True, ["It is Ouagadougou [1]."], ["Ouagadougou"]) == (
        "It is Ouagadougou [1].",
        [],
    )
    assert answer(False, [misread], ["Ouagadougou"]) == (misread, [])


def test_says_wants_every_new_keyword_of_the_span() -> None:
    from webqa.redraft import says

    assert says(QUESTION, "It is 31.1 years [1].", "31.1 years")
    assert not says(QUESTION, "It is 31.6 years [1].", "31.1 years")
    assert says(QUESTION, "Anything.", "median age")  # the span adds nothing to check
