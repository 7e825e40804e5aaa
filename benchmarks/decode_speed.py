"""How fast a local model loads and decodes on this machine; prints one JSON object.

    python benchmarks/decode_speed.py                        # qwen-0.5b (minutes)
    python benchmarks/decode_speed.py --preset smollm2-135m  # quick

Cold load is the first start: join the GGUF pieces (``assemble_s``), dequantise and
write the bf16 copy, then load it. Warm load is every later start, measured both in
this process (torch already imported) and as a fresh process (imports included).
Decoding is greedy, on prompts that make the model write at length; the batch run
decodes 4 different prompts in one batch and reports aggregate tokens per second.
``*_tok_s`` include each request's prefill (prompt) pass; ``*_prefill_tok_s`` and
``*_decode_tok_s`` split them (``DecodeStats``: prompt tokens per second of prefill, and
rows per second of decode steps). ``long_prompt_prefill_tok_s`` times the prefill of one
prompt of ``--prompt-tokens`` tokens (the short prompts above are mostly overhead).

The model runs in the precision ``--dtype`` names (default ``auto``: the one
``webqa.models.hardware`` chooses for this CPU); ``machine`` and ``precision`` in the
output say what the CPU is and what was chosen and why.
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
from typing import Any

from machine import machine_report, precision_report

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
policy = LocalPolicy(
    sys.argv[1], cache_dir=Path(sys.argv[2]), threads=int(sys.argv[3]), dtype=sys.argv[4]
)
policy.load()
print(time.perf_counter() - started)
"""


def requests(prompts: tuple[str, ...], tokens: int) -> list[GenerationRequest]:
    return [GenerationRequest(chat=[Message("user", p)], max_new_tokens=tokens) for p in prompts]


def timed(policy: LocalPolicy, batch: list[GenerationRequest]) -> tuple[float, int]:
    started = time.perf_counter()
    results = policy.generate(batch)
    return time.perf_counter() - started, sum(r.tokens for r in results)


def split(before: Any, after: Any) -> tuple[float | None, float | None]:
    """Prefill (prompt tokens/s) and decode-step (rows/s) speed between two
    ``DecodeStats`` snapshots; None where there was none."""
    prefill_s = after.prefill_seconds - before.prefill_seconds
    step_s = after.step_seconds - before.step_seconds
    prefill = (after.prefill_tokens - before.prefill_tokens) / prefill_s if prefill_s else None
    decode = (after.step_rows - before.step_rows) / step_s if step_s else None
    return (
        None if prefill is None else round(prefill, 2),
        None if decode is None else round(decode, 2),
    )


def long_prompt(policy: LocalPolicy, tokens: int) -> GenerationRequest:
    """A request whose prompt has at least ``tokens`` tokens (the prompts above, over and
    over), for one new token: a prefill and nothing else."""
    text, chat = "", [Message("user", "")]
    while len(policy.encode_chat(chat)) < tokens:
        text += " ".join(PROMPTS) + "\n"
        chat = [Message("user", text)]
    return GenerationRequest(chat=chat, max_new_tokens=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="qwen-0.5b")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per sequence")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--dtype", default="auto", help="auto (this CPU's choice), bfloat16, float32 or int8"
    )
    parser.add_argument(
        "--prompt-tokens", type=int, default=512, help="the long prompt's length (0: skip)"
    )
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

        cold = LocalPolicy(args.preset, cache_dir=cache, threads=args.threads, dtype=args.dtype)
        cold.load()
        cold_load_s, converted = cold.load_seconds or 0.0, cold.converted
        del cold

        # no prefix cache: every prompt's prefill is timed whole
        warm = LocalPolicy(
            args.preset,
            cache_dir=cache,
            threads=args.threads,
            dtype=args.dtype,
            prefix_cache=False,
        )
        warm.load()
        process = subprocess.run(
            [
                sys.executable,
                "-c",
                WARM_START,
                args.preset,
                str(cache),
                str(warm.threads),
                args.dtype,
            ],
            capture_output=True,
            text=True,
            check=True,
        )

        warm.generate(requests(PROMPTS[:1], 4))  # first-call overheads out of the way
        single_s, single_tokens = 0.0, 0
        before = warm.decode_stats.copy()
        for prompt in PROMPTS:
            seconds, tokens = timed(warm, requests((prompt,), args.tokens))
            single_s, single_tokens = single_s + seconds, single_tokens + tokens
        single_prefill, single_decode = split(before, warm.decode_stats)
        before = warm.decode_stats.copy()
        batch_s, batch_tokens = timed(warm, requests(PROMPTS, args.tokens))
        batch_prefill, batch_decode = split(before, warm.decode_stats)
        long_prefill, long_tokens = None, 0
        if args.prompt_tokens > 0:
            request = long_prompt(warm, args.prompt_tokens)
            for _ in range(2):  # the better of two
                before = warm.decode_stats.copy()
                long_tokens = warm.generate([request])[0].prompt_tokens
                speed, _ = split(before, warm.decode_stats)
                if speed is not None and (long_prefill is None or speed > long_prefill):
                    long_prefill = speed

    report = {
        "preset": args.preset,
        # Other work on a shared machine slows every number below; this shows how much.
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "machine": machine_report(),
        "threads": warm.threads,
        "dtype": warm.precision,  # the precision in force (--dtype auto: chosen here)
        "precision": precision_report(warm),
        "assemble_s": round(assemble_s, 2),
        "cold_load_s": round(assemble_s + cold_load_s, 2),
        "cold_converted": converted,
        "warm_load_s": round(warm.load_seconds or 0.0, 2),
        "warm_start_process_s": round(float(process.stdout.strip().splitlines()[-1]), 2),
        "single_stream_tok_s": round(single_tokens / single_s, 2),
        "single_stream_tokens": single_tokens,
        "single_stream_prefill_tok_s": single_prefill,
        "single_stream_decode_tok_s": single_decode,
        "batch4_aggregate_tok_s": round(batch_tokens / batch_s, 2),
        "batch4_tokens": batch_tokens,
        "batch4_prefill_tok_s": batch_prefill,
        "batch4_decode_tok_s": batch_decode,  # rows per second over the 4 rows
        "long_prompt_tokens": long_tokens,
        "long_prompt_prefill_tok_s": long_prefill,
        "batch4_vs_4_singles": round(batch_s / single_s, 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
