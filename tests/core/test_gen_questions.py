"""benchmarks/gen_questions.py: question sets made from a corpus, checked against its ZIM.

A tiny corpus of handwritten records is built into a real ZIM; the generator's questions
are checked the way a grader would use them (gold in the evidence, evidence on the page
the browser renders), and its templates' parsing on single records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from webqa.browser.page import page_from_document
from webqa.web.corpus import FactbookCountry, WikiSummary, build_corpus, build_from_folder
from webqa.web.zimweb import ZimWeb

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import gen_questions as gq  # noqa: E402
from quality import norm  # noqa: E402


def person(title: str, description: str, extract: str) -> WikiSummary:
    return WikiSummary(title, extract, description, "People")


WIKI = [
    person("Edvard Munch", "Norwegian painter (1863–1944)", "Edvard Munch was a painter."),
    person("Knut Hamsun", "Norwegian novelist (1859–1952)", "Knut Hamsun was a writer."),
    person("Gabriela Mistral", "Chilean poet (1889–1957)", "Gabriela Mistral was a poet."),
    person("Violeta Parra", "Chilean singer (1917–1967)", "Violeta Parra was a singer."),
    WikiSummary("Oslo", "Oslo is the capital and most populous city of Norway."),
    WikiSummary("Valparaíso", "Valparaíso is a port city in Chile. It has many hills."),
    WikiSummary("The Scream", "The Scream is a painting by the Norwegian artist Edvard Munch."),
    WikiSummary("Chile", "Chile is a country in South America."),
    WikiSummary("Norway", "Norway is a country in Northern Europe."),
]


def country(code: str, name: str, adjective: str, capital: str, currency: str, **more: str):
    gov = {
        "Country name": {"conventional short form": {"text": name}},
        "Capital": {"name": {"text": capital}},
        "Independence": {"text": more.get("independence", "")},
    }
    return FactbookCountry(
        code,
        {
            "Geography": {"Elevation": {"highest point": {"text": more["highest"]}}},
            "People and Society": {"Nationality": {"adjective": {"text": adjective}}},
            "Government": gov,
            "Economy": {"Exchange rates": {"Currency": {"text": currency}}},
            "Communications": {"Internet country code": {"text": more["tld"]}},
        },
    )


FACTBOOK = [
    country(
        "no",
        "Norway",
        "Norwegian",
        "Oslo",
        "Norwegian kroner (NOK) per US dollar -",
        highest="Galdhopiggen 2,469 m",
        tld=".no",
        independence="7 June 1905 (declared the union with Sweden dissolved)",
    ),
    country(
        "ci",
        "Chile",
        "Chilean",
        "Santiago",
        "Chilean pesos (CLP) per US dollar -",
        highest="Nevado Ojos del Salado 6,893 m",
        tld=".cl",
        independence="18 September 1810 (from Spain)",
    ),
]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> ZimWeb:
    out = tmp_path_factory.mktemp("gen") / "tiny.zim"
    build_corpus(out, WIKI, FACTBOOK)
    return ZimWeb(out)


@pytest.fixture(scope="module")
def table(web: ZimWeb) -> list[dict]:
    return gq.generate_corpus(WIKI, FACTBOOK, web, per_entity=20)


def rendered(web: ZimWeb, title: str) -> str:
    """A page's text as the browser shows it, found by title through search."""
    hit = next(r for r in web.search(title, 20) if r.title == title)
    return norm(page_from_document(web.fetch(hit.url)).plain)


def test_answerable_questions_hold_their_answer_on_the_page_the_browser_shows(
    table: list[dict], web: ZimWeb
) -> None:
    answerable = [r for r in table if r["answerable"]]
    assert answerable
    for row in answerable:
        assert norm(row["answers"][0]) in norm(row["evidence"]), row
        assert norm(row["evidence"]) in rendered(web, row["sources"][-1]["title"]), row
        for gold in row["answers"]:
            assert norm(gold) not in norm(row["question"]), row


