"""build_from_folder reads each file's bytes as a browser reads a local file: a BOM or a
declared charset wins, else UTF-8 if the bytes are UTF-8, else the detected encoding."""

from __future__ import annotations

import pytest

from webqa.web.corpus import build_from_folder
from webqa.web.folder import decode_html
from webqa.web.zimweb import ZimWeb

BODY = "<p>Spam — crème brûlée, déjà vu: “quoted” for 5 €.</p>"
FRENCH = (
    "<p>La crème brûlée est un dessert composé d'une crème à base de jaunes d'oeufs, "
    "recouverte d'une couche de sucre caramélisé. Déjà servie à la française.</p>"
)


def page(title: str, body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>{title}</title></head><body>{body}</body></html>"


FILES: dict[str, bytes] = {
    # no declaration: UTF-8, strictly, before anything is guessed
    "utf8.html": page("Spam — eggs", BODY).encode("utf-8"),
    # no declaration and not UTF-8: detected (Western text reads as windows-1252)
    "latin1.html": page("Crème brûlée", FRENCH).encode("latin-1"),
    # declared: windows-1252's curly quotes and euro sign
    "cp1252.html": page("Prix en €", BODY, '<meta charset="windows-1252">').encode("cp1252"),
    # the declaration wins even over bytes that would read as UTF-8
    "declared.html": page("Déclaré", "<p>Ã©</p>", '<meta charset="windows-1252">').encode("utf-8"),
    # an XML declaration declares too (and lxml is not handed it)
    "xhtml.html": b'<?xml version="1.0" encoding="iso-8859-1"?>\n'
    + page("XHTML café", FRENCH).encode("latin-1"),
    "xhtml-utf8.html": b"<?xml version='1.0' encoding='utf-8'?>"
    + page("Spam — XHTML", BODY).encode("utf-8"),
    # a byte-order mark beats a declaration that contradicts it
    "bom.html": b"\xef\xbb\xbf"
    + page("Spam — BOM", BODY, '<meta charset="windows-1252">').encode("utf-8"),
    "latin1.txt": ("Crème brûlée\n\n" + FRENCH[3:-4]).encode("latin-1"),
    "notes.md": "# Spam — Markdown\n\nSpam — crème brûlée, déjà vu.\n".encode(),
}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> ZimWeb:
    src = tmp_path_factory.mktemp("charsets")
    for name, data in FILES.items():
        (src / name).write_bytes(data)
    return ZimWeb(build_from_folder(src, tmp_path_factory.mktemp("zim") / "charsets.zim"))


@pytest.mark.parametrize(
    ("name", "title", "text"),
    [
        ("utf8.html", "Spam — eggs", "Spam — crème brûlée, déjà vu: “quoted” for 5 €."),
        ("latin1.html", "Crème brûlée", "une crème à base de jaunes d'oeufs"),
        ("cp1252.html", "Prix en €", "Spam — crème brûlée, déjà vu: “quoted” for 5 €."),
        ("declared.html", "DÃ©clarÃ©", "Ã\u0192Â©"),
        ("xhtml.html", "XHTML café", "Déjà servie à la française."),
        ("xhtml-utf8.html", "Spam — XHTML", "Spam — crème brûlée"),
        ("bom.html", "Spam — BOM", "Spam — crème brûlée"),
        ("latin1.txt", "Crème brûlée", "une couche de sucre caramélisé"),
    ],
)
def test_each_file_is_read_in_its_own_encoding(
    web: ZimWeb, name: str, title: str, text: str
) -> None:
    doc = web.fetch(f"zim://{web.name}/{name}")
    assert doc.title == title
    assert text in doc.body
    assert "â\x80" not in doc.body and "\ufffd" not in doc.body  # no mojibake, no losses


def test_markdown_is_read_as_utf8(web: ZimWeb) -> None:
    doc = web.fetch(f"zim://{web.name}/notes.html")
    assert doc.title == "Spam — Markdown"
    assert "Spam — crème brûlée, déjà vu." in doc.body


def test_the_search_index_holds_the_decoded_words(web: ZimWeb) -> None:
    assert any(r.title == "Crème brûlée" for r in web.search("caramélisé"))


def test_decode_html_drops_the_xml_declaration_and_reads_utf8_strictly() -> None:
    assert decode_html(b'<?xml version="1.0" encoding="utf-8"?><p>\xe2\x80\x94</p>') == ("<p>—</p>")
    assert decode_html(b"<p>caf\xe9 cr\xe8me br\xfbl\xe9e</p>") == "<p>café crème brûlée</p>"
