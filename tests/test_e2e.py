"""End-to-end on the real embedded corpus and model (slow: builds the corpus, loads
Qwen2.5-Coder-0.5B). These are the issue's acceptance commands, run as a user would."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from webqa.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture()
def home(shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WEBQA_HOME", str(shared_home))
    return shared_home


def test_search_finds_fleming_in_top_3(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "penicillin Fleming", "--json"]) == 0
    titles = [row["title"] for row in json.loads(capsys.readouterr().out)]
    assert "Alexander Fleming" in titles[:3]


def test_piped_browse_session_on_the_real_corpus(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = (
        "Search capital of Burkina Faso\nClicked on link 0\nFind in page: capital\n"
        "Quote: Ouagadougou\nEnd: Answer\nThe capital is Ouagadougou [1].\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    assert main(["browse", "What is the capital of Burkina Faso?"]) == 0
    out = capsys.readouterr().out
    assert "●Title\nSearch results for: capital of Burkina Faso" in out
    assert "【0†Burkina Faso" in out
    assert "From quote 1 (Burkina Faso" in out
    demo = json.loads((home / "demonstrations.jsonl").read_text().splitlines()[-1])
    assert demo["quotes"][0]["text"] == "Ouagadougou"
    assert demo["quotes"][0]["url"].endswith("Burkina_Faso")
    assert demo["answer"] == "The capital is Ouagadougou [1]."


def _plain(text: str) -> str:
    return " ".join(text.lower().split())


def test_ask_answers_offline_citing_the_burkina_faso_page(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from webqa.browser.page import page_from_document
    from webqa.web.zimweb import open_default_corpus

    assert main(["ask", "What is the capital of Burkina Faso?", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "Ouagadougou" in result["answer"]
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", result["answer"])}
    assert cited, result["answer"]
    refs = {r["n"]: r for r in result["references"]}
    assert any("Burkina Faso" in refs[n]["title"] for n in cited if n in refs)
    web = open_default_corpus()
    best = result["candidates"][result["best"]]
    for ref in result["references"]:
        assert ref["url"] in best["visited"]
        page = page_from_document(web.fetch(ref["url"]))
        assert _plain(ref["extract"]) in _plain(page.plain)
