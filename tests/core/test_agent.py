from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.fakes import BF, FakeReward, FakeWeb, scripted_policy
from webqa.agent import AgentConfig, run_question
from webqa.answering import NOT_IN_QUOTES, NOTHING_FOUND
from webqa.procedure import Free, Guided
from webqa.ranking import agreements, best_index, choose
from webqa.values import Candidate, Event, Result
from webqa.web.base import Document, SearchResult

GOOD = [
    "Search Burkina Faso capital",
    "Clicked on link 0",
    "Quote: Its capital and largest city is Ouagadougou.",
    "End: Answer",
]


def test_scripted_policy_drives_the_loop_to_a_cited_answer() -> None:
    policy = scripted_policy([GOOD], ["The capital is Ouagadougou [1]. See also [4]."])
    events: list[Event] = []
    result = run_question(
        "What is the capital of Burkina Faso?",
        policy=policy,
        web=FakeWeb([BF]),
        reward=None,
        on_event=events.append,
    )
    assert result.answer == "The capital is Ouagadougou [1]. See also."
    cand = result.candidates[0]
    assert cand.removed_citations == 1
    assert cand.end_reason == "answer"
    assert [s.command for s in cand.steps] == GOOD
    assert [(r.n, r.title, r.url, r.extract) for r in result.references] == [
        (
            1,
            "Burkina Faso",
            "https://example.org/bf",
            "Its capital and largest city is Ouagadougou.",
        )
    ]
    assert [e.text for e in events if e.kind == "command"] == GOOD
    # the answer prompt shows the numbered quote
    answer_prompt = policy.requests[-1].chat[-1].content
    assert "[1] Burkina Faso (example.org): Its capital and largest city is Ouagadougou." in (
        answer_prompt
    )


def test_invalid_commands_are_recorded_and_counted() -> None:
    script = ["Open the page please", *GOOD]
    policy = scripted_policy([script], ["Ouagadougou [1]."])
    result = run_question("capital?", policy=policy, web=FakeWeb([BF]), reward=None)
    cand = result.candidates[0]
    assert cand.invalid_actions == 1
    assert not cand.steps[0].valid and cand.steps[0].message


def test_no_quotes_means_nothing_found_and_no_answer_call() -> None:
    policy = scripted_policy([["Search capital", "Top"]], [])
    result = run_question(
        "capital?",
        policy=policy,
        web=FakeWeb([BF]),
        reward=None,
        config=AgentConfig(max_actions=2),
    )
    assert result.answer == NOTHING_FOUND
    assert result.references == ()
    assert result.candidates[0].end_reason == "actions"
    assert policy.batches == [1, 1]  # two browsing calls, no answer call


def test_limit_with_quotes_in_hand_still_answers() -> None:
    policy = scripted_policy([GOOD[:3]], ["Ouagadougou [1]."])
    result = run_question(
        "capital?",
        policy=policy,
        web=FakeWeb([BF]),
        reward=None,
        config=AgentConfig(max_actions=3),
    )
    assert result.candidates[0].end_reason == "actions"
    assert result.answer == "Ouagadougou [1]."


def test_best_of_n_batches_episodes_and_picks_the_argmax() -> None:
    answers = [
        "Ouagadougou [1].",
        "A much longer answer: the city of Ouagadougou [1].",
        "Largest city [1].",
    ]
    policy = scripted_policy([list(GOOD), list(GOOD), list(GOOD)], answers)
    scorer = FakeReward()
    result = run_question(
        "capital?",
        policy=policy,
        web=FakeWeb([BF]),
        reward=scorer,
        n=3,
        config=AgentConfig(temperature=0.8),
    )
    # search, click, quote, end, then 3 answers, each batched
    assert policy.batches == [3, 3, 3, 3, 3]
    assert scorer.calls == [answers]  # every candidate scored in one call
    assert [s.command for s in result.candidates[0].steps] == GOOD
    # episode 0 stays greedy, browsing and answering; the others sample
    assert [r.temperature for r in policy.requests[:3]] == [0.0, 0.8, 0.8]
    assert [r.temperature for r in policy.requests[-3:]] == [0.0, 0.8, 0.8]
    assert result.best == 1
    assert result.answer == answers[1]
    assert [c.score for c in result.candidates] == [float(len(a)) for a in answers]


