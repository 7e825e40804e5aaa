"""The guided procedure's second hop: quotes judged not to state the answer lead to one
follow-up search the model writes from the question's and the quotes' words. The judge
is the policy's yes/no, or (the default) the answer it drafts from the quotes: they
answer where that draft would be shown as an answer."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from tests.fakes import FakePolicy, FakeWeb
from webqa import prompting
from webqa.answering import CitedClaims
from webqa.browser.commands import CommandConstraint
from webqa.browsing import browse
from webqa.drafting import write
from webqa.episode import Episode, new_episode
from webqa.errors import InputError
from webqa.models.base import Chat, GenerationRequest
from webqa.procedure import FOLLOW_UP_PROMPT, FOLLOW_UP_WORDS, JUDGE_PROMPT, Free, Guided
from webqa.web.base import Document, SearchResult

Q = "What is the capital of the home country of the poet Ann Smith?"
POET = "https://example.org/ann-smith"
LAND = "https://example.org/ruritania"
BRIDGE = "Ann Smith was a Ruritanian poet who wrote many odes."
ANSWER = "The capital of Ruritania is Strelsau, on the river Ruri."
FOLLOW_UP = "Search Ruritania capital"
# the follow-up's "Ruritania" (from the quote's "Ruritanian") is a word the page uses
POET_PAGE = f"{BRIDGE}\n\nShe lived by the sea in the north of Ruritania."


def two_page_web() -> FakeWeb:
    return FakeWeb(
        [
            Document(POET, "Ann Smith", POET_PAGE, "text/plain"),
            Document(LAND, "Ruritania", f"Ruritania is a small kingdom.\n\n{ANSWER}", "text/plain"),
        ],
        {
            Q: [SearchResult("Ann Smith", POET, BRIDGE)],
            # the follow-up finds the first page again, first
            "Ruritania capital": [
                SearchResult("Ann Smith", POET, BRIDGE),
                SearchResult("Ruritania", LAND, ANSWER),
            ],
        },
    )


RANKED: list[str] = []  # the questions passages were ranked against


def ranker(question: str, passages: Sequence[str]) -> list[float]:
    RANKED.append(question)
    return [float(p in (BRIDGE, ANSWER)) for p in passages]


def scripted(request: GenerationRequest, commands: Sequence[str], quotes: Sequence[str]) -> str:
    """The first of ``commands``, else of quotes of ``quotes``, that the step's grammar
    admits."""
    constraint = request.constraint
    assert isinstance(constraint, CommandConstraint)
    for command in (*commands, *(f"Quote: {text}" for text in quotes)):
        if constraint.complete(command):
            return command
    raise AssertionError("no scripted command fits the grammar")


def reply(request: GenerationRequest) -> str:
    """The first command of these that the step's grammar admits."""
    return scripted(request, (FOLLOW_UP, "Clicked on link 0", "End: Answer"), (BRIDGE, ANSWER))


def answered_once_strelsau_is_quoted(chat: Chat) -> float:
    return 0.9 if "Strelsau" in chat[-1].content else 0.1


def episode_of(policy: FakePolicy, procedure: Guided | Free, max_actions: int = 20) -> Episode:
    course = procedure.start(Q)
    episode = new_episode(
        0, Q, two_page_web(), course, max_actions=max_actions, seed=0, temperature=0.0, started=0.0
    )
    browse([episode], policy, course, max_tokens=64, emit=lambda event: None)
    assert episode.done
    return episode


def run(policy: FakePolicy, procedure: Guided | Free, max_actions: int = 20) -> list[str]:
    return [step.command for step in episode_of(policy, procedure, max_actions).steps]


