"""build_from_folder on a small site of HTML, Markdown and text files, and the converter."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from libzim.reader import Archive

from webqa.errors import CorpusError, FetchError
from webqa.web.corpus import build_from_folder
from webqa.web.markdown import markdown_to_html
from webqa.web.zimweb import ZimWeb

SITE = Path(__file__).parent / "fixtures" / "site"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> ZimWeb:
    out = build_from_folder(SITE, tmp_path_factory.mktemp("folder") / "site.zim")
    return ZimWeb(out)


def entries(web: ZimWeb) -> dict[str, str]:
    archive = Archive(str(web.path))
    found = {}
    for n in range(archive.all_entry_count):
        entry = archive._get_entry_by_id(n)
        if not entry.is_redirect and entry.get_item().mimetype == "text/html":
            found[entry.path] = entry.title
    return found


def hrefs(body: str) -> list[str]:
    return re.findall(r'<a href="([^"]*)"', body)


def test_every_page_file_with_its_title(web: ZimWeb) -> None:
    assert entries(web) == {
        "changelog.txt": "Changelog",  # first line of a text file
        "guide/deep/index.htm": "Deep Dive",  # no <title>: the first heading
        "guide/index.html": "Guide",
        "guide/intro.html": "Introduction to the Zephyr Toolkit",  # <title>
        "index.html": "Fixture Site Home",
        "notes.html": "Field Notes",  # Markdown becomes .html; title from its heading
    }  # _static/ and hidden files are left out


def test_links_between_files_resolve_to_zim_urls(web: ZimWeb) -> None:
    home = web.fetch("zim://site/index.html")
    assert hrefs(home.body) == [
        "zim://site/guide/intro.html#setup",
        "zim://site/notes.html",  # notes.md
        "zim://site/changelog.txt",
        "https://example.org/page",
        "zim://site/missing.html",
    ]
    for url in hrefs(home.body)[:3]:
        assert web.fetch(url).url == url.split("#")[0]
    with pytest.raises(FetchError):
        web.fetch("zim://site/missing.html")
    intro = web.fetch("zim://site/guide/intro.html")
    assert hrefs(intro.body) == ["zim://site/notes.html#tips", "zim://site/index.html"]
    guide = web.fetch("zim://site/guide/index.html")
    assert hrefs(guide.body) == [
        "zim://site/guide/intro.html",
        "zim://site/guide/deep/index.htm",  # a folder link means its index page
    ]


def test_html_keeps_its_main_content_only(web: ZimWeb) -> None:
    body = web.fetch("zim://site/").body  # the main page is index.html
    assert "<main>" in body and "<h1>Welcome</h1>" in body
    assert "alert" not in body and "color: red" not in body and "<nav>" not in body


def test_markdown_and_text_pages(web: ZimWeb) -> None:
    notes = web.fetch("zim://site/notes.html").body
    assert '<h2 id="tips">Tips</h2>' in notes
    assert "<strong>zephyr toolkit</strong>" in notes
    text = web.fetch("zim://site/changelog.txt").body
    assert "<p>Version 2.0 renamed the flux capacitor to the chronal regulator.</p>" in text


def test_search_finds_pages_of_every_kind(web: ZimWeb) -> None:
    assert web.search("chronal regulator", 1)[0].url == "zim://site/changelog.txt"
    assert web.search("quasar calibration", 1)[0].title == "Deep Dive"
    titles = [r.title for r in web.search("zephyr toolkit", 5)]
    assert titles[:2] == ["Introduction to the Zephyr Toolkit", "Field Notes"]


def test_a_folder_without_an_index_gets_one(tmp_path: Path) -> None:
    src = tmp_path / "notes"
    src.mkdir()
    (src / "a.txt").write_text("Alpha\n\nFirst letter.", encoding="utf-8")
    (src / "b.md").write_text("# Beta\n\nSee [alpha](a.txt).", encoding="utf-8")
    web = ZimWeb(build_from_folder(src, tmp_path / "notes.zim", fulltext=False))
    main = web.fetch("zim://notes/")
    assert main.url == "zim://notes/index.html"
    assert hrefs(main.body) == ["zim://notes/a.txt", "zim://notes/b.html"]
    assert web.search("index", 5) == []  # the generated index is not searchable
    assert web.engine == "tantivy"


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not a folder: "):
        build_from_folder(tmp_path / "nope", tmp_path / "x.zim")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "image.png").write_bytes(b"png")
    with pytest.raises(CorpusError, match="no .html, .htm, .md or .txt files under "):
        build_from_folder(tmp_path / "empty", tmp_path / "x.zim")


# -- the Markdown converter ----------------------------------------------------------


def body_of(source: str) -> str:
    """The converted page's body, without the line breaks between tags."""
    page = markdown_to_html(source)
    return re.sub(r">\n+<", "><", page.split("<body>\n")[1].removesuffix("</body></html>\n"))


