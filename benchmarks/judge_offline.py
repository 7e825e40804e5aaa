"""A reward model as the judge of whether an answer should stand, measured offline
(issue 13's "declining that means it"): for each answer of a ``quality.py --details``
run that was not declined, does the reward model score it above a decline written from
the same quotes? Prints one JSON object: per kind of question, how many right and wrong
answers it would keep or decline, with the precision and recall of its declines.

    python benchmarks/judge_offline.py details.jsonl[.gz] [--reward-model bootstrap]

The details' quotes are cut at 300 characters (as ``quality.py`` records them), and runs
older than ``quote_titles`` have no page titles, which the features use; both make this
an estimate of the judge inside an episode, not a measurement of it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import machine_report  # noqa: E402

from webqa.answering import NOT_IN_QUOTES  # noqa: E402
from webqa.values import Quote  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("details", type=Path)
    ap.add_argument("--reward-model", default="bootstrap")
    args = ap.parse_args()
    from webqa import api
    from webqa.errors import WebQAError

    try:
        reward = api.load_reward(args.reward_model, policy=None)  # type: ignore[arg-type]
    except WebQAError as exc:
        sys.exit(f"judge_offline: {exc}")
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    titled = 0
    path = args.details
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError) as exc:
        sys.exit(f"judge_offline: {path}: {exc}")
    for n, line in enumerate(text.decode("utf-8", errors="replace").splitlines(), 1):
        try:
            row = json.loads(line)
            texts, question = row["quotes"], row["question"]
        except (ValueError, KeyError, TypeError) as exc:
            sys.exit(f"judge_offline: {args.details}:{n}: not a quality.py details row ({exc})")
        if not texts or row.get("declined"):
            continue
        titles = row.get("quote_titles") or [""] * len(texts)
        titled += bool(row.get("quote_titles"))
        quotes = [Quote(t, "", "", q) for t, q in zip(titles, texts, strict=False)]
        answer, decline = reward.score(question, [(quotes, row["answer"]), (quotes, NOT_IN_QUOTES)])
        verdict = "kept" if answer > decline else "declined"
        counts[row.get("kind") or "all"][f"{'right' if row['correct'] else 'wrong'}_{verdict}"] += 1
    out = {}
    for kind, c in sorted(counts.items()):
        declined = c["right_declined"] + c["wrong_declined"]
        wrong = c["wrong_kept"] + c["wrong_declined"]
        out[kind] = dict(
            c,
            decline_precision=round(c["wrong_declined"] / declined, 3) if declined else None,
            decline_recall=round(c["wrong_declined"] / wrong, 3) if wrong else None,
        )
    report = {
        "details": str(args.details),
        "reward_model": reward.name,
        "rows_with_titles": titled,
        "by_kind": out,
        "machine": machine_report(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
