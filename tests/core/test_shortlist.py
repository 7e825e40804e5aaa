"""The guided shortlist: ranking a page's passages against the question."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from tests.fakes import FakeWeb
from webqa.browser.env import BrowserEnv
from webqa.browser.page import page_from_html, page_from_text
from webqa.procedure import guided_grammar
from webqa.shortlist import Shortlister
from webqa.text import keyword_overlap
from webqa.web.base import Document, SearchResult


def flat(question: str, passages: Sequence[str]) -> list[float]:
    """A ranker with no opinion: only keyword overlap can tell passages apart."""
    return [0.0 for _ in passages]


def test_keyword_overlap_weights_rare_words_and_matches_word_forms() -> None:
    texts = [
        "Exports - commodities: garments, coffee",
        "Imports - commodities: petroleum",
        "Exports - partners: USA",
        "The climate is hot",
        "Commodities are goods",
    ]
    scores = keyword_overlap("Which commodity does it export?", texts)
    assert scores[0] == max(scores) and scores[0] > 0.99  # both keywords, plural forms
    assert scores[2] > scores[1] > 0  # "export" is rarer here than "commodities"
    assert scores[3] == 0
    assert keyword_overlap("what is the", texts) == [0.0] * 5  # stop words only


SECTIONS = (
    "<h1>Guatemala</h1><p>A country in Central America.</p>"
    "<h3>Capital</h3><p>name: Guatemala City</p>"
    "<h3>Exchange rates</h3><p>Currency: quetzales (GTQ) per US dollar -</p>"
    "<p>Exchange rates 2024: 7.759 (2024 est.)</p>"
    "<h3>Climate</h3><p>tropical; hot, humid in lowlands</p>"
)


def test_the_passage_with_the_questions_keywords_ranks_first_and_headings_are_context() -> None:
    page = page_from_html("zim://c/Guatemala", SECTIONS, title="Guatemala", simplify=False)
    ranked = Shortlister("What is the currency of Guatemala?", flat)(page)
    assert ranked is not None
    # a short section is quoted whole, from its heading
    first_line = "Currency: quetzales (GTQ) per US dollar -"
    last = "Exchange rates 2024: 7.759 (2024 est.)"
    assert ranked.starts == [(f"Exchange rates\n{first_line}", last)]
    assert ranked.focus == "Currency: quetzales (GTQ) per US dollar -"  # its first line
    capital = Shortlister("Which city is the capital?", flat)(page, 2)
    assert capital is not None and capital.starts[0] == (
        "Capital\nname: Guatemala City",
        "name: Guatemala City",
    )
    assert ("Capital", "Capital") not in capital.starts  # headings are never passages


def test_plain_text_pages_take_a_short_line_above_as_the_heading() -> None:
    page = page_from_text(
        "file:///t.txt", "Intro line.\nCapital\nname: Belmopan\nMore text here.", "t"
    )
    ranked = Shortlister("Which city is the capital?", flat)(page)
    assert ranked is not None
    # its first line is quoted from the heading it was ranked with, never without it
    assert ranked.starts == [("Capital\nname: Belmopan", "name: Belmopan")]


def test_a_short_section_is_quoted_from_its_heading_even_when_its_lines_repeat_the_heading() -> (
    None
):
    doc = Document("zim://c/Guatemala", "Guatemala", SECTIONS, clean=True)
    env = BrowserEnv(FakeWeb([doc], {"q": [SearchResult("Guatemala", doc.url, "")]}))
    env.reset("What is the currency of Guatemala?")
    env.step("Search q")
    obs = env.step("Clicked on link 0").observation
    ranked = Shortlister(obs.question, flat)(obs.page)
    assert ranked is not None
    guided = guided_grammar(obs, ranked)
    whole = "Exchange rates Currency: quetzales (GTQ) per US dollar - Exchange rates 2024: 7.759"
    assert guided.complete(f"Quote: {whole} (2024 est.)")
    assert not guided.allows("Quote: Exchange rates 2024")  # the last line alone


def test_on_a_long_page_only_the_passages_sharing_keywords_reach_the_ranker() -> None:
    filler = "".join(
        f"<h3>Field {i}</h3><p>Plain words about topic number {i} go here.</p>" for i in range(150)
    )
    html = f"<h1>Mali</h1>{filler}<h3>Capital</h3><p>name: Bamako, on the Niger</p>"
    page = page_from_html("zim://c/Mali", html, title="Mali", simplify=False)
    seen: list[int] = []

    def counting(question: str, passages: Sequence[str]) -> list[float]:
        seen.append(len(passages))
        return [0.0 for _ in passages]

    ranked = Shortlister("What is the capital of Mali?", counting)(page)
    assert ranked is not None and ranked.starts[0][0] == "Capital\nname: Bamako, on the Niger"
    assert seen and max(seen) == Shortlister.PREFILTER  # not all 151 sections
    short = page_from_html("zim://c/M", "<h1>M</h1><p>One line here about it.</p>", title="M")
    seen.clear()
    Shortlister("What is M?", counting)(short)
    assert seen and set(seen) == {1}  # a short page is ranked whole


def test_a_page_is_ranked_once_for_all_the_episodes_stepping_at_once() -> None:
    page = page_from_html("zim://c/Guatemala", SECTIONS, title="Guatemala", simplify=False)
    calls: list[int] = []

    def slow(question: str, passages: Sequence[str]) -> list[float]:
        calls.append(len(passages))
        time.sleep(0.05)  # long enough for the other threads to ask meanwhile
        return [0.0 for _ in passages]

    Shortlister("What is the currency of Guatemala?", slow)(page)
    once = len(calls)
    calls.clear()
    shortlister = Shortlister("What is the currency of Guatemala?", slow)
    with ThreadPoolExecutor(max_workers=4) as pool:
        ranked = list(pool.map(lambda k: shortlister(page, k), [1, 1, 3, 3]))
    assert len(calls) == once  # ranked by one thread; the others waited for it
    assert ranked[0] == ranked[1] and ranked[2] == ranked[3] and ranked[0] is not None


def test_keywords_meet_on_their_stem_not_on_a_shared_prefix() -> None:
    from webqa.text import keywords

    assert keywords("Exports: commodities") == keywords("export commodity")
    assert keywords("He died in 1934") == keywords("dies 1934")
    # names that share their first letters are different words
    for a, b in (("Arabic", "Arabia"), ("Niger", "Nigeria"), ("Austria", "Australia")):
        assert not keywords(a) & keywords(b), (a, b)
    assert keywords("Café") == keywords("cafe")  # accents folded


def test_a_stem_that_begins_another_of_five_letters_or_more_meets_it() -> None:
    from webqa.text import meets

    assert meets({"pakistan", "capit"}, {"pakistani"}) == {"pakistan"}
    assert meets({"india"}, {"indian"}) == {"india"}
    assert meets({"arab"}, {"arabia"}) == set()  # under five letters: no prefix match
    assert meets({"austria"}, {"australia"}) == set()
