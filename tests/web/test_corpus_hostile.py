"""Hostile folders and ZIM files (issue 11, cases 12 and 13): `webqa corpus build` on odd
file names, broken links, symbolic links out of the folder and outputs it cannot write;
a ZIM whose header is intact but whose data is corrupt."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webqa.cli import main
from webqa.errors import CorpusError
from webqa.web.folder import _article, build_from_folder, rewrite_href
from webqa.web.zimweb import ZimWeb, absolute_links, resolve_link

BURKINA = (
    "<html><head><title>Burkina Faso</title></head><body><p>Its capital is Ouagadougou.</p>"
    '<p><a href="http://[::1">broken</a> <a href="mali.html">Mali</a></p></body></html>'
)
MALI = "<html><head><title>Mali</title></head><body><p>Its capital is Bamako.</p></body></html>"


def site(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(BURKINA, encoding="utf-8")
    (root / "mali.html").write_text(MALI, encoding="utf-8")
    return root


def stderr_lines(err: str, prefix: str = "webqa corpus") -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith(prefix)]


# -- case 12: corpus build --------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_skipped_and_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = site(tmp_path / "src")
    (src / os.fsdecode(b"caf\xe9.html")).write_text(MALI, encoding="utf-8")
    (src / os.fsdecode(b"d\xefr")).mkdir()
    (src / os.fsdecode(b"d\xefr") / "x.html").write_text(MALI, encoding="utf-8")
    out = tmp_path / "out.zim"
    assert main(["corpus", "build", str(src), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert stderr_lines(captured.err) == [
        "webqa corpus: skipped caf\\xe9.html: its name is not valid UTF-8",
        "webqa corpus: skipped d\\xefr: its name is not valid UTF-8",
    ]
    assert f"wrote {out}" in captured.out
    web = ZimWeb(out)
    assert web.fetch("zim://out/mali.html").title == "Mali"


def test_a_link_no_url_parser_accepts_is_kept_and_the_page_opens(tmp_path: Path) -> None:
    web = ZimWeb(build_from_folder(site(tmp_path / "src"), tmp_path / "out.zim", fulltext=False))
    page = web.fetch("zim://out/index.html")
    assert page.title == "Burkina Faso"
    assert 'href="http://[::1"' in page.body  # left alone: the renderer skips it
    assert 'href="zim://out/mali.html"' in page.body  # the good link still resolves


@pytest.mark.parametrize("href", ["http://[::1", "//[::1/x", "https://[zz]/", "http://a]b/"])
def test_link_rewriters_never_raise(href: str) -> None:
    assert rewrite_href("a/b.html", href, {"a/c.html"}) == href
    assert resolve_link("zim://site/a/b.html", href) == href
    assert absolute_links(f'<a href="{href}">x</a>', "zim://site/a.html") == (
        f'<a href="{href}">x</a>'
    )


@pytest.mark.parametrize("where", ["folder", "under-a-file", "proc"])
def test_an_output_it_cannot_write_is_one_line_before_the_build(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    src = site(tmp_path / "src")
    if where == "folder":
        out = tmp_path / "existing"
        out.mkdir()
        reason = "is a folder; give a file name such as"
    elif where == "under-a-file":
        (tmp_path / "a-file").write_text("x", encoding="utf-8")
        out = tmp_path / "a-file" / "out.zim"
        reason = "cannot write"
    else:
        out = Path("/proc/webqa-test/out.zim")
        reason = "cannot write"
    started = time.perf_counter()
    assert main(["corpus", "build", str(src), "-o", str(out)]) == 1
    [line] = stderr_lines(capsys.readouterr().err)
    assert line.startswith(f"webqa corpus: {out} ") or line.startswith(
        f"webqa corpus: cannot write {out}"
    )
    assert reason in line
    assert time.perf_counter() - started < 2.0  # refused before converting any page
    assert not (tmp_path / "existing.index").exists()


def test_symbolic_links_out_of_the_folder_are_skipped_unless_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = site(tmp_path / "src")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Top secret\n\nThe launch code is 0000.", encoding="utf-8")
    (outside / "docs").mkdir()
    (outside / "docs" / "page.html").write_text(MALI, encoding="utf-8")
    (src / "passwd.txt").symlink_to(outside / "secret.txt")
    (src / "docs").symlink_to(outside / "docs", target_is_directory=True)
    (src / "alias.html").symlink_to(src / "mali.html")  # inside the folder: kept
    (src / "loop").symlink_to(src, target_is_directory=True)  # a cycle: never walked twice
    (src / "dangling.html").symlink_to(tmp_path / "nowhere.html")

    out = tmp_path / "out.zim"
    assert main(["corpus", "build", str(src), "-o", str(out)]) == 0
    lines = stderr_lines(capsys.readouterr().err)
    assert lines == [
        f"webqa corpus: skipped dangling.html: a broken symbolic link (to {tmp_path}/nowhere.html)",
        f"webqa corpus: skipped docs: a symbolic link out of the folder (to {outside}/docs); "
        "--follow-symlinks includes it",
        f"webqa corpus: skipped passwd.txt: a symbolic link out of the folder (to {outside}"
        "/secret.txt); --follow-symlinks includes it",
    ]
    paths = zim_paths(out)
    assert paths == ["alias.html", "index.html", "mali.html"]

    assert main(["corpus", "build", str(src), "-o", str(out), "--follow-symlinks"]) == 0
    assert stderr_lines(capsys.readouterr().err) == [lines[0]]
    assert zim_paths(out) == [
        "alias.html",
        "docs/page.html",
        "index.html",
        "mali.html",
        "passwd.txt",
    ]
    assert "launch code" in ZimWeb(out).fetch("zim://out/passwd.txt").body


def zim_paths(zim: Path) -> list[str]:
    from libzim.reader import Archive

    archive = Archive(str(zim))
    paths = []
    for n in range(archive.all_entry_count):
        entry = archive._get_entry_by_id(n)
        if not entry.is_redirect and entry.get_item().mimetype == "text/html":
            paths.append(entry.path)
    return sorted(paths)


def test_a_special_file_is_never_read(tmp_path: Path) -> None:
    src = site(tmp_path / "src")
    os.mkfifo(src / "pipe.html")  # reading it would block for ever
    skipped: list[str] = []
    build_from_folder(src, tmp_path / "out.zim", fulltext=False, on_skip=skipped.append)
    assert skipped == ["pipe.html: not a regular file"]


def test_a_huge_file_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webqa.web.folder.MAX_FILE_BYTES", 1000)
    src = site(tmp_path / "src")
    (src / "big.txt").write_text("Big\n\n" + "word " * 1000, encoding="utf-8")
    skipped: list[str] = []
    build_from_folder(src, tmp_path / "out.zim", fulltext=False, on_skip=skipped.append)
    assert skipped == ["big.txt: 5,005 bytes, more than the 1,000 a page may have"]


@settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.one_of(
        st.binary(max_size=400),
        st.lists(
            st.sampled_from(
                [
                    "<a href='",
                    "http://[::1",
                    "'>",
                    "</a>",
                    "<main>",
                    "<title>",
                    "<h1>",
                    "\x00",
                    "&#0;",
                    "\ud800",
                    "é",
                    "<!--",
                    "<script>",
                    "../",
                    "%ff",
                    "#",
                    "?",
                ]
            ),
            max_size=40,
        ).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
    ),
    suffix=st.sampled_from([".html", ".md", ".txt"]),
)
def test_any_bytes_become_a_page(raw: bytes, suffix: str) -> None:
    article = _article(raw, f"dir/page{suffix}", {"dir/page.html", "index.html"})
    assert article.title and isinstance(article.html, str)
    article.html.encode("utf-8")  # libzim must be able to store it
    article.title.encode("utf-8")
    article.text.encode("utf-8")


# -- case 13: a ZIM with an intact header and corrupt data ------------------------------


def corrupt_copy(zim: Path, dest: Path) -> Path:
    """``zim`` with the compressed data of its first content cluster scrambled."""
    data = bytearray(zim.read_bytes())
    start = data.index(b"\x28\xb5\x2f\xfd", 80)  # a zstd frame: compressed pages
    for i in range(start + 8, start + 40):
        data[i] ^= 0x5A
    dest.write_bytes(bytes(data))
    index = zim.with_suffix(".index")
    if index.is_dir():
        dest.with_suffix(".index").symlink_to(index, target_is_directory=True)
    return dest


@pytest.fixture
def bad_zim(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.html").write_text(BURKINA.replace("http://[::1", "mali.html"), encoding="utf-8")
    (src / "mali.html").write_text(MALI, encoding="utf-8")
    good = build_from_folder(src, tmp_path / "good.zim", fulltext=False)
    return corrupt_copy(good, tmp_path / "bad.zim")


def test_corrupt_data_is_a_corpus_error_naming_the_file(bad_zim: Path) -> None:
    web = ZimWeb(bad_zim)  # the header is intact: it opens
    assert [r.title for r in web.search("capital Bamako", 2)][:1] == ["Mali"]
    with pytest.raises(CorpusError) as caught:
        web.fetch("zim://bad/mali.html")
    message = str(caught.value)
    assert message.startswith(f"corrupt ZIM file {bad_zim}: ")
    assert "Data corruption detected" in message and "mali.html" in message
    assert "\n" not in message
    with pytest.raises(CorpusError, match=re.escape(f"corrupt ZIM file {bad_zim}: ")):
        ZimWeb(bad_zim, engine="titles").search("Mali", 2)


def test_browse_on_a_corrupt_zim_is_one_line_and_saves_the_session(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bad_zim: Path,
    webqa_home: Path,
) -> None:
    import io
    import json

    monkeypatch.setattr("sys.stdin", io.StringIO("Search capital Bamako\nClicked on link 0\n"))
    assert main(["browse", "What is the capital of Mali?", "--zim", str(bad_zim)]) == 1
    [line] = stderr_lines(capsys.readouterr().err, "webqa browse")
    assert line.startswith(f"webqa browse: corrupt ZIM file {bad_zim}: Data corruption detected")
    [demo] = [json.loads(x) for x in (webqa_home / "demonstrations.jsonl").read_text().splitlines()]
    assert demo["end_reason"] == "error"
    assert [s["command"] for s in demo["steps"]] == ["Search capital Bamako", "Clicked on link 0"]
