"""A ZIM from a folder of HTML, Markdown and text files (your own docs, a saved site).

Each file keeps its place: ``guide/intro.html`` is the ZIM entry ``guide/intro.html``,
so relative links between files keep working. Markdown (``.md``) becomes ``.html`` (links
to ``.md`` files are rewritten to match; one over ``MAX_MARKDOWN_CHARS`` is shown as text,
which bounds the parser's time); text (``.txt``) becomes a page of paragraphs.
HTML loses scripts and styles, and keeps only its main content when it marks one
(``<main>``, ``role="main"``). Titles: ``<title>``, else the first heading or line, else
the file name.

Bytes become text as a browser reads a local file (``webqa.web.charset``, as the live
web's fetch does): a byte-order mark, else an HTML file's declared charset (its XML
declaration, then its ``<meta charset>``), else UTF-8 if the bytes are valid UTF-8,
else what charset-normalizer detects. An undeclared UTF-8 page is never read as Latin-1.
"""

from __future__ import annotations

import html
import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import lxml.etree
import lxml.html

from webqa.errors import CorpusError
from webqa.web.autolink import quote_path
from webqa.web.charset import decode_body
from webqa.web.markdown import markdown_to_html
from webqa.web.zimwrite import Article, Progress, check_output, write_zim

HTML_SUFFIXES = (".html", ".htm")
MARKDOWN_SUFFIXES = (".md", ".markdown")
TEXT_SUFFIXES = (".txt",)
MAX_FILE_BYTES = 64 << 20  # a larger file is skipped (reported), never read
MAX_MARKDOWN_CHARS = 2_000_000  # ~7 s of markdown-it at most (~70 s on a "[[[..." flood)
# An XML declaration's encoding, at the very start of a file (after any byte-order mark,
# which decode_body reads first).
_XML_ENCODING = re.compile(
    rb"""^\s{0,64}<\?xml\s[^>]{0,200}?encoding\s*=\s*["']([\w.:-]{1,40})["']"""
)
_XML_DECLARATION = re.compile(r"^\s*<\?xml\s[^>]{0,500}?\?>")
_BLOCKS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 li dt dd tr pre blockquote section article table br".split()
)


Skip = Callable[[str], None]
"""Told of each file or folder left out and why, as ``"<path in the folder>: <why>"``."""


def _files(
    src: Path, *, follow_symlinks: bool = False, on_skip: Skip | None = None
) -> Iterator[tuple[Path, str]]:
    """(file, its path inside the folder) for every page file, in path order.

    Hidden files and folders are skipped, and so are folders named ``_*`` (a generator's
    own files: Sphinx's ``_sources`` and ``_static``, Jekyll's ``_layouts``). Left out,
    and told to ``on_skip``: names that are not valid UTF-8 (a ZIM path must be),
    symbolic links that lead out of the folder (unless ``follow_symlinks``) or nowhere,
    anything but regular files (a FIFO would block the build) and files larger than
    ``MAX_FILE_BYTES``. A folder reached twice (a link cycle) is walked once.
    """
    skip = on_skip or _ignore
    suffixes = HTML_SUFFIXES + MARKDOWN_SUFFIXES + TEXT_SUFFIXES
    root = src.resolve()
    walked: set[Path] = {root}

    def walk(folder: Path, prefix: str) -> Iterator[tuple[Path, str]]:
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            skip(f"{prefix or '.'}: cannot be listed ({exc.strerror or exc})")
            return
        for name in names:
            if name.startswith("."):
                continue
            path = folder / name
            rel = prefix + name
            try:
                is_dir = path.is_dir()
            except OSError as exc:
                skip(f"{_shown(rel)}: cannot be read ({exc.strerror or exc})")
                continue
            if (is_dir and name.startswith("_")) or (
                not is_dir and Path(name).suffix.lower() not in suffixes
            ):
                continue
            if _shown(rel) != rel:
                skip(f"{_shown(rel)}: its name is not valid UTF-8")
                continue
            if path.is_symlink():
                target = Path(os.path.realpath(path))
                if not path.exists():
                    skip(f"{rel}: a broken symbolic link (to {os.readlink(path)})")
                    continue
                if not follow_symlinks and not target.is_relative_to(root):
                    skip(
                        f"{rel}: a symbolic link out of the folder (to {target}); "
                        "--follow-symlinks includes it"
                    )
                    continue
            if is_dir:
                real = path.resolve()
                if real not in walked:
                    walked.add(real)
                    yield from walk(path, rel + "/")
                continue
            try:
                info = path.stat()
            except OSError as exc:
                skip(f"{rel}: cannot be read ({exc.strerror or exc})")
                continue
            if not stat.S_ISREG(info.st_mode):
                skip(f"{rel}: not a regular file")
            elif info.st_size > MAX_FILE_BYTES:
                limit = f"more than the {MAX_FILE_BYTES:,} a page may have"
                skip(f"{rel}: {info.st_size:,} bytes, {limit}")
            else:
                yield path, rel

    yield from walk(src, "")


