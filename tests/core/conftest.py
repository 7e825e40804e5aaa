"""The small two-page site the CLI, hostile-input and worker tests browse, as a ZIM."""

from __future__ import annotations

from pathlib import Path

import pytest

from webqa.web.corpus import build_from_folder

PAGES = {
    "index.html": "<html><head><title>Burkina Faso</title></head><body><main>"
    "<h1>Burkina Faso</h1><p>Burkina Faso is a landlocked country in West Africa."
    " Its capital is Ouagadougou.</p><p>See <a href='mali.html'>Mali</a>.</p></main></body></html>",
    "mali.html": "<html><head><title>Mali</title></head><body><main><h1>Mali</h1>"
    "<p>Mali is a landlocked country. Its capital is Bamako.</p></main></body></html>",
}


@pytest.fixture(scope="module")
def zim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("site")
    for name, html in PAGES.items():
        (src / name).write_text(html, encoding="utf-8")
    return build_from_folder(src, tmp_path_factory.mktemp("zim") / "site.zim")
