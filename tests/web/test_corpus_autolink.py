"""Auto-linking: which mentions of a title become links, and how they are written."""

from __future__ import annotations

import pytest

from webqa.web.autolink import Linker, common_words, href, linkable, quote_path

TARGETS = {
    "Mexico": "wiki/Mexico",
    "Mexico City": "wiki/Mexico_City",
    "New Mexico": "wiki/New_Mexico",
    "Carmen": "wiki/Carmen",
    "Music": "wiki/Music",
    "Periodic table": "wiki/Periodic_table",
    "DNA": "wiki/DNA",
    "Ant": "wiki/Ant",
    "0": "wiki/0",
    "AT&T": "wiki/AT&T",
    "Spain": "factbook/Spain",
}


def link(text: str, source: str = "wiki/Page", **kwargs: object) -> str:
    return Linker(TARGETS, **kwargs).link_text(text, source=source, linked=set())  # type: ignore[arg-type]


def test_longest_title_wins() -> None:
    assert link("He moved to Mexico City.") == (
        'He moved to <a href="Mexico_City">Mexico City</a>.'
    )
    assert link("Born in New Mexico, not Mexico.") == (
        'Born in <a href="New_Mexico">New Mexico</a>, not <a href="Mexico">Mexico</a>.'
    )


def test_word_boundaries_and_case() -> None:
    assert link("Mexicans and mexico") == "Mexicans and mexico"
    assert link("the periodic table") == 'the <a href="Periodic_table">periodic table</a>'
    assert link("the periodic Table") == "the periodic Table"


def test_each_target_once_and_never_itself() -> None:
    assert link("in Mexico and in Mexico") == 'in <a href="Mexico">Mexico</a> and in Mexico'
    assert link("in Mexico", source="wiki/Mexico") == "in Mexico"
    linked = {"wiki/Mexico"}
    assert Linker(TARGETS).link_text("in Mexico", source="x", linked=linked) == "in Mexico"


def test_short_titles_only_as_acronyms() -> None:
    assert link("the Ant saw DNA and 0 of it") == ('the Ant saw <a href="DNA">DNA</a> and 0 of it')
    assert [t for t in TARGETS if linkable(t)] == [
        "Mexico", "Mexico City", "New Mexico", "Carmen", "Music", "Periodic table", "DNA",
        "AT&T", "Spain",
    ]  # fmt: skip


def test_one_word_titles_not_at_sentence_start_nor_inside_names() -> None:
    assert link("Music is old. I like Music.") == 'Music is old. I like <a href="Music">Music</a>.'
    assert link("Magdalena Carmen Frida was here") == "Magdalena Carmen Frida was here"
    assert link("In Spain, people") == "In Spain, people"  # "In" might be a name
    common = frozenset({"in"})  # ... unless the corpus uses it as a common word
    assert link("In Spain, people", common_words=common) == (
        'In <a href="../factbook/Spain">Spain</a>, people'
    )


def test_common_words_are_not_linked_alone() -> None:
    common = common_words(["music is everywhere, music music"])
    assert common == frozenset({"music"})
    assert link("I like Music.", common_words=common) == "I like Music."


def test_text_is_escaped_and_odd_titles_linked() -> None:
    assert link("AT&T <b> sells") == '<a href="AT&amp;T">AT&amp;T</a> &lt;b&gt; sells'


def test_link_html_skips_tags_and_existing_links() -> None:
    linker = Linker(TARGETS)
    fragment = '<a href="x">Mexico</a> then <em title="Spain">Spain</em> &amp; more'
    assert linker.link_html(fragment, source="factbook/Mexico", linked=set()) == (
        '<a href="x">Mexico</a> then <em title="Spain"><a href="Spain">Spain</a></em> &amp; more'
    )


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("wiki/A", "wiki/B", "B"),
        ("wiki/A", "factbook/B", "../factbook/B"),
        ("index", "factbook/B", "factbook/B"),
        ("wiki/A", "wiki/HIV/AIDS", "HIV/AIDS"),
        ("wiki/HIV/AIDS", "wiki/B", "../B"),
        ("wiki/A", "wiki/100%_Who?#", "100%25_Who%3F%23"),
    ],
)
def test_href_is_relative_and_quoted(source: str, target: str, expected: str) -> None:
    assert href(source, target) == expected


def test_quote_path_keeps_letters_readable() -> None:
    assert quote_path("wiki/Galápagos_Islands") == "wiki/Galápagos_Islands"
    assert quote_path('a b"c<d>') == "a%20b%22c%3Cd%3E"
