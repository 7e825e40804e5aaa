"""The corpus builder and ZimWeb on a tiny corpus made of handwritten records."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from libzim.reader import Archive

from tests.fakes import FakeCorpusSources
from webqa.errors import CorpusError, FetchError
from webqa.web import corpus, zimwrite
from webqa.web.base import Document, SearchResult, Web
from webqa.web.corpus import FactbookCountry, WikiSummary, build_corpus, factbook_names
from webqa.web.zimweb import ZimWeb, open_default_corpus, resolve_link

WIKI = [
    WikiSummary("Mexico", "Mexico is a country in North America.", "Country in North America"),
    WikiSummary("Mexico City", "Mexico City is the capital and largest city of Mexico."),
    WikiSummary(
        "Frida Kahlo",
        "Magdalena Carmen Frida Kahlo y Calderón was a Mexican painter. She lived in "
        "Mexico City all her life.\nMexico shaped her art, and she painted Mexico often.",
        "Mexican painter (1907–1954)",
    ),
    WikiSummary("Carmen", "Carmen is an opera by Georges Bizet.", "Opera"),
    WikiSummary(
        "Penicillin",
        "Penicillins are antibiotics. Penicillin was discovered in 1928 by the Scottish "
        "scientist Alexander Fleming.",
    ),
    WikiSummary(
        "Alexander Fleming",
        "Sir Alexander Fleming was a Scottish physician, best known for discovering the "
        "first broadly effective antibiotic, which he named penicillin.",
        "Scottish physician and microbiologist",
    ),
    WikiSummary("Noble gas", "The noble gases are odorless, colorless gases."),
    WikiSummary("Helium", "Helium is a noble gas. Its boiling point is the lowest of all."),
    WikiSummary("Burkina Faso", "Burkina Faso is a landlocked country in West Africa."),
    WikiSummary("Ouagadougou", "Ouagadougou is the capital of Burkina Faso.", "Capital city"),
]


def _name(short: str, long: str = "none") -> dict[str, object]:
    return {
        "Country name": {
            "conventional long form": {"text": long},
            "conventional short form": {"text": short},
        }
    }


MEXICO = FactbookCountry(
    "mx",
    {
        "Introduction": {"Background": {"text": "<p>Mexico was colonized by Spain.</p>"}},
        "Geography": {
            "Area": {
                "total ": {"text": "1,964,375 sq km"},
                "note": "<strong>note:</strong> includes islands",
            },
            "Land use": {"agricultural land: arable land": {"text": "arable land: 11.8%"}},
            "Climate": {"text": "varies from tropical to desert"},
        },
        "Government": {
            **_name("Mexico", "United Mexican States"),
            "Capital": {"name": {"text": "Mexico City"}},
        },
    },
)
BURKINA = FactbookCountry(
    "uv",
    {
        "Geography": {"Elevation": {"highest point": {"text": "Tena Kourou 749 m"}}},
        "Government": {**_name("Burkina Faso"), "Capital": {"name": {"text": "Ouagadougou"}}},
    },
)
EUROPEAN_UNION = FactbookCountry(
    "ee",
    {"Introduction": {"Background": {"text": "A union of European states."}}},
    ("ee", "european_union"),
)
FACTBOOK = [MEXICO, BURKINA, EUROPEAN_UNION]


@pytest.fixture(scope="module")
def zim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "fx.zim"
    build_corpus(out, WIKI, FACTBOOK)
    return out


@pytest.fixture
def web(zim: Path) -> ZimWeb:
    return ZimWeb(zim)


def links(doc: Document) -> list[tuple[str, str]]:
    return re.findall(r'<a href="([^"]*)">([^<]*)</a>', doc.body)


# -- names ---------------------------------------------------------------------------


def test_factbook_names_prefer_short_form_then_long_form_then_registry() -> None:
    assert factbook_names(MEXICO) == ("Mexico", ["United Mexican States"], [])
    uae = FactbookCountry("ae", {"Government": _name("none", "United Arab Emirates")})
    assert factbook_names(uae)[0] == "United Arab Emirates"
    assert factbook_names(EUROPEAN_UNION) == ("European Union", [], [])
    assert factbook_names(FactbookCountry("zz", {}))[0] == "zz"


def test_factbook_names_fix_clipped_names_and_long_asides() -> None:
    drc = FactbookCountry("cg", {"Government": _name("DRC", "Democratic Republic of the Congo")})
    assert factbook_names(drc)[0] == "Democratic Republic of the Congo"
    svalbard = FactbookCountry("sv", {"Government": _name("Svalbard (sometimes referred to as X)")})
    assert factbook_names(svalbard)[0] == "Svalbard"
    entity = FactbookCountry("iv", {"Government": _name("C&ocirc;te d'Ivoire")})
    assert factbook_names(entity)[0] == "Côte d'Ivoire"


# -- pages ---------------------------------------------------------------------------


def test_corpus_holds_every_record_and_a_main_page(zim: Path) -> None:
    archive = Archive(str(zim))
    assert archive.article_count == len(WIKI) + len(FACTBOOK) + 1
    assert archive.main_entry.get_redirect_entry().path == "index"
    assert archive.get_entry_by_path("wiki/Frida_Kahlo").title == "Frida Kahlo"
    assert archive.get_entry_by_path("factbook/Mexico").title == "Mexico - The World Factbook"
    eu = archive.get_entry_by_path("factbook/European_Union")
    assert eu.title == "European Union - The World Factbook"


def test_wiki_page_has_title_description_and_paragraphs(web: ZimWeb) -> None:
    doc = web.fetch("zim://fx/wiki/Frida_Kahlo")
    assert doc == Document(
        url="zim://fx/wiki/Frida_Kahlo",
        title="Frida Kahlo",
        body=doc.body,
        content_type="text/html",
        clean=True,
    )
    assert "<h1>Frida Kahlo</h1>" in doc.body
    assert "<p><i>Mexican painter (1907–1954)</i></p>" in doc.body
    assert doc.body.count("<p>") == 3  # description and two paragraphs


def test_autolinks_longest_match_once_per_target_never_inside_names(web: ZimWeb) -> None:
    doc = web.fetch("zim://fx/wiki/Frida_Kahlo")
    assert links(doc) == [
        ("zim://fx/wiki/Mexico_City", "Mexico City"),  # not "Mexico" + " City"
        ("zim://fx/wiki/Mexico", "Mexico"),  # the second mention is not linked again
    ]  # "Carmen" is part of her name; "Mexican" is not "Mexico"; no self-link


def test_autolinks_multiword_titles_in_lowercase(web: ZimWeb) -> None:
    doc = web.fetch("zim://fx/wiki/Helium")
    assert links(doc) == [("zim://fx/wiki/Noble_gas", "noble gas")]


def test_factbook_page_keeps_sections_fields_and_subfields(web: ZimWeb) -> None:
    doc = web.fetch("zim://fx/factbook/Mexico")
    assert doc.title == "Mexico - The World Factbook"
    body = doc.body
    assert "<h1>Mexico - The World Factbook</h1>" in body
    assert "<h2>Geography</h2>\n<h3>Area</h3>\n<p>total: 1,964,375 sq km</p>" in body
    assert "<p><strong>note:</strong> includes islands</p>" in body
    assert "<p>arable land: 11.8%</p>" in body  # not "arable land: arable land: ..."
    assert "<p>varies from tropical to desert</p>" in body
    assert "<div><p>Mexico was colonized by Spain.</p></div>" in body  # no <p> in <p>
    assert "<p>name: " in body and ">Mexico City</a></p>" in body


def test_country_pages_link_each_other(web: ZimWeb) -> None:
    factbook = web.fetch("zim://fx/factbook/Mexico")
    assert '<p>See also: <a href="zim://fx/wiki/Mexico">Mexico</a> (Wikipedia)</p>' in (
        factbook.body
    )
    wiki = web.fetch("zim://fx/wiki/Mexico")
    assert ("zim://fx/factbook/Mexico", "Mexico - The World Factbook") in links(wiki)


def test_redirects_are_followed(web: ZimWeb) -> None:
    doc = web.fetch("zim://fx/factbook/United_Mexican_States")
    assert doc.url == "zim://fx/factbook/Mexico"
    assert doc.title == "Mexico - The World Factbook"
    assert web.fetch("zim://fx/").url == "zim://fx/index"


# -- search --------------------------------------------------------------------------


def test_zimweb_is_a_web(web: ZimWeb) -> None:
    assert isinstance(web, Web)
    assert web.name == "fx"
    assert web.engine == "tantivy"
    assert web.fetch("zim://FX/wiki/Helium").url == "zim://fx/wiki/Helium"


def test_zimweb_name_is_a_valid_host(zim: Path, tmp_path: Path) -> None:
    odd = tmp_path / "my corpus (v2).zim"
    odd.write_bytes(zim.read_bytes())
    web = ZimWeb(odd)
    assert web.name == "my-corpus-v2-"
    assert web.fetch("zim://my-corpus-v2-/wiki/Helium").title == "Helium"


def test_search_ranks_the_named_page_first(web: ZimWeb) -> None:
    results = web.search("penicillin Fleming", 3)
    assert "Alexander Fleming" in [r.title for r in results]
    top = web.search("capital of Burkina Faso", 2)
    assert {r.title for r in top} <= {
        "Burkina Faso",
        "Burkina Faso - The World Factbook",
        "Ouagadougou",
    }
    assert web.search("Who painted with Frida Kahlo?", 1)[0].title == "Frida Kahlo"


def test_search_results_carry_url_and_snippet(web: ZimWeb) -> None:
    result = web.search("highest point of Burkina Faso", 1)[0]
    assert result == SearchResult(
        title="Burkina Faso - The World Factbook",
        url="zim://fx/factbook/Burkina_Faso",
        snippet="Elevation - highest point: Tena Kourou 749 m",
    )


@pytest.mark.parametrize("engine", ["tantivy", "libzim", "libzim-raw", "titles"])
@pytest.mark.parametrize(
    "query",
    ['"unbalanced', "title:(Mexico", "a AND OR NOT", "^*~-+", "Mexico:City [1]", "\\", "*"],
)
def test_search_never_raises_on_query_syntax(zim: Path, engine: str, query: str) -> None:
    assert isinstance(ZimWeb(zim, engine=engine).search(query, 5), list)


def test_search_with_no_words_finds_nothing(web: ZimWeb) -> None:
    assert web.search("", 5) == []
    assert web.search("what is the", 5) == []
    assert web.search("Mexico", 0) == []


def test_libzim_engines(zim: Path) -> None:
    libzim = ZimWeb(zim, engine="libzim")
    titles = [r.title for r in libzim.search("What is the capital of Burkina Faso?", 5)]
    assert "Burkina Faso - The World Factbook" in titles
    raw = ZimWeb(zim, engine="libzim-raw")
    assert raw.search("What is the capital of Burkina Faso?", 5) == []  # needs every word
    titles = [r.title for r in ZimWeb(zim, engine="titles").search("Burkina", 5)]
    assert "Burkina Faso" in titles


def test_without_a_matching_index_auto_uses_libzim(zim: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.zim"
    copy.write_bytes(zim.read_bytes())
    assert ZimWeb(copy).engine == "libzim"
    with pytest.raises(CorpusError, match="has no matching search index"):
        ZimWeb(copy, engine="tantivy")
    (tmp_path / "copy.index").mkdir()  # an index of another ZIM is ignored too
    assert ZimWeb(copy).engine == "libzim"


# -- errors --------------------------------------------------------------------------


def test_missing_zim_is_a_corpus_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.zim"
    with pytest.raises(CorpusError) as info:
        ZimWeb(path)
    assert str(info.value) == f"no such ZIM file: {path}"


def test_corrupt_zim_is_a_corpus_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.zim"
    path.write_bytes(b"this is not a ZIM file" * 100)
    with pytest.raises(CorpusError) as info:
        ZimWeb(path)
    message = str(info.value)
    assert message.startswith(f"not a readable ZIM file: {path} (")
    assert "\n" not in message


def test_unknown_engine_is_a_corpus_error(zim: Path) -> None:
    with pytest.raises(CorpusError, match="unknown search engine 'bing'"):
        ZimWeb(zim, engine="bing")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://example.org/", "an offline corpus cannot fetch 'https://example.org/'"),
        ("zim://other/wiki/Mexico", "'zim://other/wiki/Mexico' is not in the corpus 'fx'"),
        ("zim://fx/wiki/Atlantis", "no page 'wiki/Atlantis' in fx"),
    ],
)
def test_fetch_errors(web: ZimWeb, url: str, message: str) -> None:
    with pytest.raises(FetchError) as info:
        web.fetch(url)
    assert str(info.value) == message
    assert info.value.url == url


# -- links ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("Paris", "zim://wp/wiki/Paris"),
        ("../factbook/France", "zim://wp/factbook/France"),
        ("/index", "zim://wp/index"),
        ("#History", "zim://wp/wiki/London#History"),
        ("Caf%C3%A9?x=1#y", "zim://wp/wiki/Caf%C3%A9?x=1#y"),
        ("https://example.org/a", "https://example.org/a"),
        ("//example.org/a", "https://example.org/a"),
        ("zim://other/A/B", "zim://other/A/B"),
    ],
)
def test_resolve_link(href: str, expected: str) -> None:
    assert resolve_link("zim://wp/wiki/London", href) == expected


def test_resolve_link_outside_zim_is_urljoin() -> None:
    assert resolve_link("https://a.org/x/y", "../z") == "https://a.org/z"


def test_titles_with_odd_characters_round_trip(tmp_path: Path) -> None:
    wiki = [
        WikiSummary("AT&T", "AT&T is a company. See HIV/AIDS and Who? #1 100% sure."),
        WikiSummary("HIV/AIDS", "HIV/AIDS is a disease. AT&T is unrelated."),
    ]
    out = tmp_path / "odd.zim"
    build_corpus(out, wiki, [])
    web = ZimWeb(out)
    doc = web.fetch(web.search("AT&T company", 1)[0].url)
    assert doc.title == "AT&T"
    [(href, text)] = links(doc)
    assert text == "HIV/AIDS"
    assert web.fetch(href).title == "HIV/AIDS"
    back = links(web.fetch(href))
    assert web.fetch(back[0][0].replace("&amp;", "&")).title == "AT&T"


# -- the default corpus: freshness and atomic builds ---------------------------------


@pytest.fixture
def tiny_sources() -> FakeCorpusSources:
    """The default corpus' records: the tiny ones; records each load."""
    return FakeCorpusSources(WIKI, FACTBOOK)