def test_rows_have_the_dev_schema_with_kind_and_split(table: list[dict]) -> None:
    keys = {"id", "question", "answers", "answerable", "sources", "evidence", "kind", "split"}
    assert {r["kind"] for r in table} == {"wiki", "factbook", "two_hop", "unanswerable"}
    for row in table:
        assert set(row) == keys
        assert row["split"] in ("dev", "heldout")
        assert all(set(s) == {"corpus", "title"} for s in row["sources"])
        if not row["answerable"]:
            assert row["answers"] == []
    assert len({r["id"] for r in table}) == len(table)


def test_two_hop_questions_name_both_pages_in_hop_order(table: list[dict]) -> None:
    hops = {r["question"]: r for r in table if r["kind"] == "two_hop"}
    place = next(r for q, r in hops.items() if "Valparaíso" in q and "currency" in q)
    assert [s["title"] for s in place["sources"]] == ["Valparaíso", "Chile - The World Factbook"]
    assert place["answers"][:2] == ["Chilean peso", "CLP"]
    painter = [r for q, r in hops.items() if "The Scream" in q]
    assert painter and all(r["sources"][1]["title"] == "Edvard Munch" for r in painter)


def test_facts_of_single_pages(table: list[dict]) -> None:
    by_gold = {(r["kind"], r["answers"][0]): r for r in table if r["answerable"]}
    assert ("wiki", "1863") in by_gold or ("wiki", "1944") in by_gold
    assert ("factbook", "Santiago") in by_gold  # Chile's capital, from its Factbook page
    assert ("wiki", "Oslo") in by_gold  # "Oslo is the capital ... of Norway."
    # Norway's independence text has no "(from ...)": no independence question for it
    assert not any("Norway" in r["question"] and "independen" in r["question"] for r in table)


def test_unanswerable_questions_ask_what_no_page_states(table: list[dict]) -> None:
    questions = [r["question"] for r in table if r["kind"] == "unanswerable"]
    assert any("Edvard Hamsun" in q or "Knut Munch" in q for q in questions)  # made up
    assert any("national anthem of Chile" in q for q in questions)  # a field Chile lacks
    assert any("Nobel" in q or "World Cup" in q or "Olympics" in q for q in questions)


def test_generation_is_deterministic_and_splits_forty_percent_per_kind(
    table: list[dict], web: ZimWeb
) -> None:
    assert gq.generate_corpus(WIKI, FACTBOOK, web, per_entity=20) == table
    for kind in {r["kind"] for r in table}:
        rows = [r for r in table if r["kind"] == kind]
        assert sum(r["split"] == "dev" for r in rows) == round(len(rows) * 0.4)


def test_split_ids_is_a_fixed_share_whatever_the_order() -> None:
    ids = [f"q{i}" for i in range(50)]
    split = gq.split_ids(ids)
    assert sum(v == "dev" for v in split.values()) == 20
    assert gq.split_ids(reversed(ids)) == split


def test_problem_finds_what_would_make_a_question_ungradable(web: ZimWeb) -> None:
    source = [("factbook", "Chile - The World Factbook", "factbook/Chile")]
    good = gq.Candidate(
        "factbook", "capital", "k", "What is the capital of Chile?", ["Santiago"], source,
        "Capital\nname: Santiago",
    )  # fmt: skip
    pages = gq.Pages(web)
    assert gq.problem(good, pages) is None
    moved = gq.Candidate(**{**good.__dict__, "evidence": "Capital\nname: Santiago de Chile"})
    assert gq.problem(moved, pages) == "evidence not on the page"
    other = gq.Candidate(**{**good.__dict__, "answers": ["Valparaíso"]})
    assert gq.problem(other, pages) == "gold not in the evidence"
    echo = gq.Candidate(**{**good.__dict__, "question": "Is Santiago the capital of Chile?"})
    assert gq.problem(echo, pages) == "gold 'Santiago' is in the question"
    loose = gq.Candidate(**{**good.__dict__, "answers": ["36"], "evidence": "36"})
    assert gq.problem(loose, pages) == "gold '36' too loose to grade"
    absent = gq.Candidate(**{**good.__dict__, "answers": ["Santiago"], "evidence": "Santiago"})
    absent.answerable = False
    assert gq.problem(absent, pages) == "an unanswerable question with answers"