def test_a_sampled_answer_replaces_the_greedy_one_only_when_clearly_better() -> None:
    greedy, sampled = "Ouagadougou [1].", "The capital is Ouagadougou, the largest city [1]."

    def best(margin: float, prior: float = 0.3) -> Result:
        return run_question(
            "capital?",
            policy=scripted_policy([list(GOOD)] * 2, [greedy, sampled]),
            web=FakeWeb([BF]),
            reward=FakeReward({greedy: 0.5, sampled: 0.5 + margin}),
            n=2,
            config=AgentConfig(temperature=0.8, greedy_prior=prior),
        )

    assert best(0.2).answer == greedy  # within the greedy episode's prior
    assert best(0.4).answer == sampled
    assert best(0.2, prior=0.0).answer == sampled
    assert [c.score for c in best(0.2).candidates] == [0.5, 0.7]  # scores stay the reward's


def test_best_index_prefers_first_on_ties_and_ignores_missing() -> None:
    assert best_index([1.0, 3.0, 3.0]) == 1
    assert best_index([None, 0.5, None]) == 1
    assert best_index([None, None]) == 0


def scored(score: float | None, agreement: float | None = None) -> Candidate:
    return Candidate("a", (), (), (), "answer", 0, score, 1.0, agreement)


def test_choose_adds_the_greedy_prior_and_the_weighted_agreement() -> None:
    three = [scored(0.5, 0.0), scored(0.7, 0.0), scored(0.6, 1.0)]
    assert choose(three) == 1  # the highest reward
    assert choose(three, greedy_prior=0.3) == 0  # 0.8: the greedy episode keeps its place
    assert choose(three, greedy_prior=0.1) == 1  # 0.6 < 0.7
    assert choose(three, consensus=0.2) == 2  # 0.6 + 0.2 x 1.0
    assert choose([scored(None), scored(0.1)], greedy_prior=0.3) == 1  # unscored: lowest
    assert choose([scored(None), scored(None)]) == 0


FACTS = Document(
    url="https://example.org/belize",
    title="Belize",
    body="<html><body><main><h1>Belize</h1><p>Belize is a country in Central America.</p>"
    "<h2>Capital</h2><p>name: Belmopan</p><h2>Currency</h2><p>Belize dollar (BZD)</p>"
    "<p>The climate is tropical and very hot and humid.</p></main></body></html>",
    clean=True,
)


def belmopan_ranker(question: str, passages: Sequence[str]) -> list[float]:
    """A known ranker: passages that name Belmopan first."""
    return [float("Belmopan" in p) for p in passages]


def test_guided_quotes_start_at_the_ranked_passages_and_end_at_a_sentence() -> None:
    script = ["(the question)", "Clicked on link 0", "Quote: Capital name: Belmopan"]
    policy = scripted_policy([script], ["Belmopan [1]."])
    result = run_question(
        "What is the capital of Belize?",
        policy=policy,
        web=FakeWeb(
            [FACTS], {"What is the capital of Belize?": [SearchResult("Belize", FACTS.url, "")]}
        ),
        reward=None,
        procedure=Guided(belmopan_ranker),
    )
    assert [r.extract for r in result.references] == ["Capital\nname: Belmopan"]
    # the question is the first query (no model call), the prompt shows the guided example
    first = result.candidates[0].steps[0]
    assert first.command == "Search What is the capital of Belize?"
    # the one result is opened and, its one passage quoted, browsing ends without asking
    assert [s.command for s in result.candidates[0].steps[1:]] == [*script[1:], "End: Answer"]
    # the quote, the answer, and the words of the quote that answer it (webqa.reading)
    assert len(policy.requests) == 3
    assert "Find in page" not in policy.requests[0].chat[0].content
    on_page = policy.requests[0].constraint
    assert on_page is not None
    assert on_page.complete("Quote: Capital name: Belmopan")  # a short section, whole
    assert not on_page.complete("Quote: name: Belmopan")  # ... from its heading
    assert not on_page.allows("Quote: capital name")  # in the page's own letter case
    assert not on_page.allows("Quote: Capital  name")  # and spacing
    assert not on_page.complete("Quote: Capital")  # a heading alone is not a quote
    assert not on_page.complete("Quote: Capital name: Belm")  # must end at a sentence end
    assert on_page.allows("Quote: Capital name: Belm")
    assert not on_page.allows("Quote: The climate")  # not among the best passages
    assert not on_page.allows("Quote: Belize is")
    assert not on_page.allows("Find in page: ")  # the shortlist replaces finding
    assert not on_page.allows("Back")  # the page is quoted before the browser leaves it


