"""The real embedded corpus, built from the installed packages (slow: about a minute)."""

from __future__ import annotations

from pathlib import Path

import pytest
from libzim.reader import Archive

from webqa.web.corpus import load_factbook, load_wiki_summaries
from webqa.web.zimweb import open_default_corpus

pytestmark = pytest.mark.slow


def test_sources_hold_what_the_design_says() -> None:
    assert len(load_wiki_summaries()) == 10_033
    assert len(load_factbook()) == 256


def test_default_corpus_builds_and_ranks(webqa_home: Path) -> None:
    web = open_default_corpus()
    assert web.path == webqa_home / "corpus" / "webqa.zim"
    assert web.engine == "tantivy"
    archive = Archive(str(web.path))
    assert archive.article_count == 10_033 + 256 + 1  # and the main page
    paths = {archive._get_entry_by_id(n).path for n in range(archive.all_entry_count)}
    assert sum(p.startswith("wiki/") for p in paths) == 10_033
    assert {"factbook/Mexico", "factbook/European_Union", "factbook/World"} <= paths

    top3 = [r.title for r in web.search("penicillin Fleming", 3)]
    assert "Alexander Fleming" in top3
    top2 = [r.title for r in web.search("capital of Burkina Faso", 2)]
    assert {"Burkina Faso - The World Factbook", "Burkina Faso"} & set(top2)

    mexico = web.fetch("zim://webqa/factbook/Mexico")
    assert "<h3>Capital</h3>" in mexico.body
    assert 'href="zim://webqa/wiki/Mexico"' in mexico.body