@pytest.mark.parametrize(
    ("gold", "is_loose"),
    [("0", True), ("36", True), ("us", True), ("None", True), ("''", True), ("the", True),
     ("1907", False), ("-1", False), (".cl", False), ("Santiago", False)],
)  # fmt: skip
def test_loose_golds_would_match_unrelated_answers(gold: str, is_loose: bool) -> None:
    assert gq.loose(gold) is is_loose


def test_parse_person_reads_years_nationality_and_occupation() -> None:
    demonyms = {"Norwegian": object()}
    munch = gq.parse_person(WIKI[0], "wiki/Edvard_Munch", demonyms)  # type: ignore[arg-type]
    assert munch is not None
    assert (munch.born, munch.died, munch.demonym, munch.occupation) == (
        "1863",
        "1944",
        "Norwegian",
        "painter",
    )
    living = gq.parse_person(person("A B", "Norwegian skier (born 1990)", "x"), "p", demonyms)  # type: ignore[arg-type]
    assert living is not None and (living.born, living.died) == ("1990", "")
    band = person("The Xs", "Norwegian rock band (1990–2001)", "x")
    assert gq.parse_person(band, "p", demonyms) is None  # type: ignore[arg-type]
    assert gq.parse_person(WIKI[4], "p", demonyms) is None  # type: ignore[arg-type]


def test_currency_and_independence_golds_cover_the_usual_answers() -> None:
    rates = {"Currency": {"text": "Swedish kronor (SEK) per US dollar -"}}
    sweden = gq.Country("Sweden", [], "", "", {"Economy": {"Exchange rates": rates}})
    currency = gq.fact_currency(sweden)
    assert currency is not None
    assert currency.answers == ["Swedish kronor", "Swedish krona", "SEK", "krona"]
    assert currency.evidence == "Exchange rates\nCurrency: Swedish kronor (SEK) per US dollar -"
    independence_text = {"Independence": {"text": "6 March 1957 (from the UK)"}}
    ghana = gq.Country("Ghana", [], "", "", {"Government": independence_text})
    independence = gq.fact_independence_from(ghana)
    assert independence is not None
    assert independence.answers == ["the UK", "United Kingdom", "Britain"]


SPHINX = """<html><head><meta charset="utf-8">
<title>spam — Frying things — Python 3.11.2 documentation</title></head>
<body><div role="main"><section id="module-spam">
<h1><code>spam</code> — Frying things<a class="headerlink" href="#module-spam">¶</a></h1>
<div class="versionadded"><p><span class="versionmodified added">New in version 3.4.</span></p>
</div>
<dl class="py function"><dt class="sig sig-object py" id="spam.fry">
<span class="sig-prename descclassname"><span class="pre">spam.</span></span><span
class="sig-name descname"><span class="pre">fry</span></span><span class="sig-paren">(</span><em
class="sig-param"><span class="n"><span class="pre">pan</span></span></em>, <em
class="sig-param"><span class="n"><span class="pre">oil</span></span><span class="o"><span
class="pre">=</span></span><span class="default_value"><span class="pre">'olive'</span></span></em
><span class="sig-paren">)</span><a class="headerlink" href="#spam.fry">¶</a></dt>
<dd><p>Fry the contents of pan.</p><div class="versionadded"><p><span
class="versionmodified added">New in version 3.6.</span></p></div></dd></dl>
<dl class="py function"><dt class="sig sig-object py" id="spam.boil">
<span class="sig-prename descclassname"><span class="pre">spam.</span></span><span
class="sig-name descname"><span class="pre">boil</span></span><span class="sig-paren">(</span><em
class="sig-param"><span class="n"><span class="pre">pot</span></span></em>, <em
class="sig-param"><span class="n"><span class="pre">salt</span></span><span class="o"><span
class="pre">=</span></span><span class="default_value"><span class="pre">2.5</span></span></em
><span class="sig-paren">)</span><a class="headerlink" href="#spam.boil">¶</a></dt>
<dd><p>Boil the contents of pot.</p></dd></dl>
</section></div></body></html>
"""


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ZimWeb]:
    root = tmp_path_factory.mktemp("html")
    (root / "library").mkdir()
    (root / "library" / "spam.html").write_text(SPHINX, encoding="utf-8")
    (root / "library" / "empty.html").write_text("", encoding="utf-8")  # skipped, said so
    zim = build_from_folder(root, tmp_path_factory.mktemp("zim") / "docs.zim")
    return root, ZimWeb(zim)