def test_default_corpus_builds_once_in_the_data_dir(
    tiny_sources: FakeCorpusSources, webqa_home: Path
) -> None:
    messages: list[str] = []
    web = open_default_corpus(progress=messages.append, sources=tiny_sources)
    assert web.path == webqa_home / "corpus" / "webqa.zim"
    assert web.name == "webqa"
    assert web.fetch("zim://webqa/wiki/Helium").title == "Helium"
    assert messages[0].startswith("building the offline corpus")
    assert (webqa_home / "corpus" / "webqa.manifest.json").is_file()
    assert (webqa_home / "corpus" / "webqa.index").is_dir()
    assert tiny_sources.loads == ["wiki", "factbook"]
    open_default_corpus(sources=tiny_sources)
    assert tiny_sources.loads == ["wiki", "factbook"]  # up to date: not rebuilt
    assert sorted(p.name for p in (webqa_home / "corpus").iterdir()) == [
        "webqa.index",
        "webqa.manifest.json",
        "webqa.zim",
    ]


def test_a_changed_manifest_rebuilds(
    tiny_sources: FakeCorpusSources, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus.build_default_corpus(sources=tiny_sources)
    monkeypatch.setattr(corpus, "CORPUS_VERSION", corpus.CORPUS_VERSION + 1)
    assert not corpus.is_fresh(corpus.default_corpus_path(), corpus.corpus_manifest())
    corpus.build_default_corpus(sources=tiny_sources)
    assert tiny_sources.loads == ["wiki", "factbook"] * 2
    assert corpus.is_fresh(corpus.default_corpus_path(), corpus.corpus_manifest())


def test_a_failed_rebuild_leaves_the_old_corpus_whole(
    tiny_sources: FakeCorpusSources, monkeypatch: pytest.MonkeyPatch, webqa_home: Path
) -> None:
    path = corpus.build_default_corpus(sources=tiny_sources)
    before = path.read_bytes()

    def killed(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(zimwrite, "write_index", killed)
    with pytest.raises(KeyboardInterrupt):
        corpus.build_default_corpus(force=True, sources=tiny_sources)
    assert path.read_bytes() == before  # the old ZIM was never touched
    assert ZimWeb(path).fetch("zim://webqa/wiki/Helium").title == "Helium"
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the half-built files are gone
    assert not corpus.is_fresh(path, corpus.corpus_manifest())  # so it is rebuilt next
    monkeypatch.undo()
    monkeypatch.setenv("WEBQA_HOME", str(webqa_home))
    corpus.build_default_corpus(sources=tiny_sources)
    assert corpus.is_fresh(path, corpus.corpus_manifest())


def test_duplicate_paths_are_refused(tmp_path: Path) -> None:
    page = zimwrite.Article("a", "A", "<p>a</p>", "a")
    with pytest.raises(CorpusError, match="two entries share the ZIM path 'a'"):
        zimwrite.write_zim(tmp_path / "dup.zim", [page, page])
    assert list(tmp_path.iterdir()) == []


def test_zim_writing_keeps_stdout_clean(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    build_corpus(tmp_path / "quiet.zim", WIKI[:2], [])
    assert capfd.readouterr().out == ""


def test_snippets_are_whole_sentences_by_the_shared_splitter() -> None:
    """The search index's snippets split sentences as webqa.text does: "K. 620" does not
    end one (the index's own splitter used to cut the snippet to "620, is an opera ...")."""
    from webqa.web.textindex import analyzer, make_snippet

    body = (
        "The Magic Flute\n"
        "The Magic Flute, K. 620, is an opera by Mozart to a libretto by Schikaneder. "
        "It premiered in Vienna."
    )
    terms = ["libretto", "mozart"]
    snippet = make_snippet(body, [analyzer().analyze(t)[0] for t in terms], analyzer())
    assert snippet == (
        "The Magic Flute, K. 620, is an opera by Mozart to a libretto by Schikaneder."
    )
