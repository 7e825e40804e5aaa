from __future__ import annotations

from webqa.answering import (
    cited_numbers,
    clean_citations,
    cleaned,
    format_quotes,
    recite,
    references,
    states_answer,
)
from webqa.text import strip_think as strip_thinking
from webqa.values import Quote

QUOTES = [
    Quote("Burkina Faso", "zim://c/wiki/Burkina_Faso", "c", "Its capital is Ouagadougou."),
    Quote("Mali", "zim://c/wiki/Mali", "c", "Its capital is Bamako."),
]


def test_citations_to_missing_quotes_are_removed_and_counted() -> None:
    text, removed = clean_citations("The capital is Ouagadougou [1][3]. Bamako [7], too [2].", 2)
    assert text == "The capital is Ouagadougou [1]. Bamako, too [2]."
    assert removed == 2


def test_valid_citations_are_kept_untouched() -> None:
    assert clean_citations("A [1]. B [2].", 2) == ("A [1]. B [2].", 0)


def test_cited_numbers_in_first_use_order() -> None:
    assert cited_numbers("x [2] y [1] z [2] [10]") == [2, 1, 10]


def test_think_blocks_are_stripped() -> None:
    assert strip_thinking("<think>hmm\nlong</think>\nParis [1].") == "Paris [1]."
    assert strip_thinking("<THINK>unfinished reasoning") == ""
    assert strip_thinking("reasoning the template opened</think> Paris [1].") == "Paris [1]."
    assert strip_thinking("no tags [1]") == "no tags [1]"


def test_references_come_from_recorded_quotes_only() -> None:
    refs = references(QUOTES)
    assert [(r.n, r.title, r.url, r.extract) for r in refs] == [
        (1, "Burkina Faso", "zim://c/wiki/Burkina_Faso", "Its capital is Ouagadougou."),
        (2, "Mali", "zim://c/wiki/Mali", "Its capital is Bamako."),
    ]


def test_format_quotes_numbers_and_truncates() -> None:
    long = Quote("T", "u", "d", "x" * 50)
    assert format_quotes(QUOTES[:1]) == "[1] Burkina Faso (c): Its capital is Ouagadougou."
    assert format_quotes([long], max_chars=10) == "[1] T (d): xxxxxxxxxx…"


def test_cited_claims_let_a_citation_open_only_after_something_quoted() -> None:
    from webqa.answering import CitedClaims

    quotes = [Quote("Samoa", "https://x.org/ws", "", "Population total: 210,223 (2025 est.)")]
    rule = CitedClaims("What is the estimated 2025 population of Samoa?", quotes)
    assert rule.multiline
    assert not rule.allows("The estimated 2025 population of Samoa is [")  # only the question
    assert not rule.allows("Samoa has about a million people [")  # nothing the quote says
    assert rule.allows("The estimated 2025 population of Samoa is 210,223 [1][")
    assert rule.allows("It is 210,223 (2025 est.)\n[1].")  # a line break is not a sentence end
    assert not rule.allows("It is 210,223 [1]. That is [")  # each sentence on its own
    assert rule.complete("I could not find it in the quotes.")  # declining needs no citation


def test_a_quote_says_its_page_title_but_not_the_site_name() -> None:
    from webqa.answering import CitedClaims, ungrounded

    bratislava = [
        Quote("Bratislava", "zim://c/wiki/B", "c", "Capital and largest city of Slovakia")
    ]
    question = "Which city is the capital of Slovakia?"
    # the page is about its title: naming it is grounded, in the check and while decoding
    assert not ungrounded(question, "The capital of Slovakia is Bratislava [1].", bratislava)
    assert CitedClaims(question, bratislava).allows("It is Bratislava [")
    assert ungrounded(question, "The capital of Slovakia is Kosice [1].", bratislava)
    # a site's name after the title is not something the page says
    factbook = [Quote("Chad - The World Factbook", "zim://c/fb/Chad", "c", "Independence")]
    assert ungrounded("When did Chad become independent?", "The World Factbook [1].", factbook)


def test_the_names_a_question_gives_must_be_named_by_its_quotes() -> None:
    from webqa.text import unnamed

    hanyu = [Quote("Yuzuru Hanyu", "zim://c/wiki/Y", "c", "Japanese figure skater (born 1994)")]
    asked = "When was the Japanese figure skater Yuzuru Kurosawa born? Give the year."
    assert unnamed(asked, hanyu) == ["Kurosawa"]  # "Give" starts its sentence
    assert unnamed("When was Yuzuru Hanyu born?", hanyu) == []  # named by the title
    # names in word forms the quote uses, acronyms, and the site a title names
    fb = [Quote("Peru - The World Factbook", "zim://c/fb/Peru", "c", "Peruvian DNA studies")]
    assert unnamed("What does the World Factbook say of Peruvian DNA in Peru?", fb) == []
    assert unnamed("WHEN WAS YUZURU KUROSAWA BORN?", hanyu) == []  # all capitals: no names