def test_quotes_that_do_not_answer_lead_to_a_follow_up_search_and_a_second_page() -> None:
    policy = FakePolicy(reply, yes=answered_once_strelsau_is_quoted)
    RANKED.clear()
    commands = run(policy, Guided(ranker, follow_up=True, judge_by="yes"))
    assert commands == [
        f"Search {Q}",
        "Clicked on link 0",
        f"Quote: {BRIDGE}",
        FOLLOW_UP,
        "Clicked on link 1",  # the page already quoted is not opened again
        f"Quote: {ANSWER}",
        "End: Answer",
    ]
    # the second page is ranked against the follow-up query and the question without
    # the names it gives and what it says they are (the first page's subject)
    assert "Ruritania capital. What is the capital of the home country of the" in RANKED
    # judged once, on the bridge alone: after the one follow-up there is nothing to decide
    assert policy.yes_batches == [1]
    assert BRIDGE in policy.yes_chats[0][-1].content and Q in policy.yes_chats[0][-1].content
    follow = next(r for r in policy.requests if r.constraint and r.constraint.complete(FOLLOW_UP))
    assert follow.chat[0].content.startswith("You answer questions")
    assert "Search <a few words>" in follow.chat[0].content  # the follow-up prompt
    assert BRIDGE in follow.chat[-1].content  # the quotes name the bridge
    grammar = follow.constraint
    assert grammar is not None
    assert grammar.complete("Search Ruritania") and grammar.complete("Search capital Ruritania")
    # no stop word (a copy of the question's opening) and no word twice
    assert not grammar.allows("Search What is the") and not grammar.complete(
        "Search capital of Ruritania"
    )
    assert not grammar.complete("Search Ruritania capital Ruritania")
    assert not grammar.allows("Search Paris") and not grammar.allows("Clicked on link 0")
    assert not grammar.allows("Quote: ") and not grammar.complete("End: Answer")
    assert not grammar.complete("Search poet poet poet poet poet poet poet")  # seven words
    assert not grammar.complete(f"Search {Q}")
    assert not grammar.complete("Search Ann Smith capital")  # nothing the quotes found
    # what the question names, and what it says that is, was searched for already
    assert not grammar.complete("Search Ruritania Smith") and not grammar.allows("Search Ann ")
    assert not grammar.allows("Search Ruritania poet")  # "poet" is the quote's word too


def test_quotes_judged_to_answer_end_on_the_first_page() -> None:
    policy = FakePolicy(reply, yes=0.8)
    commands = run(policy, Guided(ranker, follow_up=True, judge_by="yes"))
    assert commands == [f"Search {Q}", "Clicked on link 0", f"Quote: {BRIDGE}", "End: Answer"]
    assert policy.yes_batches == [1]


def test_at_most_one_follow_up_and_none_without_the_actions_for_it() -> None:
    never = FakePolicy(reply, yes=0.0)  # nothing ever answers: one follow-up, then the end
    commands = run(never, Guided(ranker, follow_up=True, judge_by="yes"))
    assert sum(c.startswith("Search ") for c in commands) == 2 and commands[-1] == "End: Answer"
    assert len(never.yes_chats) == 1  # nothing to decide after the follow-up
    short = FakePolicy(reply, yes=0.0)  # 3 actions left after the quote: too few to hop
    assert (
        run(short, Guided(ranker, follow_up=True, judge_by="yes"), max_actions=6)[-1]
        == "End: Answer"
    )
    assert short.yes_chats == []
    off = FakePolicy(reply, yes=0.0)
    assert run(off, Guided(ranker, follow_up=False))[3:] == ["End: Answer"]
    assert off.yes_chats == []
    assert Guided(ranker).follow_up and Guided(ranker).judge_by == "draft"  # the default


def test_a_query_limited_to_given_words() -> None:
    grammar = CommandConstraint(
        [], "", kinds={"Search"}, search_words=["Indian", "capital", "of", "Mexican"]
    )
    for query in ("India", "capital of India", "Mexico", "CAPITAL", "Indian capital"):
        assert grammar.complete(f"Search {query}"), query
    for query in ("Delhi", "capital  India", "capital ", "India,", "in", "of of of of of of of"):
        assert not grammar.complete(f"Search {query}"), query
    assert grammar.allows("Search capital Ind") and not grammar.allows("Search capital Del")
    assert not grammar.allows("Search capitalcapital") and not grammar.allows("Search India的")
    assert not grammar.allows("Search capitals") and not grammar.allows("Search Indianx")
    assert grammar.allows("Search a") is False  # no given word starts with "a"
    needs = CommandConstraint(
        [], "", kinds={"Search"}, search_words=["Indian", "capital"], search_needs=["Indian"]
    )
    assert needs.complete("Search India capital") and needs.complete("Search Indian")
    assert not needs.complete("Search capital") and needs.allows("Search capital")
    # no word made up from a given one, and no word twice, not even on its way (a
    # decoder that cannot end a query writes on until its budget runs out)
    made_up = CommandConstraint(
        [], "", kinds={"Search"}, search_words=["independent", "Belgian", "capital"]
    )
    assert made_up.complete("Search Belgium capital") and made_up.allows("Search independ")
    for query in ("independentiaa", "independemic", "Belgiumxyz", "capital Capital"):
        assert not made_up.allows(f"Search {query}"), query
    years = CommandConstraint(
        [], "", kinds={"Search"}, search_words=["1862", "1802", "year", "Sultan"]
    )
    assert years.allows("Search 1862 year 180") and not years.allows("Search 1862 year 186")
    assert not years.allows("Search Sultamib") and years.complete("Search Sultan 1802")
    free = CommandConstraint([], "", kinds={"Search"})
    assert free.complete("Search Delhi, the capital")  # without words, any query
    # with the words the pages read: a derived word is one of them
    read = CommandConstraint(
        [],
        "",
        kinds={"Search"},
        search_words=["attend", "Belgian", "capital"],
        search_kin="Antwerp is a city in Belgium , the Belgians say attending".split(),
    )
    assert read.complete("Search Belgium capital") and read.allows("Search Belgiu")
    assert read.complete("Search Belgian capital attend")  # the given words stay
    for query in ("attenM", "Belgiam", "attending", "Belgians"):  # made up; longer
        assert not read.complete(f"Search {query}"), query
    assert not read.allows("Search attenM") and not read.allows("Search Belgiam")


