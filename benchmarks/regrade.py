"""Bootstrap comparisons judged again under the current grading rule, without browsing
again (issue 14): each comparison's two candidates graded by ``webqa.bootstrap.grade``
against the gold answers of its question (found by the comparison's ``id`` in the
question files), written to ``-o`` in the same schema. Prints one JSON object: how many
comparisons, how many changed, and the judgements before and after by kind.

    python benchmarks/regrade.py old.jsonl [more.jsonl.gz] \\
        --questions benchmarks/questions/corpus_train.jsonl -o regraded.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webqa.bootstrap import regrade  # noqa: E402
from webqa.comparisons import Comparison, read_comparisons, write_comparisons  # noqa: E402
from webqa.errors import WebQAError  # noqa: E402
from webqa.frontend.bootstrap import gold_items  # noqa: E402


def read_any(path: Path) -> list[Comparison]:
    """A comparisons file, gzipped (``.gz``) or not."""
    if path.suffix != ".gz":
        return read_comparisons(path)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / path.stem
        with gzip.open(path, "rb") as src, plain.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        return read_comparisons(plain)


def verdict(score: float) -> str:
    return "tie" if score == 0 else "decided"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("comparisons", nargs="+", type=Path)
    ap.add_argument("--questions", nargs="+", type=Path, required=True)
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    try:
        items = {str(i["id"]): i for path in args.questions for i in gold_items(path)}
        comparisons = [c for path in args.comparisons for c in read_any(path)]
    except (WebQAError, OSError, EOFError) as exc:
        sys.exit(f"regrade: {exc}")
    out, moves, missing = [], Counter(), 0
    for c in comparisons:
        item = items.get(str(c.extra.get("id")))
        if item is None:
            missing += 1
            out.append(c)
            continue
        new = regrade(item, c)
        change = "same" if new.score_0 == c.score_0 else "changed"
        kind = str(c.extra.get("kind", "?"))
        moves[(kind, verdict(c.score_0), verdict(new.score_0), change)] += 1
        out.append(new)
    try:
        write_comparisons(args.output, out)
    except (WebQAError, OSError) as exc:
        sys.exit(f"regrade: {exc}")
    report = {
        "files": [str(p) for p in args.comparisons],
        "questions": [str(p) for p in args.questions],
        "comparisons": len(out),
        "not_found": missing,
        "changed": sum(v for k, v in moves.items() if k[3] == "changed"),
        "decided_before": sum(v for k, v in moves.items() if k[1] == "decided"),
        "decided_after": sum(v for k, v in moves.items() if k[2] == "decided"),
        "moves": [
            {"kind": k[0], "before": k[1], "after": k[2], "score": k[3], "count": v}
            for k, v in sorted(moves.items())
        ],
        "output": str(args.output),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
