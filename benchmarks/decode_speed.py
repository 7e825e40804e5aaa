"""How fast a local model loads and decodes on this machine; prints one JSON object.

    python benchmarks/decode_speed.py                        # qwen-0.5b (minutes)
    python benchmarks/decode_speed.py --preset smollm2-135m  # quick

Cold load is the first start: join the GGUF pieces (``assemble_s``), dequantise and
write the bf16 copy, then load it. Warm load is every later start, measured both in
this process (torch already imported) and as a fresh process (imports included).
Decoding is greedy, on prompts that make the model write at length; the batch run
decodes 4 different prompts in one batch and reports aggregate tokens per second.
Tokens per second include each request's prefill (prompt) pass.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from webqa.models.base import GenerationRequest, Message
from webqa.models.local import LocalPolicy
from webqa.models.presets import resolve_model

PROMPTS = (
    "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle.",
    "Explain in detail how a steam engine works, step by step.",
    "Describe the history of the printing press in several paragraphs.",
    "Write a long essay about why people enjoy walking in forests.",
)

WARM_START = """
import sys, time
started = time.perf_counter()
from pathlib import Path
from webqa.models.local import LocalPolicy
policy = LocalPolicy(sys.argv[1], cache_dir=Path(sys.argv[2]), threads=int(sys.argv[3]))
policy.load()
print(time.perf_counter() - started)
"""


def requests(prompts: tuple[str, ...], tokens: int) -> list[GenerationRequest]:
    return [GenerationRequest(chat=[Message("user", p)], max_new_tokens=tokens) for p in prompts]


def timed(policy: LocalPolicy, batch: list[GenerationRequest]) -> tuple[float, int]:
    started = time.perf_counter()
    results = policy.generate(batch)
    return time.perf_counter() - started, sum(r.tokens for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="qwen-0.5b")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per sequence")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="reuse this cache (default: a fresh temporary folder, so cold)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="webqa-bench-") as scratch:
        cache = args.cache_dir or Path(scratch)
        started = time.perf_counter()
        resolve_model(args.preset, cache_dir=cache).gguf_file()
        assemble_s = time.perf_counter() - started

        cold = LocalPolicy(args.preset, cache_dir=cache, threads=args.threads)
        cold.load()
        cold_load_s, converted = cold.load_seconds or 0.0, cold.converted
        del cold

        warm = LocalPolicy(args.preset, cache_dir=cache, threads=args.threads)
        warm.load()
        process = subprocess.run(
            [sys.executable, "-c", WARM_START, args.preset, str(cache), str(warm.threads)],
            capture_output=True,
            text=True,
            check=True,
        )

        warm.generate(requests(PROMPTS[:1], 4))  # first-call overheads out of the way
        single_s, single_tokens = 0.0, 0
        for prompt in PROMPTS:
            seconds, tokens = timed(warm, requests((prompt,), args.tokens))
            single_s, single_tokens = single_s + seconds, single_tokens + tokens
        batch_s, batch_tokens = timed(warm, requests(PROMPTS, args.tokens))

    report = {
        "preset": args.preset,
        # Other work on a shared machine slows every number below; this shows how much.
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "threads": warm.threads,
        "dtype": warm.dtype,
        "assemble_s": round(assemble_s, 2),
        "cold_load_s": round(assemble_s + cold_load_s, 2),
        "cold_converted": converted,
        "warm_load_s": round(warm.load_seconds or 0.0, 2),
        "warm_start_process_s": round(float(process.stdout.strip().splitlines()[-1]), 2),
        "single_stream_tok_s": round(single_tokens / single_s, 2),
        "single_stream_tokens": single_tokens,
        "batch4_aggregate_tok_s": round(batch_tokens / batch_s, 2),
        "batch4_tokens": batch_tokens,
        "batch4_vs_4_singles": round(batch_s / single_s, 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