def test_a_year_the_question_gives_is_a_name_its_quotes_must_say() -> None:
    from webqa.text import names, unnamed

    prize = [Quote("Nobel Prize in Physics", "u", "c", "The 1921 prize went to Albert Einstein.")]
    assert names("Who won the 2035 Nobel Prize in Physics?") == [
        "2035",
        "Nobel",
        "Prize",
        "Physics",
    ]
    assert unnamed("Who won the 2035 Nobel Prize in Physics?", prize) == ["2035"]
    assert unnamed("Who won the 1921 Nobel Prize in Physics?", prize) == []
    assert unnamed("2035: WHO WON THE NOBEL PRIZE?", prize) == ["2035"]  # a year, in capitals too
    # other numbers are not names: a quantity may be said in other words
    assert names("Which 3 rivers cross Paris, and what is 12,000 km?") == ["Paris"]


def test_a_country_and_its_people_are_one_name_to_the_grounding_check() -> None:
    from webqa.answering import ungrounded
    from webqa.text import unnamed

    quote = [Quote("Islamabad", "zim://c/I", "c", "administered by the Pakistani government")]
    question = "Islamabad is the capital of which country?"
    assert not ungrounded(question, "Islamabad is the capital of Pakistan [1].", quote)
    assert unnamed("What is the capital of Pakistan?", quote) == []
    # but two countries that share their first letters are not one
    niger = [Quote("Niger", "zim://c/N", "c", "Niamey is the capital.")]
    assert unnamed("What is the capital of Austria?", [Quote("Australia", "u", "c", "")])
    assert not unnamed("What is the capital of Niger?", niger)


def test_a_draft_answers_as_the_user_would_see_it() -> None:
    question = "What is the capital of Burkina Faso?"
    quotes = QUOTES[:1]
    assert states_answer(question, "The capital of Burkina Faso is Ouagadougou [1].", quotes)
    # a decline, a bare citation, a made-up city, quotes about another country: no
    for draft in (
        "I could not find the capital [1].",
        "The capital of Burkina Faso is [1].",
        "The capital of Burkina Faso is Bobo-Dioulasso [1].",
    ):
        assert not states_answer(question, draft, quotes), draft
    assert not states_answer(question, "It is Bamako [1].", QUOTES[1:])
    # what echoes the prompt is read past: the question and the quotes pasted back as
    # a reference list say nothing; the answer after them still answers
    echo = f"Question: {question}\nQuotes:\n[1] Burkina Faso (c): Its capital is Ouagadougou."
    assert not states_answer(question, echo, quotes)
    assert states_answer(question, f"{echo}\nAnswer: It is Ouagadougou [1].", quotes)


COMMANDER = Quote(
    "Jan Zizka", "zim://c/wiki/Jan_Zizka", "c", "Jan Zizka was a Czech military leader."
)
CZECHIA = Quote("Czechia", "zim://c/fb/Czechia", "c", "Elevation: highest point: Snezka 1,602 m")
ZIZKA = "What is the highest point in the home country of Jan Zizka?"


def test_a_sentence_citing_a_quote_that_does_not_say_it_cites_the_one_that_does() -> None:
    wrong = "The highest point is Snezka 1,602 m [1]."
    assert recite(ZIZKA, wrong, [COMMANDER, CZECHIA]) == "The highest point is Snezka 1,602 m [2]."
    # the answer a user sees is cited so, and counts as an answer, not a decline
    assert cleaned(ZIZKA, wrong, [COMMANDER, CZECHIA])[0].endswith("[2].")
    assert states_answer(ZIZKA, wrong, [COMMANDER, CZECHIA])
    # several marks become the one quote's; a sentence whose citation says it is kept
    two = "Zizka was Czech [1]. It is Snezka [1] [1]. It is Snezka [2]."
    assert recite(ZIZKA, two, [COMMANDER, CZECHIA]) == (
        "Zizka was Czech [1]. It is Snezka [2]. It is Snezka [2]."
    )


def test_citations_are_left_where_no_quote_says_the_sentence_or_nothing_is_cited() -> None:
    for answer in ("It is Mount Olympus [1].", "It is Snezka.", "It is [2].", ""):
        assert recite(ZIZKA, answer, [COMMANDER, CZECHIA]) == answer
    assert recite(ZIZKA, "It is Snezka [1].", [COMMANDER]) == "It is Snezka [1]."  # one quote
    assert not states_answer(ZIZKA, "It is Mount Olympus [1].", [COMMANDER, CZECHIA])
