"""Best-of-n again under another reward model, without browsing again (issue 14).

Reads the details file of a best-of-n run of ``benchmarks/quality.py -n N --details F``
(each question's candidates with their answers, references and whether each is right)
and prints one JSON object: for the reward model the run used (its ``score``) and for
``--reward-model`` (a folder ``webqa reward train`` wrote, or any reward model
``webqa ask --reward-model`` takes), the accuracy of the candidate each picks, how often
it picks a right one where one exists, the greedy candidate's accuracy (candidate 0:
n=1), and the oracle (some candidate right); each reward model's pick both as its
argmax and as the agent picks ("as_agent": the greedy candidate's score raised by
``AgentConfig.greedy_prior`` first). ``--first K`` uses only each question's
first K candidates (best-of-4 from a best-of-8 run).

    python benchmarks/rescore.py dev_n8.jsonl --reward-model /tmp/rm --first 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import machine_report  # noqa: E402

from webqa.values import Quote  # noqa: E402


def pick_rate(rows: list[dict], picks: list[int]) -> dict:
    right = sum(r["candidates"][p]["correct"] for r, p in zip(rows, picks, strict=True))
    some = [i for i, r in enumerate(rows) if any(c["correct"] for c in r["candidates"])]
    picked = sum(rows[i]["candidates"][picks[i]]["correct"] for i in some)
    return {
        "right": right,
        "accuracy": round(right / len(rows), 3),
        "picks_right_where_one_exists": f"{picked}/{len(some)}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("details", help="a best-of-n details file of benchmarks/quality.py")
    ap.add_argument("--reward-model", help="a reward model folder (webqa reward train)")
    ap.add_argument("--first", type=int, default=0, help="only each question's first K")
    args = ap.parse_args()
    from webqa.agent import AgentConfig

    prior = AgentConfig().greedy_prior
    rows = [json.loads(line) for line in open(args.details, encoding="utf-8") if line.strip()]
    rows = [r for r in rows if r.get("candidates")]
    if not rows:
        sys.exit(f"rescore: {args.details}: no best-of-n rows (run quality.py with -n 2 or more)")
    if args.first:
        rows = [{**r, "candidates": r["candidates"][: args.first]} for r in rows]
    n = len(rows[0]["candidates"])

    def best(scores: list[float | None]) -> int:
        return max(range(len(scores)), key=lambda i: (scores[i] is not None, scores[i] or 0.0))

    def as_agent(scores: list[float | None]) -> int:
        """The agent's pick: candidate 0 (greedy) gets the greedy prior (AgentConfig)."""
        boosted = list(scores)
        if boosted and boosted[0] is not None:
            boosted[0] += prior
        return best(boosted)

    report: dict = {
        "machine": machine_report(),
        "details": args.details,
        "questions": len(rows),
        "n": n,
        "greedy_n1": pick_rate(rows, [0] * len(rows)),
        "oracle": sum(any(c["correct"] for c in r["candidates"]) for r in rows),
        # the answer the run returned (its reward, the greedy prior and the agreement bonus)
        "run_answer_right": sum(bool(r["correct"]) for r in rows),
        "run_reward_argmax": pick_rate(
            rows, [best([c["score"] for c in r["candidates"]]) for r in rows]
        ),
        "greedy_prior": prior,
        "run_reward_as_agent": pick_rate(
            rows, [as_agent([c["score"] for c in r["candidates"]]) for r in rows]
        ),
    }
    if args.reward_model:
        from webqa import api

        model = api.load_reward(args.reward_model, policy=None)  # type: ignore[arg-type]
        started = time.perf_counter()
        scores: list[list[float]] = []
        for r in rows:
            answers = [
                (
                    [Quote(q["title"], q["url"], "", q["extract"]) for q in c["references"]],
                    c["answer"],
                )
                for c in r["candidates"]
            ]
            scores.append(list(model.score(r["question"], answers)))
        report["trained_reward"] = {
            "model": model.name,
            **pick_rate(rows, [best(list(s)) for s in scores]),
            "as_agent": pick_rate(rows, [as_agent(list(s)) for s in scores]),
            "seconds": round(time.perf_counter() - started, 1),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
