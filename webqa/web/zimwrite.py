"""Writing a ZIM file and its search index from articles, atomically.

The ZIM goes to ``NAME.zim`` and the tantivy index to the folder ``NAME.index`` beside
it. Both are written into a temporary folder next to the destination and moved into
place only when complete, so a killed build never leaves a half-written ZIM where a
reader would open it. The index records the uuid of its ZIM; a reader ignores an index
whose uuid does not match (for instance after a build was killed between the moves).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from libzim.writer import Creator, Hint, Item, StringProvider

from webqa.errors import CorpusError
from webqa.web.textindex import IndexDoc, write_index

Progress = Callable[[str], None]
"""A build progress callback, given one-line messages such as "writing pages 500/10289"."""


@dataclass(frozen=True)
class Article:
    """One page of a ZIM: its path, title, HTML, and plain text for the search index."""

    path: str
    title: str
    html: str
    text: str
    aliases: str = ""  # other names of the page, searched like the title
    searchable: bool = True  # False for navigation pages (a main page, an index)


@dataclass(frozen=True)
class Redirect:
    """A ZIM redirect entry: ``path`` shows the page at ``target``."""

    path: str
    title: str
    target: str


@dataclass(frozen=True)
class BuildStats:
    """What a build produced and how long it took."""

    zim_path: Path
    articles: int
    redirects: int
    zim_bytes: int
    index_bytes: int
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)


def index_dir_for(zim_path: Path) -> Path:
    """The folder holding the search index of ``zim_path`` (``x.zim`` -> ``x.index``)."""
    return zim_path.with_suffix(".index")


class _HtmlItem(Item):
    def __init__(self, path: str, title: str, content: str, mimetype: str) -> None:
        super().__init__()
        self._path, self._title, self._content, self._mimetype = path, title, content, mimetype

    def get_path(self) -> str:
        return self._path

    def get_title(self) -> str:
        return self._title

    def get_mimetype(self) -> str:
        return self._mimetype

    def get_contentprovider(self) -> StringProvider:
        return StringProvider(self._content)

    def get_hints(self) -> dict[Hint, int]:
        return {Hint.FRONT_ARTICLE: self._mimetype == "text/html"}


def _ignore(message: str) -> None:
    pass


def write_zim(
    out_zim: Path,
    articles: Sequence[Article],
    *,
    redirects: Sequence[Redirect] = (),
    metadata: Mapping[str, str] | None = None,
    main_path: str | None = None,
    fulltext: bool = True,
    progress: Progress | None = None,
) -> BuildStats:
    """Write ``articles`` to ``out_zim`` plus its search index, replacing both atomically.

    ``fulltext`` also builds libzim's own (Xapian) full-text index inside the ZIM, the
    alternative search engine. Raises CorpusError on duplicate paths or write failure.
    """
    report = progress or _ignore
    out_zim = Path(out_zim)
    check_output(out_zim)
    _check_paths(articles, redirects)
    started = time.perf_counter()
    stages: dict[str, float] = {}
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_zim.stem}.build-", dir=out_zim.parent))
    except OSError as exc:
        raise CorpusError(f"cannot write {out_zim}: {_reason(exc)}") from exc
    try:
        tmp_zim = tmp / out_zim.name
        _write_archive(tmp_zim, articles, redirects, metadata, main_path, fulltext, report)
        stages["zim"] = time.perf_counter() - started
        uuid = _archive_uuid(tmp_zim)
        report(f"indexing {len(articles)} pages for search")
        docs = (IndexDoc(a.path, a.title, a.text, a.aliases) for a in articles if a.searchable)
        tmp_index = index_dir_for(tmp_zim)
        write_index(tmp_index, docs, zim_uuid=uuid)
        stages["index"] = time.perf_counter() - started - stages["zim"]
        _move_into_place(tmp_zim, tmp_index, out_zim)
    except RuntimeError as exc:
        raise CorpusError(f"cannot write {out_zim}: {libzim_reason(exc)}") from exc
    except OSError as exc:
        raise CorpusError(f"cannot write {out_zim}: {_reason(exc)}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    index_dir = index_dir_for(out_zim)
    index_bytes = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    return BuildStats(
        zim_path=out_zim,
        articles=len(articles),
        redirects=len(redirects),
        zim_bytes=out_zim.stat().st_size,
        index_bytes=index_bytes,
        seconds=time.perf_counter() - started,
        stage_seconds=stages,
    )


def check_output(out_zim: Path) -> None:
    """A CorpusError now, before any work, if ``out_zim`` cannot be written: it is a
    folder, or its folder cannot be created or written to."""
    if out_zim.is_dir():
        raise CorpusError(
            f"{out_zim} is a folder; give a file name such as {out_zim / 'pages.zim'}"
        )
    try:
        out_zim.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CorpusError(f"cannot write {out_zim}: {_reason(exc)}") from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out_zim.stem}.probe-", dir=out_zim.parent)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CorpusError(f"cannot write {out_zim}: its folder is not writable ({reason})") from exc
    os.close(fd)
    os.unlink(probe)


def libzim_reason(exc: Exception) -> str:
    """A libzim error in one line. A Python error inside one of libzim's callbacks comes
    back as a RuntimeError holding the whole traceback: its last line says what it was."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[-1] if lines[0].startswith("Traceback") else " ".join(lines)