def test_the_follow_up_prompts_example_is_a_query_its_grammar_admits() -> None:
    example = prompting.render(FOLLOW_UP_PROMPT)
    question = example.split("●Question\n")[1].splitlines()[0]
    quote = example.split("●Quotes\n")[1].splitlines()[1]
    command = example.split("●Next action\n")[1].splitlines()[0]
    words = re.findall(r"\w+", f"{question} {quote}")
    grammar = CommandConstraint(
        [], "", kinds={"Search"}, search_words=words, max_search_words=FOLLOW_UP_WORDS
    )
    assert grammar.complete(command), command
    judge = prompting.render(JUDGE_PROMPT, question=Q, quotes="[1] Ann Smith (example): x")
    assert judge.rstrip().endswith("Answer yes or no.") and Q in judge


def drafts(answer_to: dict[str, str], again: str = "I could not tell [1].") -> FakePolicy:
    """A policy that browses as ``reply`` does and drafts, from quotes holding a key of
    ``answer_to``, its answer (the first key found), else "I could not tell [1]."; a
    redraft (decoded under ``CitedClaims``) is ``again``."""

    def draft_or_command(request: GenerationRequest) -> str:
        if isinstance(request.constraint, CommandConstraint):
            return reply(request)
        if request.constraint is not None:
            return again
        quotes = request.chat[-1].content
        return next((a for k, a in answer_to.items() if k in quotes), "I could not tell [1].")

    return FakePolicy(draft_or_command, yes=0.9)  # a yes/no judge would say "answered"


def test_a_draft_that_declines_or_adds_nothing_leads_to_the_second_page() -> None:
    for first in ("I could not tell [1].", "The capital is Paris [1]."):  # declines; made up
        policy = drafts({"Strelsau": "The capital is Strelsau [2].", "Ruritanian": first})
        episode = episode_of(policy, Guided(ranker, follow_up=True))
        commands = [step.command for step in episode.steps]
        assert commands[3:] == [FOLLOW_UP, "Clicked on link 1", f"Quote: {ANSWER}", "End: Answer"]
        # the draft judged, not a yes/no on the question (the made-up draft's redraft asks
        # the support judge whether its quote supports it)
        assert not any(Q in chat[-1].content for chat in policy.yes_chats)
        drafted = [r for r in policy.requests if r.constraint is None]
        assert len(drafted) == 1 and BRIDGE in drafted[0].chat[-1].content
        assert drafted[0].seed == episode.seed and drafted[0].temperature == 0.0
        # the draft was of the bridge alone: the answer is written from both quotes
        assert episode.draft is None
        texts = write(Q, [episode], policy, max_tokens=64, emit=lambda event: None)
        assert texts == {0: "The capital is Strelsau [2]."}


def test_a_draft_that_answers_ends_the_episode_and_is_its_answer() -> None:
    policy = drafts({"Ruritanian": "Ann Smith's home is Ruritania [1]."})
    # the draft alone judges here: the quote says nothing of a capital, and with the
    # relation judge (the default) that leads on (the test of it below)
    episode = episode_of(policy, Guided(ranker, follow_up=True, relation_judge=False))
    assert [step.command for step in episode.steps][3:] == ["End: Answer"]
    assert episode.draft == "Ann Smith's home is Ruritania [1]."
    before = len(policy.requests)
    texts = write(Q, [episode], policy, max_tokens=64, emit=lambda event: None)
    assert texts == {0: "Ann Smith's home is Ruritania [1]."}
    assert len(policy.requests) == before  # not written twice


def test_an_unknown_judge_is_refused() -> None:
    with pytest.raises(InputError, match="judge_by"):
        Guided(ranker, judge_by="maybe")


