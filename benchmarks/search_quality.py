"""How often search puts a page holding the answer in the top k, per engine.

Each dev question is the query, as asked. A question is a hit when any of its source
pages (``sources`` titles: "Mexico - The World Factbook", "Frida Kahlo") is among the
top ``k`` results. Unanswerable questions (no sources) are skipped. Prints JSON.

    .venv/bin/python benchmarks/search_quality.py [--dev PATH] [--zim PATH] [--k 5]

Without ``--zim`` the default corpus is used (built in the data directory if needed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from machine import machine_report

from webqa.web.base import SearchResult
from webqa.web.textindex import query_words
from webqa.web.zimweb import ZimWeb, open_default_corpus

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"


def load_questions(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if r.get("answerable", True) and r.get("sources")]


def engines(zim: Path) -> dict[str, Callable[[str, int], list[SearchResult]]]:
    """Each engine as ``search(question, k)``."""
    tantivy = ZimWeb(zim, engine="tantivy")
    libzim = ZimWeb(zim, engine="libzim")
    raw = ZimWeb(zim, engine="libzim-raw")
    return {
        "tantivy": tantivy.search,  # stop words dropped, OR, BM25, title boost, phrases
        "libzim-raw": raw.search,  # the question as Xapian gets it
        "libzim-stopwords": lambda q, k: raw.search(" ".join(query_words(q)) or q, k),
        "libzim": libzim.search,  # stop words dropped, AND, then OR to fill
    }


def evaluate(
    search: Callable[[str, int], list[SearchResult]], questions: list[dict], k: int
) -> dict:
    hits, misses, ranks = 0, [], []
    for row in questions:
        wanted = {s["title"] for s in row["sources"]}
        titles = [r.title for r in search(row["question"], k)]
        rank = next((i for i, t in enumerate(titles) if t in wanted), None)
        if rank is None:
            misses.append(row["id"])
        else:
            hits += 1
            ranks.append(rank)
    mrr = sum(1 / (r + 1) for r in ranks) / len(questions) if questions else 0.0
    return {"hits": hits, "of": len(questions), "mrr": round(mrr, 3), "misses": misses}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV, help="questions (JSONL)")
    parser.add_argument("--zim", type=Path, help="ZIM to search (default: the default corpus)")
    parser.add_argument("--k", type=int, default=5, help="how many results count")
    args = parser.parse_args(argv)
    questions = load_questions(args.dev)
    zim = args.zim or open_default_corpus(progress=lambda m: print(m, file=sys.stderr)).path
    results = {name: evaluate(fn, questions, args.k) for name, fn in engines(zim).items()}
    report = {"machine": machine_report(), "dev": str(args.dev), "k": args.k, "engines": results}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