LONG = Document(
    url="https://example.org/belize-long",
    title="Belize",
    body="<html><body><main><h1>Belize</h1>"
    + "".join(f"<p>Filler sentence number {i} about the country.</p>" for i in range(40))
    + "<h2>History</h2>"
    + "".join(f"<p>Long history sentence {i} of many words here.</p>" for i in range(12))
    + "<p>The capital moved to Belmopan in 1970.</p>"
    + "".join(f"<p>Closing sentence number {i} about the country.</p>" for i in range(30))
    + "</main></body></html>",
    clean=True,
)


def test_guided_page_opens_at_its_best_passage_and_long_sections_quote_sentences() -> None:
    quote = "Quote: The capital moved to Belmopan in 1970."
    script = ["(the question)", "Clicked on link 0", quote]
    policy = scripted_policy([script], ["Belmopan [1]."])
    run_question(
        "When did the capital move?",
        policy=policy,
        web=FakeWeb([LONG], {"When did the capital move?": [SearchResult("Belize", LONG.url, "")]}),
        reward=None,
        procedure=Guided(belmopan_ranker),
    )
    seen = policy.requests[0].chat[-1].content
    window = seen.split("●Text\n")[1]
    assert window.splitlines()[1] == "The capital moved to Belmopan in 1970."  # one line above
    # guided: the page comes before the quotes and past actions, in a shorter window
    assert seen.index("●Text") < seen.index("●Quotes") < seen.index("●Past actions")
    shown = window.split("●Quotes")[0].splitlines()
    assert len(shown) == Guided(belmopan_ranker).window_lines < Free().window_lines
    assert "Filler sentence number 0 " not in seen
    on_page = policy.requests[0].constraint
    assert on_page is not None
    assert on_page.complete(quote)
    assert not on_page.allows("Quote: History")  # the section is too long to quote whole


def test_an_answer_that_adds_nothing_from_its_quotes_becomes_a_decline() -> None:
    answers = ["The capital is Bobo-Dioulasso [1].", "The capital is [1].", "Ouagadougou [1]."]
    policy = scripted_policy([list(GOOD)] * 3, answers)
    result = run_question(
        "What is the capital?",
        policy=policy,
        web=FakeWeb([BF]),
        reward=FakeReward(),
        n=3,
    )
    assert [c.answer for c in result.candidates] == [NOT_IN_QUOTES, NOT_IN_QUOTES, answers[2]]
    kept = run_question(
        "What is the capital?",
        policy=scripted_policy([list(GOOD)], answers[:1]),
        web=FakeWeb([BF]),
        reward=None,
        config=AgentConfig(abstain=False),
    )
    assert kept.answer == answers[0]


def test_quotes_that_never_name_what_the_question_names_decline_unwritten() -> None:
    from webqa.answering import NOT_ABOUT

    question = "What is the capital of Burkina Faso? Name the city."
    written = run_question(
        question,
        policy=scripted_policy([GOOD], ["Ouagadougou [1]."]),
        web=FakeWeb([BF]),
        reward=None,
    )
    assert written.answer == "Ouagadougou [1]."  # "Burkina Faso" is the quote's title
    # the same quote for a country it does not name: no answer is written
    policy = scripted_policy([GOOD], [])  # an answer request would find none and fail
    result = run_question(
        "What is the capital of Upper Volta?", policy=policy, web=FakeWeb([BF]), reward=None
    )
    assert result.answer == NOT_ABOUT.format(names="Upper, Volta")
    assert [r.title for r in result.references] == ["Burkina Faso"]  # what it read
    assert not any(r.chat[0].content.startswith("You write") for r in policy.requests)
    kept = run_question(
        "What is the capital of Upper Volta?",
        policy=scripted_policy([GOOD], ["Ouagadougou [1]."]),
        web=FakeWeb([BF]),
        reward=None,
        config=AgentConfig(abstain=False),
    )
    assert kept.answer == "Ouagadougou [1]."