def _reason(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason}: {exc.filename}" if exc.filename is not None else reason


def _check_paths(articles: Sequence[Article], redirects: Sequence[Redirect]) -> None:
    seen: set[str] = set()
    for path in [a.path for a in articles] + [r.path for r in redirects]:
        if path in seen:
            raise CorpusError(f"two entries share the ZIM path {path!r}")
        seen.add(path)


def _write_archive(
    tmp_zim: Path,
    articles: Sequence[Article],
    redirects: Sequence[Redirect],
    metadata: Mapping[str, str] | None,
    main_path: str | None,
    fulltext: bool,
    report: Progress,
) -> None:
    meta = {
        "Name": tmp_zim.stem,
        "Title": tmp_zim.stem,
        "Description": f"{tmp_zim.stem}, built by webqa",
        "Language": "eng",
        "Creator": "webqa",
        "Publisher": "webqa",
        "Date": datetime.date.today().isoformat(),
    }
    meta.update(metadata or {})
    creator = Creator(str(tmp_zim)).config_indexing(fulltext, "eng")
    creator.config_nbworkers(max(1, min(4, os.cpu_count() or 1)))
    total = len(articles)
    zim = creator.__enter__()
    finished = False
    try:
        for n, article in enumerate(articles):
            zim.add_item(_HtmlItem(article.path, article.title, article.html, "text/html"))
            if n % 1000 == 0:
                report(f"writing pages {n}/{total}")
        for redirect in redirects:
            zim.add_redirection(
                redirect.path, redirect.title, redirect.target, {Hint.FRONT_ARTICLE: False}
            )
        if main_path is not None:
            zim.set_mainpath(main_path)
        for key, value in meta.items():
            zim.add_metadata(key, value)
        finishing = "compressing and indexing" if fulltext else "compressing"
        report(f"writing pages {total}/{total}; {finishing}")
        finished = True
    finally:
        with _quiet_stdout():  # libzim prints its closing steps on stdout
            creator.__exit__(*((None, None, None) if finished else sys.exc_info()))


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence libzim, which prints its progress on the process's stdout (fd 1)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 (embedded interpreter): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _archive_uuid(zim_path: Path) -> str:
    from libzim.reader import Archive

    return str(Archive(str(zim_path)).uuid)


def _move_into_place(tmp_zim: Path, tmp_index: Path, out_zim: Path) -> None:
    """Move the new ZIM, then its index, over the old ones."""
    os.replace(tmp_zim, out_zim)
    index_dir = index_dir_for(out_zim)
    old = None
    if index_dir.exists():
        old = index_dir.with_name(f".{index_dir.name}.old-{os.getpid()}")
        os.replace(index_dir, old)
    os.replace(tmp_index, index_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