def _ignore(message: str) -> None:
    pass


def _shown(rel: str) -> str:
    """A path as it can be printed: bytes that are not UTF-8 as ``\\xNN``."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _entry_path(rel: str) -> str:
    stem, dot, suffix = rel.rpartition(".")
    return f"{stem}.html" if dot and f".{suffix.lower()}" in MARKDOWN_SUFFIXES else rel


def build_from_folder(
    src_dir: str | Path,
    out_zim: str | Path,
    *,
    fulltext: bool = True,
    progress: Progress | None = None,
    follow_symlinks: bool = False,
    on_skip: Skip | None = None,
) -> Path:
    """Write a ZIM (and its search index) of the pages under ``src_dir``; returns its path.

    Symbolic links that lead out of ``src_dir`` are skipped unless ``follow_symlinks``;
    each file or folder left out (see ``_files``) is told to ``on_skip``.
    Raises CorpusError if ``src_dir`` is not a folder or holds no page files, or if
    ``out_zim`` cannot be written (checked before any page is read).
    """
    src = Path(src_dir)
    if not src.is_dir():
        raise CorpusError(f"not a folder: {src}")
    out = Path(out_zim)
    check_output(out)
    files = list(_files(src, follow_symlinks=follow_symlinks, on_skip=on_skip))
    if not files:
        raise CorpusError(f"no .html, .htm, .md or .txt files under {src}")
    paths = {_entry_path(rel) for _file, rel in files}
    articles = []
    for file, rel in files:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise CorpusError(f"cannot read {file}: {exc}") from exc
        articles.append(_article(raw, rel, paths))
    starts = ("index.html", "index.htm", "README.html")
    main: str | None = next((p for p in starts if p in paths), None)
    if main is None:
        articles.append(_index_page(articles))
        main = articles[-1].path
    metadata = {"Title": src.resolve().name or "pages", "Description": f"pages from {src}"}
    write_zim(
        out, articles, metadata=metadata, main_path=main, fulltext=fulltext, progress=progress
    )
    return out


def _article(raw: bytes, rel: str, paths: set[str]) -> Article:
    suffix = Path(rel).suffix.lower()
    path = _entry_path(rel)
    fallback = Path(rel).stem.replace("_", " ").replace("-", " ")
    if suffix in HTML_SUFFIXES:
        return _html_article(decode_html(raw), path, paths, fallback)
    text = decode_body(raw, None, is_html=False)
    if suffix in MARKDOWN_SUFFIXES and len(text) <= MAX_MARKDOWN_CHARS:
        return _html_article(markdown_to_html(text), path, paths, fallback)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title = lines[0] if lines and len(lines[0]) <= 120 else fallback
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    page = f"<html><head><title>{html.escape(title)}</title></head><body>{body}</body></html>"
    return Article(path, title, page, "\n".join(paras))


def decode_html(raw: bytes) -> str:
    """An HTML file's text (see the module docstring for the order), without its XML
    declaration (lxml refuses text that declares an encoding)."""
    declared = _XML_ENCODING.match(raw)
    text = decode_body(raw, declared.group(1).decode("ascii") if declared else None, is_html=True)
    return _XML_DECLARATION.sub("", text, count=1)


def _html_article(source: str, path: str, paths: set[str], fallback: str) -> Article:
    try:
        doc = lxml.html.document_fromstring(source)
    except (lxml.etree.ParserError, ValueError):
        doc = lxml.html.document_fromstring(f"<p>{html.escape(fallback)}</p>")
    for bad in doc.xpath("//script | //style | //link | //noscript"):
        bad.drop_tree()
    title = " ".join(doc.findtext(".//title", default="").split())
    heading = doc.xpath("(//h1 | //h2)[1]")
    if not title and heading:
        title = " ".join(heading[0].text_content().split())
    title = title or fallback
    mains = doc.xpath("//main | //*[@role='main']")
    content = mains[0] if mains else doc.body
    if content is None:  # a document that is all head ("<title>x"): no body at all
        content = lxml.html.fromstring("<body></body>")
    for link in content.iter("a"):
        target = link.get("href")
        if target:
            link.set("href", rewrite_href(path, target, paths))
    if content.tag == "body":  # its children, not a second <body>
        inner = html.escape(content.text or "", quote=False) + "".join(
            lxml.html.tostring(child, encoding="unicode", method="html") for child in content
        )
    else:
        inner = lxml.html.tostring(content, encoding="unicode", method="html")
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title></head>\n<body>\n{inner}\n</body></html>\n"
    )
    return Article(path, title, page, _text(content))


def rewrite_href(source: str, target: str, paths: set[str]) -> str:
    """A link in the file at ``source`` made to point at ZIM entries.

    Links with a scheme, fragments and links to files not in the ZIM are left alone;
    root-relative links become relative; a folder means its ``index.html``; a ``.md``
    file its ``.html`` page.
    """
    try:
        parts = urlsplit(target)
    except ValueError:  # "http://[::1": no URL at all; the browser skips it
        return target
    if parts.scheme or parts.netloc or not parts.path:
        return target
    base = "" if parts.path.startswith("/") else posixpath.dirname(source)
    resolved = posixpath.normpath(posixpath.join(base, unquote(parts.path).lstrip("/")))
    candidates = [_entry_path(resolved)]
    candidates += [posixpath.join(resolved, name) for name in ("index.html", "index.htm")]
    found = next((c for c in candidates if c in paths), None)
    if found is None:
        return target
    rel = posixpath.relpath(found, posixpath.dirname(source) or ".")
    return quote_path(rel) + (f"#{parts.fragment}" if parts.fragment else "")


def _text(element: lxml.html.HtmlElement) -> str:
    """Plain text with one line per block element."""
    chunks: list[str] = []

    def walk(node: lxml.html.HtmlElement) -> None:
        if not isinstance(node.tag, str):  # comments, processing instructions
            if node.tail:
                chunks.append(node.tail)
            return
        block = node.tag in _BLOCKS
        if block:
            chunks.append("\n")
        if node.text:
            chunks.append(node.text)
        for child in node:
            walk(child)
        if block:
            chunks.append("\n")
        if node.tail:
            chunks.append(node.tail)

    walk(element)
    lines = (" ".join(line.split()) for line in "".join(chunks).split("\n"))
    return "\n".join(line for line in lines if line)


def _index_page(articles: list[Article]) -> Article:
    items = "\n".join(
        f'<li><a href="{html.escape(quote_path(a.path))}">{html.escape(a.title)}</a></li>'
        for a in sorted(articles, key=lambda a: a.path)
    )
    body = f"<h1>Index</h1><ul>{items}</ul>"
    page = f"<html><head><title>Index</title></head><body>{body}</body></html>"
    text = "\n".join(a.title for a in articles)
    return Article("index.html", "Index", page, text, searchable=False)
