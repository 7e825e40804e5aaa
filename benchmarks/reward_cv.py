"""Held-out pairwise accuracy of the feature reward model, by k-fold cross-validation
over questions (issue 14): more stable than one held-out share of a few hundred pairs.

Reads comparisons files (the WebGPT schema: ``webqa reward bootstrap`` writes them),
reads every distinct answer's features once, then for each of ``--folds`` folds (a
question's fold: a hash of it, so every pair of one question is on one side) fits the
head on the other folds and ranks the fold's decided (non-tie) pairs. Prints one JSON
object: accuracy pooled over the folds, per fold, per kind of question (a comparison's
``kind``, as the bootstrap writes it), and the grounding scorer's own accuracy on the
same pairs.

    python benchmarks/reward_cv.py comparisons.jsonl [more.jsonl] [--folds 5] [--l2 0.1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import machine_report  # noqa: E402

from webqa.comparisons import pairs, read_comparisons  # noqa: E402
from webqa.models.feature_reward import DEFAULT_L2, FEATURES, feature_matrix, fit  # noqa: E402
from webqa.models.grounding import GroundingScorer  # noqa: E402
from webqa.models.reward_train import with_domains  # noqa: E402


def fold_of(question: str, folds: int) -> int:
    key = " ".join(question.casefold().split()).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % folds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("comparisons", nargs="+", help="comparisons files (JSONL)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--l2", type=float, default=DEFAULT_L2)
    args = ap.parse_args()
    started = time.perf_counter()
    comparisons = [c for path in args.comparisons for c in read_comparisons(path)]
    items = []
    for c, p in pairs(comparisons):
        a = (tuple(with_domains(c.quotes_0)), c.answer_0.strip())
        b = (tuple(with_domains(c.quotes_1)), c.answer_1.strip())
        if a != b:
            items.append((c.question, a, b, p, str(c.extra.get("kind", "?"))))
    scorer = GroundingScorer()
    answers: dict[str, list] = {}
    for q, a, b, _, _ in items:
        answers.setdefault(q, [])
        answers[q] += [x for x in (a, b) if x not in answers[q]]
    rows = {}
    for q, xs in answers.items():
        rows.update({(q, x): r for x, r in zip(xs, feature_matrix(scorer, q, xs), strict=True)})
    first = np.asarray([rows[(x[0], x[1])] for x in items])
    second = np.asarray([rows[(x[0], x[2])] for x in items])
    p = np.asarray([x[3] for x in items])
    fold = np.asarray([fold_of(x[0], args.folds) for x in items])
    kinds = [x[4] for x in items]
    decided = p != 0.5
    right = np.zeros(len(items), dtype=bool)
    per_fold = []
    for k in range(args.folds):
        held = fold == k
        head, _ = fit(first[~held], second[~held], p[~held], l2=args.l2)
        margin = head(first[held]) - head(second[held])
        right[held] = (margin > 0) == (p[held] > 0.5)
        n = int((held & decided).sum())
        per_fold.append(round(float(right[held & decided].mean()), 3) if n else None)
    g = FEATURES.index("grounding")
    grounding_right = (first[:, g] - second[:, g] > 0) == (p > 0.5)
    by_kind = {}
    for kind in sorted(set(kinds)):
        mask = decided & np.asarray([k == kind for k in kinds])
        if mask.any():
            by_kind[kind] = {
                "pairs": int(mask.sum()),
                "accuracy": round(float(right[mask].mean()), 3),
                "grounding": round(float(grounding_right[mask].mean()), 3),
            }
    head, _ = fit(first, second, p, l2=args.l2)
    report = {
        "machine": machine_report(),
        "files": args.comparisons,
        "comparisons": len(comparisons),
        "pairs": len(items),
        "decided_pairs": int(decided.sum()),
        "ties": int((~decided).sum()),
        "questions": len(answers),
        "folds": args.folds,
        "l2": args.l2,
        "accuracy": round(float(right[decided].mean()), 3),
        "per_fold": per_fold,
        "grounding_accuracy": round(float(grounding_right[decided].mean()), 3),
        "by_kind": by_kind,
        "kinds": dict(Counter(kinds)),
        "weights_on_all": dict(
            zip(FEATURES, [round(float(w), 3) for w in head.weights], strict=True)
        ),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
