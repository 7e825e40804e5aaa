"""Speed of `webqa ask` on this machine; prints one JSON object.

- cold_start_s: `webqa ask` in a fresh data directory (builds the corpus, converts the
  model's GGUF to cached bf16 weights, then answers);
- warm_start_s: the same command again (everything cached; the model worker the cold run
  started answers it);
- first_command_s: in a fresh process with warm caches, from start to the first
  browser command (imports, model load, corpus open; guided browsing's first command is
  the question as the search); first_model_command_s: to the first command the model
  chose (adds the MiniLM load and the first decode);
- warm_dev_s, warm_dev_median_s: warm `webqa ask` on the first --dev questions of
  ../shared/eval/dev.jsonl (default 5), answered by the model worker that the runs before
  started (as a person's second ask is); warm_dev_no_worker_s and
  warm_dev_no_worker_median_s: the same with WEBQA_KEEP_ALIVE=0 (each ask a fresh
  process that loads everything); the worker is stopped at the end;
- best_of_4_batched_s vs four_sequential_s: n=4 episodes advancing together (one
  batched forward pass per step) against four single episodes run one after another,
  same seeds and temperature, and their ratio;
- machine: the CPU (``webqa.models.hardware.cpu_info``); precision: the precision local
  models run in here and why (``choose_precision``, as the ``webqa ask`` runs chose it).

    python benchmarks/speed.py [--model qwen-0.5b] [--question "..."] [--skip-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEBQA = [sys.executable, "-m", "webqa.cli"]


def timed_ask(home: str, question: str, model: str, *, worker: bool = True) -> float:
    env = dict(os.environ, WEBQA_HOME=home)
    if not worker:
        env["WEBQA_KEEP_ALIVE"] = "0"
    start = time.perf_counter()
    subprocess.run(
        [*WEBQA, "ask", question, "--json", "--model", model],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


FIRST_COMMAND = """
import sys, time
t0 = time.perf_counter()
from webqa import api
from webqa.agent import run_question
policy = api.load_policy(sys.argv[2]); web = api.open_web()
config = api.agent_config(None, n=1, max_actions=20, temperature=None, seed=0)
class Done(Exception): pass
seen = []
def on_event(e):
    if e.kind == "command":
        seen.append(time.perf_counter() - t0)
        print(seen[-1], flush=True)
        if len(seen) == 2:
            raise Done
try:
    run_question(sys.argv[1], policy=policy, web=web, reward=None, on_event=on_event,
                 config=config, procedure=api.browsing_procedure(None, None))
except Done:
    pass
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen-0.5b")
    ap.add_argument("--question", default="What is the capital of Burkina Faso?")
    ap.add_argument("--home", help="data directory to use (default: a fresh temporary one)")
    ap.add_argument("--skip-cold", action="store_true", help="reuse --home, skip the cold run")
    ap.add_argument(
        "--dev",
        type=int,
        default=5,
        help="also time a warm `webqa ask` on this many dev questions (median; 0: skip)",
    )
    ap.add_argument(
        "--only-warm", action="store_true", help="stop after the warm runs (no best-of-4 part)"
    )
    args = ap.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="webqa-speed-")
    report: dict[str, object] = {"model": args.model, "machine": None, "precision": None}
    if not args.skip_cold:
        report["cold_start_s"] = round(timed_ask(home, args.question, args.model), 1)
    report["warm_start_s"] = round(timed_ask(home, args.question, args.model), 1)
    if args.dev:
        dev = ROOT.parent / "shared" / "eval" / "dev.jsonl"
        questions = [json.loads(line)["question"] for line in dev.open() if line.strip()]
        times = [timed_ask(home, q, args.model) for q in questions[: args.dev]]
        report["warm_dev_s"] = [round(t, 1) for t in times]
        report["warm_dev_median_s"] = round(statistics.median(times), 1)
        alone = [timed_ask(home, q, args.model, worker=False) for q in questions[: args.dev]]
        report["warm_dev_no_worker_s"] = [round(t, 1) for t in alone]
        report["warm_dev_no_worker_median_s"] = round(statistics.median(alone), 1)
    subprocess.run(  # the worker the asks started: its memory back before what follows
        [*WEBQA, "worker", "stop"],
        env=dict(os.environ, WEBQA_HOME=home),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    env = dict(os.environ, WEBQA_HOME=home)
    out = subprocess.run(
        [sys.executable, "-c", FIRST_COMMAND, args.question, args.model],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    firsts = [float(t) for t in out.strip().splitlines()]
    report["first_command_s"] = round(firsts[0], 1)
    report["first_model_command_s"] = round(firsts[1], 1)

    os.environ["WEBQA_HOME"] = home
    from dataclasses import replace

    from machine import chosen_precision, machine_report

    from webqa import api
    from webqa.agent import run_question
    from webqa.models.embed import shared_embedder

    report["machine"] = machine_report()
    # the precision the `webqa ask` runs above chose (cached in `home` by the first)
    report["precision"] = chosen_precision()
    if args.only_warm:
        print(json.dumps(report, indent=2))
        return
    policy = api.load_policy(args.model)
    web = api.open_web()
    guided = api.browsing_procedure(None, None)
    # best-of-4's settings, every episode sampled (no greedy one) so that the four
    # sequential runs below are the same episodes
    config = replace(
        api.agent_config(None, n=4, max_actions=20, temperature=None, seed=0),
        greedy_first=False,
    )
    # untimed: load the models and the index, and compute the system prompt's cache, so
    # that neither timed run pays for what the other then gets for free; and each timed
    # run starts with no page embeddings kept (both open the same pages)
    run_question(args.question, policy=policy, web=web, reward=None, n=1, procedure=guided)
    shared_embedder().clear()
    start = time.perf_counter()
    batched = run_question(
        args.question, policy=policy, web=web, reward=None, n=4, config=config, procedure=guided
    )
    report["best_of_4_batched_s"] = round(time.perf_counter() - start, 1)
    shared_embedder().clear()
    start = time.perf_counter()
    for i in range(4):
        run_question(
            args.question,
            policy=policy,
            web=web,
            reward=None,
            n=1,
            config=replace(config, seed=i),
            procedure=guided,
        )
    report["four_sequential_s"] = round(time.perf_counter() - start, 1)
    report["batched_over_sequential"] = round(
        report["best_of_4_batched_s"] / report["four_sequential_s"],
        2,  # type: ignore[operator]
    )
    report["batched_actions"] = sum(len(c.steps) for c in batched.candidates)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