def test_a_draft_that_only_cites_is_redrafted_before_it_is_judged() -> None:
    # "The capital is [1]." adds no word: it is written again at once, as the end would
    # (``webqa.redraft``); a redraft that states what the quote says ends the episode and
    # is its answer, one that does not leads to the second page, as does the bare draft
    # without redrafts (the draft alone judges: the quote says nothing of a capital)
    bare = "The capital of Ann Smith's home country is [1]."
    stated = "Ann Smith's home country is Ruritania [1]."
    kept = drafts({"Ruritanian": bare}, again=stated)
    episode = episode_of(kept, Guided(ranker, relation_judge=False))
    assert [s.command for s in episode.steps][3:] == ["End: Answer"]
    assert episode.draft == stated
    assert sum(isinstance(r.constraint, CitedClaims) for r in kept.requests) == 1
    for policy, procedure in (
        (drafts({"Ruritanian": bare}, again=bare), Guided(ranker, relation_judge=False)),
        (drafts({"Ruritanian": bare}, again=stated), Guided(ranker, redraft=False)),
    ):
        steps = [s.command for s in episode_of(policy, procedure).steps]
        assert steps[3] == FOLLOW_UP


def test_a_follow_up_that_finds_nothing_new_ends_the_episode() -> None:
    # the follow-up's results hold only the page already quoted: nothing is left to
    # open, and with quotes in hand the episode ends rather than searching on freely
    web = FakeWeb(
        [Document(POET, "Ann Smith", POET_PAGE, "text/plain")],
        {
            Q: [SearchResult("Ann Smith", POET, BRIDGE)],
            "Ruritania capital": [SearchResult("Ann Smith", POET, BRIDGE)],
        },
    )

    def search_on(request: GenerationRequest) -> str:
        constraint = request.constraint
        if isinstance(constraint, CommandConstraint) and constraint.complete("Search Strelsau"):
            return "Search Strelsau"  # a model that would search on if it could
        if request.constraint is None:
            return "I could not tell [1]."
        return reply(request)

    policy = FakePolicy(search_on)
    course = Guided(ranker).start(Q)
    episode = new_episode(0, Q, web, course, max_actions=20, seed=0, temperature=0.0, started=0.0)
    browse([episode], policy, course, max_tokens=64, emit=lambda event: None)
    assert [s.command for s in episode.steps][3:] == [FOLLOW_UP, "End: Answer"]


BOOK_Q = "In what year did the author of Ruritanian Odes die?"
BOOK = "https://example.org/odes"
BOOK_BRIDGE = "Ruritanian Odes is an 1851 book of poems by Ann Smith."
DEATH = "Ann Smith lived in Strelsau until she died in 1870."


def test_quotes_that_name_the_answer_s_subject_but_not_what_is_asked_of_it_lead_on() -> None:
    # "died in 1851" cites a year the first quote says, but nothing quoted says what the
    # question asks ("year", "author", "die"): with the relation judge the episode
    # searches again; without it the grounded draft ends the episode
    web = FakeWeb(
        [
            Document(BOOK, "Ruritanian Odes", BOOK_BRIDGE, "text/plain"),
            Document(POET, "Ann Smith", f"Ann Smith was a poet.\n\n{DEATH}", "text/plain"),
        ],
        {
            BOOK_Q: [SearchResult("Ruritanian Odes", BOOK, BOOK_BRIDGE)],
            "Smith author": [SearchResult("Ann Smith", POET, DEATH)],
        },
    )

    def step(request: GenerationRequest) -> str:
        if request.constraint is None:  # the draft
            text = request.chat[-1].content
            return "She died in 1870 [2]." if "Strelsau" in text else "She died in 1851 [1]."
        commands = ("Search Smith author", "Clicked on link 0", "End: Answer")
        return scripted(request, commands, (BOOK_BRIDGE, DEATH))

    def rank(question: str, passages: Sequence[str]) -> list[float]:
        return [float(p in (BOOK_BRIDGE, DEATH)) for p in passages]

    for judge, after in ((True, ["Search Smith author", "Clicked on link 0"]), (False, [])):
        course = Guided(rank, relation_judge=judge).start(BOOK_Q)
        episode = new_episode(
            0, BOOK_Q, web, course, max_actions=20, seed=0, temperature=0.0, started=0.0
        )
        browse([episode], FakePolicy(step), course, max_tokens=64, emit=lambda event: None)
        steps = [s.command for s in episode.steps]
        assert steps[3:-1] == (after + [f"Quote: {DEATH}"] if judge else []), steps
        assert steps[-1] == "End: Answer"
        texts = write(BOOK_Q, [episode], FakePolicy(step), max_tokens=64, emit=lambda e: None)
        assert texts == {0: "She died in 1870 [2]." if judge else "She died in 1851 [1]."}
