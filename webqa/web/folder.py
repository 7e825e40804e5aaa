"""A ZIM from a folder of HTML, Markdown and text files (your own docs, a saved site).

Each file keeps its place: ``guide/intro.html`` is the ZIM entry ``guide/intro.html``,
so relative links between files keep working. Markdown (``.md``) becomes ``.html`` (links
to ``.md`` files are rewritten to match); text (``.txt``) becomes a page of paragraphs.
HTML loses scripts and styles, and keeps only its main content when it marks one
(``<main>``, ``role="main"``). Titles: ``<title>``, else the first heading or line, else
the file name.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import lxml.etree
import lxml.html

from webqa.errors import CorpusError
from webqa.web.autolink import quote_path
from webqa.web.markdown import markdown_to_html
from webqa.web.zimwrite import Article, Progress, write_zim

HTML_SUFFIXES = (".html", ".htm")
MARKDOWN_SUFFIXES = (".md", ".markdown")
TEXT_SUFFIXES = (".txt",)
_BLOCKS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 li dt dd tr pre blockquote section article table br".split()
)


def _files(src: Path) -> Iterator[tuple[Path, str]]:
    """(file, its path inside the folder) for every page file.

    Hidden files and folders are skipped, and so are folders named ``_*`` (a generator's
    own files: Sphinx's ``_sources`` and ``_static``, Jekyll's ``_layouts``).
    """
    suffixes = HTML_SUFFIXES + MARKDOWN_SUFFIXES + TEXT_SUFFIXES
    for file in sorted(src.rglob("*")):
        rel = file.relative_to(src).as_posix()
        *folders, name = rel.split("/")
        if name.startswith(".") or any(f.startswith((".", "_")) for f in folders):
            continue
        if file.is_file() and file.suffix.lower() in suffixes:
            yield file, rel


def _entry_path(rel: str) -> str:
    stem, dot, suffix = rel.rpartition(".")
    return f"{stem}.html" if dot and f".{suffix.lower()}" in MARKDOWN_SUFFIXES else rel


def build_from_folder(
    src_dir: str | Path,
    out_zim: str | Path,
    *,
    fulltext: bool = True,
    progress: Progress | None = None,
) -> Path:
    """Write a ZIM (and its search index) of the pages under ``src_dir``; returns its path.

    Raises CorpusError if ``src_dir`` is not a folder or holds no page files.
    """
    src = Path(src_dir)
    if not src.is_dir():
        raise CorpusError(f"not a folder: {src}")
    files = list(_files(src))
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
    out = Path(out_zim)
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
        return _html_article(raw, path, paths, fallback)
    text = raw.decode("utf-8", errors="replace")
    if suffix in MARKDOWN_SUFFIXES:
        return _html_article(markdown_to_html(text).encode(), path, paths, fallback)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title = lines[0] if lines and len(lines[0]) <= 120 else fallback
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    page = f"<html><head><title>{html.escape(title)}</title></head><body>{body}</body></html>"
    return Article(path, title, page, "\n".join(paras))


def _html_article(raw: bytes, path: str, paths: set[str], fallback: str) -> Article:
    try:
        doc = lxml.html.document_fromstring(raw)
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
    parts = urlsplit(target)
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
