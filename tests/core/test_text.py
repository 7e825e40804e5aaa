"""The one sentence splitter (webqa.text): its rules, as the shortlist, the search
index's snippets, the reward models and the answer constraint read them."""

from __future__ import annotations

import time

import pytest

from webqa.text import (
    descriptors,
    keywords,
    last_sentence,
    relation,
    sentence_ends,
    split_sentences,
)


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Dr. Smith met J. Doe. It rained.", ["Dr. Smith met J. Doe.", "It rained."]),
        (
            "T. S. Eliot wrote it in the U.S. and left.",
            ["T. S. Eliot wrote it in the U.S. and left."],
        ),
        (
            "It was 3.5 km away, e.g. near Rome. Then?",
            ["It was 3.5 km away, e.g. near Rome.", "Then?"],
        ),
        # a lowercase word does not start a sentence (where the old splitters disagreed)
        (
            "The name comes from lac (gen. lactis), milk.",
            ["The name comes from lac (gen. lactis), milk."],
        ),
        (
            'He sang "Hello, Dolly!" in 1965. It sold.',
            ['He sang "Hello, Dolly!" in 1965.', "It sold."],
        ),
        # Roman numerals and era marks end sentences; another initial, or a number, keeps them
        ("After World War I. In 1920 it fell.", ["After World War I.", "In 1920 it fell."]),
        ("Around 1500 B.C. These people came.", ["Around 1500 B.C.", "These people came."]),
        ("Founded in A.D. 711 by them. Later.", ["Founded in A.D. 711 by them.", "Later."]),
        ("Officially M. V. Lomonosov University.", ["Officially M. V. Lomonosov University."]),
        (
            "Symphony No. 5 and vol. 2. He said no. Then.",
            ["Symphony No. 5 and vol. 2.", "He said no.", "Then."],
        ),
        (
            "Population: 210,223 (2025 est.) (male 1/female 2)",
            ["Population: 210,223 (2025 est.) (male 1/female 2)"],
        ),
        # citation marks stay with the sentence they follow; lines and list items split
        ("It happened. [2] Then more [3].", ["It happened. [2]", "Then more [3]."]),
        ("- one thing\n2. another\n\nlast line", ["one thing", "another", "last line"]),
        ('She said "Go." Then left.', ['She said "Go."', "Then left."]),
        ("", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_last_sentence_reads_across_line_breaks() -> None:
    assert last_sentence("Paris is the capital. ") == " "
    assert last_sentence("It is the dome\n") == "It is the dome\n"  # "...\n[1]" still cites it
    assert last_sentence("It is 210,223 (2025 est.)\n") == "It is 210,223 (2025 est.)\n"
    assert last_sentence("A. B. Smith won. The U.S. capital") == " The U.S. capital"
    assert last_sentence("It is 3 [1]. That is ") == " That is "


@pytest.mark.parametrize(
    "text", ["a. " * 100_000, "e.g. " * 100_000, ". " * 100_000, "A" * 500_000]
)
def test_splitting_takes_linear_time(text: str) -> None:
    """Untrusted page lines: the old splitter re-read the whole sentence at each period
    that did not end it (a line of 100,000 initials took minutes)."""
    start = time.monotonic()
    split_sentences(text)
    sentence_ends(text)
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize(
    ("question", "asked"),
    [
        ("What is the highest point in Burkina Faso?", "highest point"),
        ("In what year did the author of Les Misérables die?", "year author die"),
        ("Which currency does Max Planck's native country use?", "currency native country use"),
        ("In 1990, who won the Tour de France?", "won"),  # a year is a name
        ("what is the capital of peru?", "capital peru"),  # nothing capitalised: all of it
        ("Who is Ann Smith?", "Ann Smith"),  # nothing but names: all of it
        # what the question says its names are is not asked of them
        (
            "What is the highest point in the home country of the actress Ingrid Bergman?",
            "highest point home country",
        ),
        (
            "What is the internet country code of the communist leader Pol Pot's home country?",
            "internet country code home country",
        ),
    ],
)
def test_relation_is_what_a_question_asks_of_what_it_names(question: str, asked: str) -> None:
    assert relation(question) == keywords(asked)


@pytest.mark.parametrize(
    ("question", "described"),
    [
        (
            "What is the highest point in the home country of the actress Ingrid Bergman?",
            ["actress"],
        ),
        (
            "Which currency does the military commander Jan Žižka's country use?",
            ["military", "commander"],
        ),
        ("What is the capital of Belize?", []),  # "of" stands between
        ("What is the highest point in Burkina Faso?", []),
        ("Where was the poet born?", []),  # no name after it
        ("What did the very old tired grey man Ann Smith write?", []),  # over three words
        ("Who wrote the play Hamlet and the novel Ulysses?", ["play", "novel"]),
        ("What is the capital of peru?", []),  # no names at all
    ],
)
def test_descriptors_are_the_words_set_before_a_name(question: str, described: list[str]) -> None:
    assert descriptors(question) == described