def test_markdown_blocks() -> None:
    source = (
        "# Title\n\nA paragraph\nover two lines.\n\n- one\n- two\n  continued\n\n"
        "1. first\n\n> quoted\n\n```\nx < 1\n```\n\n    indented code\n\n---\n"
    )
    assert body_of(source) == (
        '<h1 id="title">Title</h1>'
        "<p>A paragraph\nover two lines.</p>"
        "<ul><li>one</li><li>two\ncontinued</li></ul>"
        "<ol><li>first</li></ol>"
        "<blockquote><p>quoted</p></blockquote>"
        "<pre><code>x &lt; 1\n</code></pre>"
        "<pre><code>indented code\n</code></pre>"
        "<hr />\n"
    )
    assert "<title>Title</title>" in markdown_to_html(source)


def test_markdown_inline() -> None:
    assert body_of("**bold** and *em* and `a*b*c` snake_case_name stays") == (
        "<p><strong>bold</strong> and <em>em</em> and <code>a*b*c</code>"
        " snake_case_name stays</p>\n"
    )
    assert body_of("[docs](guide/a.md) ![logo](l.png) <https://example.org>") == (
        '<p><a href="guide/a.md">docs</a> <img src="l.png" alt="logo" />'
        ' <a href="https://example.org">https://example.org</a></p>\n'
    )
    assert body_of("See [the *docs*][d] and [alpha](a.txt).\n\n[d]: guide/a.md") == (
        '<p>See <a href="guide/a.md">the <em>docs</em></a> and <a href="a.txt">alpha</a>.</p>\n'
    )  # reference links too (the old converter left them as text)


def test_markdown_from_untrusted_files_stays_text() -> None:
    """Raw HTML is escaped, never passed through, and script links are not links."""
    assert body_of("<i>x</i> <script>alert(1)</script>") == (
        "<p>&lt;i&gt;x&lt;/i&gt; &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )
    assert body_of("<div onclick=x>\nblock\n</div>") == (
        "<p>&lt;div onclick=x&gt;\nblock\n&lt;/div&gt;</p>\n"
    )
    for link in ("javascript:alert(1)", "vbscript:x", "data:text/html,<b>x</b>", "file:///etc"):
        assert "<a " not in body_of(f"[click]({link})")


def test_markdown_front_matter_gives_the_title() -> None:
    source = "---\ntitle: 'npm-test'\nsection: 1\n---\n\n### Synopsis\n\nText.\n"
    page = markdown_to_html(source)
    assert "<title>npm-test</title>" in page
    assert body_of(source) == '<h3 id="synopsis">Synopsis</h3><p>Text.</p>\n'
    assert "<title>Only</title>" in markdown_to_html("Only\n====\n\n---\nnot: front\n---\n")


def test_markdown_tables() -> None:
    assert body_of("| a | b |\n|---|---|\n| 1 | 2 |") == (
        "<table><thead><tr><th>a</th><th>b</th></tr></thead>"
        "<tbody><tr><td>1</td><td>2</td></tr></tbody></table>\n"
    )


@pytest.mark.parametrize("source", ["[" * 20_000, "*a " * 7_000, "![" * 10_000, "> " * 5_000])
def test_markdown_floods_take_bounded_time(source: str) -> None:
    """The old converter took 509 s on 200,000 "["; markdown-it is linear."""
    start = time.monotonic()
    markdown_to_html(source)
    assert time.monotonic() - start < 5.0


def test_a_huge_markdown_file_is_shown_as_text() -> None:
    """Past MAX_MARKDOWN_CHARS the parser's time is not spent: the file reads as text."""
    from webqa.web.folder import MAX_MARKDOWN_CHARS, _article

    source = "# Huge\n\n" + "[" * MAX_MARKDOWN_CHARS
    start = time.monotonic()
    article = _article(source.encode(), "big.md", {"big.html"})
    assert time.monotonic() - start < 5.0
    assert (article.path, article.title) == ("big.html", "# Huge")
    assert "<h1" not in article.html
