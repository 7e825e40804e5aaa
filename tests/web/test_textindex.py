"""The tantivy index: pages a question names by title are found and ranked up."""

from __future__ import annotations

from pathlib import Path

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
