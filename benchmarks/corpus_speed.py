"""Speed of the offline corpus: build time and size, search and fetch latency.

Builds the default corpus from the installed packages into a temporary folder (or
times an existing ZIM with ``--zim``), then runs every dev question through each search
engine. Prints JSON; each section is a key, so more (render times) can be added.

    .venv/bin/python benchmarks/corpus_speed.py [--dev PATH] [--zim PATH] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import machine_report

from webqa.web.corpus import build_corpus, load_factbook, load_wiki_summaries
from webqa.web.zimweb import ZimWeb

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"


def timings(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(p95 * 1000, 3),
        "n": len(ordered),
    }


def build(out_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    wiki, factbook = load_wiki_summaries(), load_factbook()
    loaded = time.perf_counter() - started
    stats = build_corpus(out_dir / "webqa.zim", wiki, factbook)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "load_seconds": round(loaded, 2),
        "link_seconds": round(time.perf_counter() - started - loaded - stats.seconds, 2),
        "zim_seconds": round(stats.stage_seconds.get("zim", 0.0), 2),
        "index_seconds": round(stats.stage_seconds.get("index", 0.0), 2),
        "articles": stats.articles,
        "redirects": stats.redirects,
        "zim_mb": round(stats.zim_bytes / 1e6, 2),
        "index_mb": round(stats.index_bytes / 1e6, 2),
    }


def search_latency(zim: Path, questions: list[str], repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for engine in ("tantivy", "libzim"):
        web = ZimWeb(zim, engine=engine)
        web.search(questions[0], 10)  # warm caches
        seconds = []
        for _ in range(repeat):
            for question in questions:
                started = time.perf_counter()
                web.search(question, 10)
                seconds.append(time.perf_counter() - started)
        out[engine] = timings(seconds)
    return out


def fetch_latency(zim: Path, questions: list[str]) -> dict[str, Any]:
    web = ZimWeb(zim)
    urls = [r.url for q in questions for r in web.search(q, 3)]
    seconds = []
    for url in urls:
        started = time.perf_counter()
        web.fetch(url)
        seconds.append(time.perf_counter() - started)
    return timings(seconds)


def render_times(zim: Path, html_page: Path | None, repeat: int) -> dict[str, Any]:
    """Time turning the largest Factbook page, and a large documentation HTML page (with
    Readability), into a browser page."""
    from libzim.reader import Archive  # type: ignore[import-not-found]

    from webqa.browser.page import page_from_document, page_from_html

    archive, sizes = Archive(str(zim)), {}
    for i in range(archive.all_entry_count):
        entry = archive._get_entry_by_id(i)
        if entry.path.startswith("factbook/") and not entry.is_redirect:
            sizes[entry.path] = entry.get_item().size
    web = ZimWeb(zim)
    doc = web.fetch(web.url_for(max(sizes, key=sizes.__getitem__)))
    out: dict[str, Any] = {}
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        page = page_from_document(doc)
        seconds.append(time.perf_counter() - started)
    out["largest_factbook_page"] = {
        "title": doc.title,
        "html_kb": round(len(doc.body) / 1000, 1),
        "lines": len(page.lines),
        **timings(seconds),
    }
    if html_page is not None and html_page.is_file():
        html = html_page.read_text(encoding="utf-8", errors="replace")
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            page = page_from_html(f"https://docs.example/{html_page.name}", html)
            seconds.append(time.perf_counter() - started)
        out["docs_html_page"] = {
            "file": str(html_page),
            "html_kb": round(len(html) / 1000, 1),
            "lines": len(page.lines),
            **timings(seconds),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV, help="questions (JSONL)")
    parser.add_argument("--zim", type=Path, help="time this ZIM instead of building one")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the questions")
    parser.add_argument(
        "--html",
        type=Path,
        default=Path("/usr/share/doc/python3.11/html/library/stdtypes.html"),
        help="a large HTML page to time rendering on (Debian python3.11-doc)",
    )
    args = parser.parse_args(argv)
    lines = args.dev.read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    result: dict[str, Any] = {
        "machine": machine_report(),
        "questions": len(questions),
    }
    with tempfile.TemporaryDirectory() as tmp:
        zim = args.zim
        if zim is None:
            result["build"] = build(Path(tmp))
            zim = Path(tmp) / "webqa.zim"
        result["search"] = search_latency(zim, questions, args.repeat)
        result["fetch"] = fetch_latency(zim, questions)
        result["render"] = render_times(zim, args.html, args.repeat)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
