"""The tantivy index: pages a question names by title are found and ranked up."""

from __future__ import annotations

from pathlib import Path

from webqa.text import same_thing
from webqa.web.textindex import IndexDoc, TextIndex, write_index


def test_a_page_the_question_names_is_found_when_its_words_are_outnumbered(
    tmp_path: Path,
) -> None:
    # 150 short pages on large areas in square kilometres fill the body search's
    # passages before the long pages on Austria (1,000 unrelated pages keep those words
    # rare enough to outscore them)
    areas = [
        IndexDoc(f"A/Lake_{i}", f"Lake {i}", f"Lake {i} is large: 5{i} square kilometres.")
        for i in range(150)
    ]
    other = [IndexDoc(f"A/Topic_{i}", f"Topic {i}", f"Words about topic {i}.") for i in range(1000)]
    more = " ".join(f"It has mountains, rivers and towns, number {i}." for i in range(40))
    austria = [
        IndexDoc("A/Austria", "Austria", f"Austria is a country in Central Europe. {more}"),
        IndexDoc(
            "A/Austria_fb", "Austria - The World Factbook", f"Area\ntotal: 83,871 sq km\n{more}"
        ),
    ]
    write_index(tmp_path / "index", [*areas, *other, *austria], zim_uuid="test")
    index = TextIndex(tmp_path / "index")
    # the body search's 100 passages miss both pages on Austria; looked up by their
    # titles, the one whose title and site the question names comes first
    question = "How large is Austria in square kilometres, according to the World Factbook?"
    assert index.search(question, 10)[0].title == "Austria - The World Factbook"


def test_a_page_is_named_by_its_people_as_by_its_name(tmp_path: Path) -> None:
    # "Belgian currency" (a follow-up query a small model writes from "a Belgian
    # cartoonist") names the page "Belgium" as "Belgium currency" would; pages whose
    # body says "Belgian" more often come first without it
    people = [
        IndexDoc(f"A/Painter_{i}", f"Painter {i}", f"Painter {i} was a Belgian painter.")
        for i in range(20)
    ]
    other = [IndexDoc(f"A/Topic_{i}", f"Topic {i}", f"Words about topic {i}.") for i in range(200)]
    pages = [
        IndexDoc("A/Belgium", "Belgium", "Belgium is a country. Currency: euro. " * 30),
        IndexDoc("A/Austria", "Austria", "Austria is a country. Currency: euro. " * 30),
        IndexDoc("A/Australia", "Australia", "Australia is a country. Currency: dollar. " * 30),
    ]
    write_index(tmp_path / "index", [*people, *other, *pages], zim_uuid="test")
    index = TextIndex(tmp_path / "index")
    assert index.search("Belgian currency", 3)[0].title == "Belgium"
    assert index.search("Austrian currency", 3)[0].title == "Austria"  # not Australia
    # a word shares the beginning of a title but is another thing: no gain
    assert index.search("Australian currency", 3)[0].title == "Australia"


def test_same_thing_pairs_a_country_with_its_people_only() -> None:
    for a, b in [("belgium", "belgian"), ("brazil", "brazilian"), ("india", "indian")]:
        assert same_thing(a, b) and same_thing(b, a)
    # "portuguese" is too far from "portugal": a limit of the rule, not a goal
    for a, b in [("austria", "australian"), ("austria", "australia"), ("portugal", "portuguese")]:
        assert not same_thing(a, b), (a, b)
    assert not same_thing("1990s", "1990") and not same_thing("cat", "cats")