def test_an_answer_that_cites_without_saying_anything_is_written_again() -> None:
    from webqa.answering import CitedClaims

    drafts = ["The capital is [1].", "The capital is Bobo-Dioulasso [1]."]
    redrafts = ["The capital is Ouagadougou [1].", "The capital is Bobo [1]."]
    policy = scripted_policy([list(GOOD)] * 2, drafts + redrafts)
    question = "What is the capital?"
    web = FakeWeb([BF], {question: [SearchResult(BF.title, BF.url, "")]})
    guided = Guided(lambda q, passages: [float("Ouagadougou" in p) for p in passages])
    result = run_question(
        question,
        policy=policy,
        web=web,
        reward=FakeReward(),
        n=2,
        config=AgentConfig(temperature=0.4),
        procedure=guided,
    )
    # both drafts add nothing their quote says; the first redraft states the quoted
    # capital and is kept, the second names a city no quote mentions and is not
    assert [c.answer for c in result.candidates] == [redrafts[0], NOT_IN_QUOTES]
    assert all(c.references[0].extract == GOOD[2][len("Quote: ") :] for c in result.candidates)
    # written again once each, while browsing (the judge of the quotes reads the
    # redraft), not again at the end
    again = [r for r in policy.requests if isinstance(r.constraint, CitedClaims)]
    assert len(again) == 2
    assert again[0].constraint is not None and not again[0].constraint.allows("The capital is [")
    assert again[0].constraint.allows("The capital is Ouagadougou [1]")
    # the free procedure does not redraft: the same drafts are withdrawn
    free = run_question(
        question,
        policy=scripted_policy([list(GOOD)] * 2, drafts + redrafts),
        web=web,
        reward=FakeReward(),
        n=2,
        config=AgentConfig(temperature=0.4),
    )
    assert [c.answer for c in free.candidates] == [NOT_IN_QUOTES, NOT_IN_QUOTES]


def test_agreements_measure_shared_new_keywords() -> None:
    question = "What is the capital?"
    answers = ["It is Ouagadougou [1].", "Ouagadougou, the largest city [2].", "It is Bobo [1]."]
    first, second, third = agreements(question, answers)
    assert first > third and second > third
    assert third == 0.0
    declines = agreements(question, [NOTHING_FOUND, NOTHING_FOUND, "It is Ouagadougou [1]."])
    assert declines == [0.0, 0.0, 0.0]  # finding nothing is nothing to agree on
    assert agreements(question, ["Alone [1]."]) == [0.0]


def test_best_of_n_leans_to_the_answer_most_episodes_found() -> None:
    answers = [
        "The largest city, Ouagadougou [1].",
        "Its capital is Ouagadougou, the largest city [1].",
        "Bobo-Dioulasso is the largest city in the western region of the whole country [1].",
    ]

    # the length scorer prefers the third; the first two share more with the rest
    def run(consensus: float) -> Result:
        return run_question(
            "capital?",
            policy=scripted_policy([list(GOOD)] * 3, list(answers)),
            web=FakeWeb([BF]),
            reward=FakeReward(),
            n=3,
            config=AgentConfig(temperature=0.8, consensus=consensus),
        )

    plain = run(0.0)
    assert plain.best == 2
    agreed = run(100.0)
    ranked = [c.ranking(100.0) for c in agreed.candidates]
    assert agreed.best == max(range(3), key=lambda i: ranked[i]) != 2
    assert all(c.agreement is not None for c in agreed.candidates)


def test_agent_config_sampling_temperature_by_backend() -> None:
    from webqa import api
    from webqa.errors import InputError

    local = api.agent_config(None, n=4, max_actions=10, temperature=None, seed=0)
    served = api.agent_config(
        "http://127.0.0.1:1/v1", n=4, max_actions=10, temperature=None, seed=0
    )
    single = api.agent_config(None, n=1, max_actions=10, temperature=None, seed=0)
    told = api.agent_config(None, n=4, max_actions=10, temperature=0.7, seed=0)
    assert (local.temperature, served.temperature, single.temperature) == (0.4, 0.8, 0.0)
    assert told.temperature == 0.7
    with pytest.raises(InputError):
        api.agent_config(None, n=0, max_actions=10, temperature=None, seed=0)


def test_a_served_model_browses_free_and_a_local_one_guided() -> None:
    from webqa import api

    assert isinstance(api.browsing_procedure("http://127.0.0.1:1/v1", belmopan_ranker), Free)
    guided = api.browsing_procedure(None, belmopan_ranker)
    assert isinstance(guided, Guided) and guided.ranker is belmopan_ranker
    assert isinstance(api.browsing_procedure(None, None), Guided)  # MiniLM, loaded on use
