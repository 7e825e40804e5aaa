"""Batch throughput: questions per minute at concurrency K, and tokens/s against one stream.

    .venv/bin/python benchmarks/throughput.py --max-actions 10 --concurrency 1,2,4,8

Runs the dev questions (default ../shared/eval/dev.jsonl) through the same executor as
``webqa batch`` and ``answer_many`` (``webqa.runner.run_many``; a local model behind a
``BatchingPolicy``) once per K, on the embedded corpus, nothing logged, and prints JSON:
for each K the wall time, questions per minute, generated and prompt tokens per second,
the mean merged batch, and the speed-up over K = 1 (the single stream).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from machine import machine_report, precision_report

from webqa import api
from webqa.models.base import Chat, Generation, GenerationRequest, Policy
from webqa.models.batching import BatchingPolicy
from webqa.runner import run_many
from webqa.values import Question

DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "eval" / "dev.jsonl"


class Counting:
    """A policy wrapper that counts model calls and tokens."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name
        self.lock = threading.Lock()
        self.calls = self.tokens = self.prompt_tokens = 0
        self.model_seconds = 0.0

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        started = time.perf_counter()
        out = self.policy.generate(requests)
        with self.lock:
            self.model_seconds += time.perf_counter() - started
            self.calls += 1
            self.tokens += sum(g.tokens for g in out)
            self.prompt_tokens += sum(g.prompt_tokens for g in out)
        return out

    def yes_probability(self, chats: Sequence[Chat]) -> list[float]:
        return self.policy.yes_probability(chats)


def _decode_split(before: Any, after: Any) -> dict[str, Any]:
    """Prefill and decode-step totals between two ``DecodeStats`` snapshots."""
    if before is None or after is None:
        return {}
    steps = after.steps - before.steps
    prefill = after.prefill_seconds - before.prefill_seconds
    tokens = after.prefill_tokens - before.prefill_tokens
    return {
        "prefill_seconds": round(prefill, 1),
        "prefill_tokens": tokens,
        "prefill_tokens_per_second": round(tokens / max(prefill, 1e-9), 1),
        "decode_steps": steps,
        "decode_step_seconds": round(after.step_seconds - before.step_seconds, 1),
        "mean_rows_per_step": round((after.step_rows - before.step_rows) / max(steps, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="?", default=str(DEV), help="a dev.jsonl file")
    parser.add_argument("--limit", type=int, default=0, help="the first N questions (0: all)")
    parser.add_argument("--concurrency", default="1,2,4,8", help="comma-separated K values")
    parser.add_argument("--model", default=None, help="default: the default local model")
    parser.add_argument("--api-base", default=None, help="an OpenAI-compatible server instead")
    parser.add_argument("--max-actions", type=int, default=20)
    parser.add_argument("-n", type=int, default=1)
    args = parser.parse_args()

    rows = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line]
    questions = [
        Question(r["question"], id=str(r.get("id", i)), index=i)
        for i, r in enumerate(rows[: args.limit or None])
    ]
    levels = [int(k) for k in args.concurrency.split(",")]
    web = api.open_web()
    base = api.load_policy(args.model, api_base=args.api_base)
    load = getattr(base, "load", None)
    if load is not None:
        load()  # not timed
    # the settings `webqa batch` uses: guided browsing with the passage shortlist locally
    config = api.agent_config(
        args.api_base, n=args.n, max_actions=args.max_actions, temperature=None, seed=0
    )
    procedure = api.browsing_procedure(args.api_base, None)

    runs: list[dict[str, Any]] = []
    for k in levels:
        counting = Counting(base)
        policy: Policy = counting if args.api_base else BatchingPolicy(counting, max_batch=32)
        before = getattr(base, "decode_stats", None)
        before = before.copy() if before is not None else None
        cpu = time.process_time()
        started = time.perf_counter()
        done = list(
            run_many(
                questions, policy=policy, web=web, reward=None, config=config, n=args.n,
                concurrency=k, procedure=procedure,
            )
        )  # fmt: skip
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        stats = policy.stats if isinstance(policy, BatchingPolicy) else None
        if isinstance(policy, BatchingPolicy):
            policy.close()
        print(f"K={k}: {len(done)} questions in {seconds:.0f} s", file=sys.stderr, flush=True)
        runs.append(
            {
                "concurrency": k,
                "seconds": round(seconds, 1),
                "questions_per_minute": round(len(done) / seconds * 60, 3),
                "tokens_per_second": round(counting.tokens / seconds, 2),
                "prompt_tokens_per_second": round(counting.prompt_tokens / seconds, 1),
                "model_calls": counting.calls,
                "mean_batch": round(stats.items / stats.batches, 2) if stats else None,
                "failed": sum(not d.ok for d in done),
                "answers": {d.question.id: d.answer for d in done},
                # where the time went: CPU use, time inside model calls, and (local model)
                # prefill and decode steps; the rest is browsing and page ranking
                "cpu_cores_busy": round(cpu / seconds, 2),
                "model_seconds": round(counting.model_seconds, 1),
                **_decode_split(before, getattr(base, "decode_stats", None)),
            }
        )
    one = next((r for r in runs if r["concurrency"] == 1), None)
    for r in runs:
        if one:
            r["speedup_vs_one_stream"] = round(
                r["questions_per_minute"] / one["questions_per_minute"], 2
            )
            r["tokens_speedup_vs_one_stream"] = round(
                r["tokens_per_second"] / max(one["tokens_per_second"], 1e-9), 2
            )
    report = {
        "benchmark": "throughput",
        "model": base.name,
        "questions": len(questions),
        "source": str(Path(args.questions).resolve()),
        "max_actions": args.max_actions,
        "n": args.n,
        "machine": machine_report(),
        "precision": precision_report(base),
        "runs": runs,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