def test_parse_docs_reads_signatures_versions_and_module_titles(
    docs_site: tuple[Path, ZimWeb],
) -> None:
    said: list[str] = []
    docs = gq.parse_docs(docs_site[0], progress=said.append)
    assert said[0] == "skipped library/empty.html: Document is empty"
    fry = next(o for o in docs.objects if o.name == "spam.fry")
    assert fry.params == {"pan": None, "oil": "'olive'"}
    assert fry.added == "3.6"
    assert fry.signature == "spam.fry(pan, oil='olive')"
    assert [(m.name, m.description, m.added) for m in docs.modules] == [
        ("spam", "Frying things", "3.4")
    ]


def test_pydocs_questions_are_checked_against_the_built_zim(
    docs_site: tuple[Path, ZimWeb],
) -> None:
    root, web = docs_site
    table = gq.generate_pydocs(gq.parse_docs(root), web)
    by_kind: dict[str, list[dict]] = {}
    for row in table:
        by_kind.setdefault(row["kind"], []).append(row)
    (default,) = [r for r in by_kind["default"] if "spam.fry()" in r["question"]]
    assert " oil " in default["question"] and default["answers"] == ["'olive'", "olive"]
    assert default["sources"] == [
        {"corpus": "pydocs", "title": "spam — Frying things — Python 3.11.2 documentation"}
    ]
    assert {r["answers"][0] for r in by_kind["version"]} == {"3.6", "3.4"}
    assert by_kind["module"][0]["answers"] == ["spam"]
    unanswerable = [r["question"] for r in by_kind["unanswerable"]]
    assert "What is the default value of the salt parameter of spam.fry()?" in unanswerable
    assert any("itertools.batched()" in q for q in unanswerable)  # not in these docs
    for row in table:
        if row["answerable"]:
            assert norm(row["answers"][0]) in norm(row["evidence"])


def test_the_command_line_says_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gq.main(["pydocs", str(tmp_path), "--zim", str(tmp_path / "x.zim")]) == 1
    assert (
        capsys.readouterr().err.strip().endswith("not the python3.11-doc html folder (no library/)")
    )
    (tmp_path / "library").mkdir()
    assert gq.main(["pydocs", str(tmp_path), "--zim", str(tmp_path / "x.zim")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("gen_questions: ") and "x.zim" in err and "\n" not in err


def test_written_sets_hold_each_split(tmp_path: Path, table: list[dict]) -> None:
    counts = gq.write_sets("tiny", table, tmp_path)
    dev = [json.loads(line) for line in (tmp_path / "tiny_dev.jsonl").read_text().splitlines()]
    held = (tmp_path / "tiny_heldout.jsonl").read_text().splitlines()
    assert len(dev) + len(held) == len(table)
    assert all(r["split"] == "dev" for r in dev)
    assert sum(c["dev"] for c in counts.values()) == len(dev)
