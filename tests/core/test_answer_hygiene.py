"""Answer hygiene (issue 13): the answer shown is the answer alone, one paragraph with its
[n] marks, whatever of its prompt the policy echoes (webqa.tidying.tidy)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import FakePolicy
from webqa.agent import run_question
from webqa.answering import NOTHING_FOUND, format_quotes
from webqa.models.base import GenerationRequest
from webqa.tidying import tidy
from webqa.values import Quote
from webqa.web.zimweb import ZimWeb

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import quality  # noqa: E402

QUESTION = "What is the capital of Poland?"
POLAND = Quote(
    title="Poland - The World Factbook",
    url="zim://webqa/factbook/Poland",
    domain="factbook",
    text="Capital - name: Warsaw. Warsaw is the largest city of Poland and its capital.",
)
VISTULA = Quote("Warsaw", "zim://webqa/A/Warsaw", "wikipedia", "Warsaw lies on the Vistula.")
QUOTES = [POLAND, VISTULA]
ANSWER = "The capital of Poland is Warsaw [1]."
PROMPT_ECHO = f"Question: {QUESTION}\nQuotes:\n{format_quotes(QUOTES)}\nAnswer: {ANSWER}"


@pytest.mark.parametrize(
    ("draft", "answer"),
    [
        (ANSWER, ANSWER),
        ("Warsaw [1].\n\nIt lies on the Vistula [2].", "Warsaw [1]. It lies on the Vistula [2]."),
        ("3.5 million people live in Warsaw [1].", "3.5 million people live in Warsaw [1]."),
        # the shape: the question, a reference list entry, then a label
        (f"{QUESTION}\n[1] Poland - The World Factbook ...\nAnswer: {ANSWER}", ANSWER),
        (PROMPT_ECHO, ANSWER),
        (f"**Answer:** {ANSWER}", ANSWER),
        (f"Question: {QUESTION} Warsaw [1].", "Warsaw [1]."),
        (f"{QUESTION} Warsaw [1].", "Warsaw [1]."),
        (f"{QUESTION.lower()} warsaw [1].", "warsaw [1]."),  # one sentence, as split
        # the answer, then the model goes on to invent the next example
        (f"{ANSWER}\n\nQuestion: What is the capital of Mali?\nAnswer: Bamako [1].", ANSWER),
        (f"{ANSWER}\nSources: [1] Poland - The World Factbook", ANSWER),
        (f"{ANSWER}\nReferences:\n1. Poland - The World Factbook (zim://x)\n2. Warsaw", ANSWER),
        (f"{ANSWER}\n[1] Poland (factbook)\n[2] {VISTULA.url}", ANSWER),
        ("[1] Warsaw is the capital. It is big [2].", "Warsaw is the capital [1]. It is big [2]."),
        ("The exports are:\n- coal [1]\n- copper [2]", "The exports are: coal [1]; copper [2]"),
        # quotes pasted as a list go beside an answer, and are the answer when alone
        (f'{ANSWER}\n- "{POLAND.text[24:]}"\n- "Warsaw lies on the Vistula."', ANSWER),
        (f'- "{POLAND.text[24:]}"\n- "Warsaw lies on the Vistula."',
         f"{POLAND.text[24:-1]} [1]. Warsaw lies on the Vistula [2]."),
        # all echo: nothing is left
        (f"Question: {QUESTION}\nQuotes:\n{format_quotes(QUOTES)}\nAnswer:", ""),
        ("Answer: [1]", ""),
    ],
)  # fmt: skip
def test_tidy_keeps_the_answer_alone(draft: str, answer: str) -> None:
    assert tidy(QUESTION, draft, QUOTES) == answer
    assert quality.hygiene_problems(QUESTION, answer) == []


def test_a_keyword_question_inside_an_answer_sentence_is_no_echo() -> None:
    # a query without an end mark is not a sentence of its own: the answer that
    # contains it is kept (a question with one is dropped wherever it appears)
    assert tidy("capital of Poland", ANSWER, QUOTES) == ANSWER
    assert tidy("capital of Poland", "Capital of Poland.\nWarsaw [1].", QUOTES) == "Warsaw [1]."


# -- any draft at all ------------------------------------------------------------------

questions = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(st.sampled_from("what is the capital of Poland who when Warsaw".split()), min_size=1,
             max_size=8),
    st.sampled_from(["?", ".", "!", "?\"", "? Give the year."]),
)  # fmt: skip
PROMPT_LINES = [
    ANSWER,
    "Warsaw [1]",
    "Answer:",
    "**Answer:**",
    "Question:",
    "Quotes:",
    "## Sources:",
    "[1]",
    "[1][2]",
    "[1] Poland - The World Factbook (factbook): Capital - name: Warsaw",
    "- Poland - The World Factbook (zim://webqa/factbook/Poland)",
    f'- "{POLAND.text}"',
    f'1. "{VISTULA.text}" [2]',
    f'"{VISTULA.text}"',
    "   ",
    "",
]
lines = st.one_of(
    st.sampled_from(PROMPT_LINES),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.text(alphabet="[]12 :-*\"'?.\n\r\x0b\x1c\u2028Answer", max_size=30),
)


@settings(max_examples=400, deadline=2000)
@given(question=questions, data=st.data())
def test_no_draft_leaves_an_echo(question: str, data: st.DataObject) -> None:
    echoes = st.sampled_from([question, question.upper(), f"{question} Warsaw [1]."])
    pieces = data.draw(st.lists(st.one_of(lines, echoes), max_size=12))
    joins = st.sampled_from(["\n", " ", "", "\n\n", "\r\n", "\u2028"])
    separators = data.draw(st.lists(joins, min_size=len(pieces), max_size=len(pieces)))
    draft = "".join(p + s for p, s in zip(pieces, separators, strict=True))
    answer = tidy(question, draft, QUOTES)
    assert quality.hygiene_problems(question, answer) == []
    assert len(answer.splitlines()) <= 1 and answer == answer.strip()


ECHOES = [line for line in PROMPT_LINES if "Answer" not in line and "Warsaw [1]" not in line]


@settings(max_examples=200, deadline=2000)
@given(question=questions, echo=st.lists(st.sampled_from(ECHOES), max_size=6))
def test_the_answer_after_its_label_survives_any_echo_before_it(
    question: str, echo: list[str]
) -> None:
    draft = "\n".join([question, *echo, f"Answer: {ANSWER}"])
    assert tidy(question, draft, QUOTES) == ANSWER


# -- through the real agent, on a real ZIM ----------------------------------------------

BROWSE = (
    "Search Burkina Faso capital",
    "Clicked on link 0",
    "Quote: Its capital is Ouagadougou.",
    "End: Answer",
)
SAID = "The capital of Burkina Faso is Ouagadougou [1]."


def echoing_policy(echo: str) -> FakePolicy:
    """Browses ``BROWSE``; its answer echoes the answer prompt it was sent: the whole
    prompt ("prompt"), or its question, quote lines and an "Answer:" line ("lines"), then
    ``SAID`` ("nothing": the prompt alone)."""

    def reply(request: GenerationRequest) -> str:
        chat = request.chat
        if chat[0].content.startswith("You answer questions by browsing"):
            return BROWSE[(request.seed or 0) % 1000]
        prompt = chat[-1].content
        if echo == "lines":
            question = prompt.split("Question: ", 1)[1].split("\n", 1)[0]
            quoted = prompt.split("Quotes:\n", 1)[1].split("\nAnswer:", 1)[0]
            return f"{question}\n{quoted}\nAnswer: {SAID}"
        return prompt if echo == "nothing" else f"{prompt} {SAID}"

    return FakePolicy(reply, name="echo")


@pytest.mark.parametrize("echo", ["prompt", "lines"])
def test_an_echoing_policy_answers_with_the_answer_alone(zim: Path, echo: str) -> None:
    policy = echoing_policy(echo)
    result = run_question(
        "What is the capital of Burkina Faso?", policy=policy, web=ZimWeb(zim), reward=None
    )
    # it did echo: the question and the numbered quote were in its draft
    draft_prompt = policy.requests[-1].chat[-1].content
    assert "[1] Burkina Faso (" in draft_prompt
    assert result.answer == SAID
    assert [r.extract for r in result.references] == ["Its capital is Ouagadougou."]


def test_a_draft_that_is_all_echo_declines(zim: Path) -> None:
    result = run_question(
        "What is the capital of Burkina Faso?",
        policy=echoing_policy("nothing"),
        web=ZimWeb(zim),
        reward=None,
    )
    assert result.answer == NOTHING_FOUND
