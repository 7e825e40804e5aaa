"""The procedures: what each lets a policy do at each step, where pages open, its prompt."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.browser.conftest import EVEREST, K2, everest_html
from tests.fakes import FakeWeb
from webqa.browser.env import BrowserEnv
from webqa.errors import InputError
from webqa.procedure import (
    Course,
    Free,
    Guided,
    first_search,
    guided_browsing,
    guided_grammar,
    size_in_name,
)
from webqa.shortlist import Passages
from webqa.web.base import Document, SearchResult

Q = "How tall is Mount Everest?"


def everest_web() -> FakeWeb:
    return FakeWeb(
        [
            Document(EVEREST, "Mount Everest", everest_html(), clean=True),
            Document(K2, "K2", "K2 is 8,611 m high.\n\nIt is in the Karakoram.", "text/plain"),
        ],
        {
            "highest mountain": [
                SearchResult("Mount Everest", EVEREST, "Earth's highest mountain."),
                SearchResult("K2", K2, "Second highest."),
            ]
        },
    )


def fact(number: int) -> str:
    return f"Fact {number}: the mountain has property number {number}."


def facts_first(question: str, passages: Sequence[str]) -> list[float]:
    """A known ranker: Fact 30, then Fact 31, then Fact 32, then the rest."""
    order = [fact(30), fact(31), fact(32)]
    return [3.0 - order.index(p) if p in order else 0.0 for p in passages]


def test_guided_grammar_follows_the_browsing_procedure() -> None:
    env = BrowserEnv(everest_web(), window_lines=3)
    blank = guided_grammar(env.reset(Q))
    assert blank.complete("Search highest mountain")
    assert not blank.allows("Clicked") and not blank.allows("End: Nonsense")
    results = guided_grammar(env.step("Search highest mountain").observation)
    assert results.complete("Clicked on link 0")
    assert not results.allows("Search") and not results.allows("Back")
    page = env.step("Clicked on link 0").observation
    guided = guided_grammar(page)  # a page with nothing ranked: the visible text
    assert page.page is not None
    first = page.page.plain.splitlines()[1].split(",")[0]
    assert guided.complete(f"Quote: {first}")
    assert guided.complete("Find in page: elevation") and guided.complete("Scrolled down 1")
    assert not guided.allows("Clicked on link") and not guided.allows("End: Answer")
    hidden = page.page.plain.splitlines()[-1][:20]  # below the three visible lines
    assert page.constraint().allows(f"Quote: {hidden}")  # the browser's own grammar
    assert not guided.allows(f"Quote: {hidden}")
    after = guided_grammar(env.step(f"Quote: {first}").observation)
    assert after.complete("End: Answer") and after.complete("Clicked on link 0")
    assert after.allows("Search ")


BELIZE = (
    "<h1>Belize</h1><p>Most people live in the former capital, Belize City.</p>"
    "<h3>Capital</h3><p>name: Belmopan</p>"
)
SENTENCES = ["Most people live in the former capital, Belize City.", "name: Belmopan"]


def test_guided_quote_starts_at_the_heading_nearest_its_passage() -> None:
    web = FakeWeb([Document("https://x.org/bz", "Belize", BELIZE, clean=True)])
    env = BrowserEnv(web)
    env.reset("What is the capital of Belize?")
    env.step("Search Belize")
    obs = env.step("Clicked on link 0").observation
    capital = Passages([("Capital", "name: Belmopan")], SENTENCES, "name: Belmopan")
    guided = guided_grammar(obs, capital)
    assert guided.complete("Quote: Capital name: Belmopan")
    assert not guided.allows("Quote: capital, Belize City")  # the earlier "capital"
    assert not guided.complete("Quote: Capital name: Bel")  # it ends where a passage does
    assert not guided.allows("Back")  # a page is quoted before the browser leaves it
    env.step("Quote: Capital name: Belmopan")
    both = Passages([*capital.starts, ("Most people", "Most people")], SENTENCES, "")
    again = guided_grammar(env.observation, both)
    assert not again.allows("Quote: Capital")  # quoted already: not offered again
    assert again.complete("Quote: Most people live in the former capital, Belize City.")
    done = guided_grammar(env.observation, capital)
    assert not done.allows("Quote:") and done.complete("End: Answer")
    assert not done.allows("Back") and not done.allows("Search ")  # quote more, or end
    free = guided_grammar(env.observation, capital, explore=True)
    assert free.complete("Back") and free.allows("Search ")  # free to leave a quoted page


def test_guided_without_exploring_a_quoted_page_is_quoted_more_or_ended() -> None:
    html = "<h1>Belize</h1><p>Capital: Belmopan. See <a href='/bc'>Belize City</a>.</p>"
    html += "<p>Most people live in Belize City.</p>"
    web = FakeWeb([Document("https://x.org/bz", "Belize", html, clean=True)])
    env = BrowserEnv(web)
    env.reset("What is the capital of Belize?")
    env.step("Search Belize")
    env.step("Clicked on link 0")
    ends = ["Capital: Belmopan.", "See Belize City.", "Most people live in Belize City."]
    passages = Passages([("Capital", "Belmopan."), ("Most people", "Belize City.")], ends, "")
    env.step("Quote: Capital: Belmopan.")
    stay = guided_grammar(env.observation, passages)
    assert stay.complete("End: Answer") and stay.complete("Quote: Most people live in Belize City.")
    for leave in ("Clicked on link 0", "Back", "Search Belize City"):
        assert not stay.allows(leave), leave
    free = guided_grammar(env.observation, passages, explore=True)
    assert free.complete("Clicked on link 0")
    env.step("Quote: Most people live in Belize City.")
    last = guided_grammar(env.observation, passages)
    assert last.complete("End: Answer") and last.forced("") == "End: Answer"
    assert last.only() == "End: Answer"  # the agent takes it without asking the model
    assert stay.only() is None and free.only() is None


def browser(course: Course) -> tuple[BrowserEnv, tuple[str, int, bool, bool]]:
    """A browser laid out as ``course`` says, and what the course says."""
    env = BrowserEnv(
        everest_web(),
        window_lines=course.window_lines,
        results_lines=course.results_lines,
        page_first=course.page_first,
        opens_at=course.opens_at,
    )
    layout = (course.prompt, course.window_lines, course.results_lines, course.page_first)
    return env, (*layout, course.redraft)


def test_the_free_procedure_is_webgpts_command_set() -> None:
    course = Free().start(Q)
    env, layout = browser(course)
    assert layout == ("browse_system", 20, 20, False, False)
    blank = env.reset(Q)
    assert course.opening(blank) is None  # the model chooses its first search
    assert course.grammar(blank, 0.0).complete("End: Nonsense")
    page = env.step("Search highest mountain").observation
    page = env.step("Clicked on link 0").observation
    assert page.scroll == 0  # pages open at the top
    grammar = course.grammar(page, 0.8)
    for command in ("Top", "Scrolled down 2", "Find in page: summit", "Back", "Search K2"):
        assert grammar.complete(command), command
    assert grammar.complete("Quote: The summit was first reached in 1953.")  # anywhere


def test_the_guided_course_opens_pages_at_the_best_passage_and_shortlists_by_temperature() -> None:
    course = Guided(facts_first).start(Q)
    env, layout = browser(course)
    assert layout == ("browse_guided_system", 8, 6, True, True)
    blank = env.reset("  How tall is\nMount Everest? ")
    assert course.opening(blank) == first_search(Q) == f"Search {Q}"
    env.step("Search highest mountain")
    page = env.step("Clicked on link 0").observation
    assert page.page is not None
    assert page.page.lines[page.scroll + 1] == fact(30)  # a line below the window's top
    greedy, sampled = course.grammar(page, 0.0), course.grammar(page, 0.4)
    assert greedy.complete(f"Quote: {fact(30)}")
    assert not greedy.allows(f"Quote: {fact(31)}")  # greedy: the best passage only
    for n in (30, 31, 32):  # sampled: any of the best three
        assert sampled.complete(f"Quote: {fact(n)}"), n
    assert not sampled.allows(f"Quote: {fact(33)}")
    assert not sampled.allows("Find in page: ") and not sampled.allows("Scrolled down 1")
    assert (
        Guided(facts_first, shortlist=2).start(Q).grammar(page, 0.4).complete(f"Quote: {fact(31)}")
    )
    assert (
        not Guided(facts_first, shortlist=2)
        .start(Q)
        .grammar(page, 0.4)
        .allows(f"Quote: {fact(32)}")
    )


def test_best_of_n_spreads_its_sampled_episodes_over_the_results() -> None:
    course = Guided(facts_first).start(Q)
    env, _ = browser(course)
    env.reset(Q)
    results = env.step("Search highest mountain").observation
    for episode in (0, 1):  # greedy or sampled, the first two choose from every result
        assert course.grammar(results, 0.4, episode).complete("Clicked on link 0")
    assert course.grammar(results, 0.0, 2).complete("Clicked on link 0")  # greedy: never
    spread = course.grammar(results, 0.4, 2)
    assert not spread.allows("Clicked on link 0") and spread.complete("Clicked on link 1")
    assert course.grammar(results, 0.4, 4).complete("Clicked on link 0")  # every 4: 2 and 3
    assert not course.grammar(results, 0.4, 7).allows("Clicked on link 0")
    assert (
        Guided(facts_first, spread=False)
        .start(Q)
        .grammar(results, 0.4, 2)
        .complete("Clicked on link 0")
    )
    # a single result is opened whatever the episode
    lone = FakeWeb(
        [Document(K2, "K2", "K2 is 8,611 m high.", "text/plain")],
        {"second highest": [SearchResult("K2", K2, "Second highest.")]},
    )
    alone = BrowserEnv(lone, window_lines=course.window_lines)
    alone.reset(Q)
    one = alone.step("Search second highest").observation
    assert course.grammar(one, 0.4, 2).complete("Clicked on link 0")
    # once a page was opened, every result not opened yet may be
    env.step("Clicked on link 1")
    back = env.step("Back").observation
    assert course.grammar(back, 0.4, 2).complete("Clicked on link 0")


def test_a_guided_procedure_with_no_passages_or_window_is_refused() -> None:
    with pytest.raises(InputError, match="Guided: shortlist must be at least 1, got 0"):
        Guided(facts_first, shortlist=0)
    with pytest.raises(InputError, match="Guided: window_lines must be at least 1, got 0"):
        Guided(facts_first, window_lines=0)


def test_a_page_that_never_names_what_the_question_names_is_left_for_the_next_result() -> None:
    olympus = "https://example.org/olympus"
    cameroon = "https://example.org/cameroon"
    other = "https://example.org/other"
    docs = [
        Document(
            olympus, "Mount Olympus", "The highest peak, Mytikas, rises to 2,917 m.", "text/plain"
        ),
        Document(cameroon, "Cameroon", "The highest peak is Fako, 4,045 m.", "text/plain"),
        Document(other, "Himalayas", "The highest peaks on Earth are here.", "text/plain"),
    ]
    question = "Which is the highest peak of Cameroon?"
    found = [SearchResult(d.title, d.url, "") for d in docs]
    web = FakeWeb(docs, {question: found, "one": found[:1]})
    course = Guided(lambda q, passages: [1.0] * len(passages)).start(question)

    def opened(query: str, link: int = 0) -> tuple[BrowserEnv, str | None]:
        env = BrowserEnv(web, window_lines=8, opens_at=course.opens_at)
        env.reset(question)
        course.grammar(env.step(f"Search {query}").observation, 0.0)
        page = env.step(f"Clicked on link {link}").observation
        return env, course.grammar(page, 0.0).only()

    env, only = opened(question)
    assert only == "Back"  # taken without asking the model
    results = env.step("Back").observation
    assert course.grammar(results, 0.0).complete("Clicked on link 1")
    assert not course.grammar(results, 0.0).allows("Clicked on link 0")  # opened already
    page = env.step("Clicked on link 1").observation
    assert course.grammar(page, 0.0).allows("Quote: The highest peak is Fako")
    # at most pass_over pages are passed over: the third page opened is read
    env, only = opened(question)
    env.step("Back")
    env.step("Clicked on link 2")  # Himalayas: does not name Cameroon either
    assert course.grammar(env.observation, 0.0).only() == "Back"
    env.step("Back")
    fresh = Guided(lambda q, passages: [1.0] * len(passages), pass_over=1).start(question)
    env2 = BrowserEnv(web, window_lines=8, opens_at=fresh.opens_at)
    env2.reset(question)
    fresh.grammar(env2.step(f"Search {question}").observation, 0.0)
    env2.step("Clicked on link 2")
    assert fresh.grammar(env2.observation, 0.0).only() == "Back"
    env2.step("Back")
    env2.step("Clicked on link 0")
    assert fresh.grammar(env2.observation, 0.0).allows("Quote: The highest peak, Mytikas")
    # with no other result to open, the page is read
    alone = Guided(lambda q, passages: [1.0] * len(passages)).start(question)
    env3 = BrowserEnv(web, window_lines=8, opens_at=alone.opens_at)
    env3.reset(question)
    alone.grammar(env3.step("Search one").observation, 0.0)
    env3.step("Clicked on link 0")
    assert alone.grammar(env3.observation, 0.0).allows("Quote: The highest peak, Mytikas")


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("Qwen/Qwen2.5-0.5B-Instruct", 0.5e9),
        ("qwen2.5:0.5b", 0.5e9),
        ("llama3.1:8b", 8e9),
        ("SmolLM2-135M-Instruct", 135e6),
        ("/models/qwen-0.5b-1d9614638d18", 0.5e9),
        ("gpt-4o", None),
        ("phi-3-mini-4k", None),
    ],
)
def test_size_in_name(name: str, size: float | None) -> None:
    assert size_in_name(name) == size


def test_who_browses_guided() -> None:
    assert guided_browsing("auto", False, "anything")  # every local model
    assert guided_browsing("auto", True, "qwen2.5:1.5b")  # a small served model
    assert not guided_browsing("auto", True, "llama3.1:70b")
    assert not guided_browsing("auto", True, "gpt-4o")  # size unknown: WebGPT's commands
    assert guided_browsing("guided", True, "gpt-4o")
    assert not guided_browsing("free", False, None)
    with pytest.raises(InputError, match="unknown browsing 'fast'"):
        guided_browsing("fast", True, None)
