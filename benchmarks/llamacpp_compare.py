"""webqa's local model against llama.cpp: the same GGUF, machine, prompt and threads.

Prints one JSON object: for each engine, prefill speed (prompt tokens per second over a
prompt of about ``--prompt-tokens`` tokens of real text: the dev questions and their
evidence, over and over) and single-stream decode speed (greedy, ``--new-tokens`` new
tokens after that prompt; decode steps per second, a step being one forward pass of one
new token, sampling not included); for webqa also batched decode (4 rows in one
``generate`` call: rows per second summed over the batch). llama-cpp-python has no
batched generation API, so llama.cpp's batched figure is null. Last, the ratios
webqa / llama.cpp of prefill and of decode speed (above 1: webqa is faster).

llama.cpp runs the GGUF's quantised weights as they are (Q4_K_M for qwen-0.5b); webqa
dequantises the GGUF once and runs the precision it chooses for this CPU (``--dtype``,
``precision`` in the output: bf16 where the CPU multiplies it natively, else float32
prompts with int8 decode steps or float32; see ``webqa.models.hardware``). Each engine
runs ``--repeats`` times, interleaved, and the best speed of each is kept. webqa runs
without its prefix cache, so that the whole prompt is timed.

``decode_wall_tok_s`` is tokens per second from the end of the prefill to the last
token, sampling and (webqa) Python bookkeeping included. llama.cpp never stops at EOS
here; webqa's greedy decoding does, so each engine's ``tokens`` says how many it made.

llama.cpp runs through llama-cpp-python, which is not a webqa dependency:

    .venv/bin/pip install llama-cpp-python   # builds llama.cpp from source (~8 min)

    .venv/bin/python benchmarks/llamacpp_compare.py                 # qwen-0.5b (minutes)
    .venv/bin/python benchmarks/llamacpp_compare.py --model smollm2-135m \\
        --new-tokens 16 --prompt-tokens 200                           # quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

# (importing webqa, here or through machine, sets OMP_WAIT_POLICY before torch or
# llama.cpp start an OpenMP runtime: both engines' idle threads sleep, not spin)
from machine import machine_report, precision_report

from webqa import prompting
from webqa.models.base import Chat, GenerationRequest, Message
from webqa.models.local import LocalPolicy, default_threads
from webqa.models.presets import resolve_model

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "dev.jsonl"
N_CTX = 4096
SYSTEM = "You are a careful assistant. Answer only from the notes the user gives."
# the closing request of each row: the single stream uses the first, the batch all four
ASKS = (
    "Summarise the notes above in detail, one fact per line, in the order given.",
    "Write a long report on the countries and people these notes mention.",
    "List every number in the notes above and say what each one counts.",
    "Explain, question by question, how the evidence answers each question.",
)
INSTALL = (
    "llama-cpp-python is not installed; install it with "
    "`.venv/bin/pip install llama-cpp-python` (builds llama.cpp from source, ~8 min)"
)


def import_llama_cpp() -> ModuleType:
    """The llama_cpp module, or exit 1 with a one-line message saying how to install it."""
    try:
        import llama_cpp
    except ImportError as error:
        print(f"llamacpp_compare: {INSTALL} ({error})", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as error:  # installed, but its shared library does not load
        print(f"llamacpp_compare: llama-cpp-python fails to load: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    return llama_cpp


def notes(dev: Path) -> tuple[list[str], str]:
    """Paragraphs of real text to fill the prompt with, and where they come from."""
    if dev.is_file():
        rows = [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines()]
        found = [
            f"Question: {r['question']}\nEvidence: {r.get('evidence') or 'none'}\n"
            for r in rows
            if r.get("question")
        ]
        if found:
            return found, str(dev)
    # no dev questions here: webqa's own browsing instructions are real text too
    text = prompting.load("browse_system")
    return [p + "\n" for p in text.split("\n\n") if p.strip()], "prompt browse_system"


def chats(policy: LocalPolicy, paragraphs: list[str], tokens: int) -> list[Chat]:
    """One chat per ASKS, each whose prompt has the same notes of about ``tokens`` tokens
    (whole paragraphs, over and over, until the first chat's prompt reaches it)."""

    def chat(body: str, ask: str) -> Chat:
        return [Message("system", SYSTEM), Message("user", f"Notes:\n{body}\n{ask}")]

    body, i = "", 0
    while len(policy.encode_chat(chat(body, ASKS[0]))) < tokens:
        body += paragraphs[i % len(paragraphs)]
        i += 1
    return [chat(body, ask) for ask in ASKS]


def rendered(policy: LocalPolicy, chat: Chat) -> str:
    """The prompt text webqa tokenizes for ``chat`` (its chat template applied)."""
    messages = [{"role": m.role, "content": m.content} for m in chat]
    return str(
        policy._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    )


def run_llama(llm: Any, tokens: list[int], new_tokens: int) -> dict[str, Any]:
    """One greedy run: prefill ``tokens``, then ``new_tokens`` tokens (EOS not obeyed)."""
    llm.reset()
    started = time.perf_counter()
    llm.eval(tokens)
    prefill_s = time.perf_counter() - started
    decode_started = time.perf_counter()
    out = [llm.sample(temp=0.0)]  # from the prompt's logits
    step_s = 0.0
    while len(out) < new_tokens:
        started = time.perf_counter()
        llm.eval([out[-1]])
        step_s += time.perf_counter() - started
        out.append(llm.sample(temp=0.0))
    decode_wall = time.perf_counter() - decode_started
    steps = len(out) - 1
    return {
        "prefill_tok_s": len(tokens) / prefill_s,
        "decode_tok_s": steps / step_s if step_s else None,
        "decode_wall_tok_s": steps / decode_wall if steps else None,
        "tokens": len(out),
        "text": llm.detokenize(out).decode("utf-8", errors="replace"),
    }


def run_webqa(policy: LocalPolicy, batch: list[Chat], new_tokens: int) -> dict[str, Any]:
    """One greedy ``generate`` call over ``batch``; speeds from ``policy.decode_stats``."""
    requests = [GenerationRequest(chat=chat, max_new_tokens=new_tokens) for chat in batch]
    before = policy.decode_stats.copy()
    started = time.perf_counter()
    results = policy.generate(requests)
    wall = time.perf_counter() - started
    after = policy.decode_stats
    prefill_s = after.prefill_seconds - before.prefill_seconds
    step_s = after.step_seconds - before.step_seconds
    rows = after.step_rows - before.step_rows
    return {
        "prefill_tok_s": (after.prefill_tokens - before.prefill_tokens) / prefill_s,
        "decode_tok_s": rows / step_s if step_s else None,
        "decode_wall_tok_s": rows / (wall - prefill_s) if rows else None,
        "tokens": sum(r.tokens for r in results),
        "text": results[0].text,
    }


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each speed's best over ``runs`` (rounded); tokens and text of the last run."""
    report: dict[str, Any] = {}
    for key in ("prefill_tok_s", "decode_tok_s", "decode_wall_tok_s"):
        values = [r[key] for r in runs if r[key] is not None]
        report[key] = round(max(values), 2) if values else None
    report["tokens"] = runs[-1]["tokens"]
    report["text"] = runs[-1]["text"][:200]
    return report


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen-0.5b", help="a preset or a .gguf path")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens to decode")
    parser.add_argument("--prompt-tokens", type=int, default=700, help="the prompt's length")
    parser.add_argument(
        "--dtype", default="auto", help="webqa's precision: auto, bfloat16, float32, int8"
    )
    parser.add_argument("--threads", type=int, default=None, help="default: webqa's default")
    parser.add_argument("--repeats", type=int, default=2, help="runs per engine (best kept)")
    parser.add_argument("--dev", type=Path, default=DEV, help="questions to make the prompt")
    args = parser.parse_args(argv)
    if args.new_tokens < 2 or args.prompt_tokens < 1 or args.repeats < 1:
        parser.error("--new-tokens must be at least 2, --prompt-tokens and --repeats 1")
    llama_cpp = import_llama_cpp()
    threads = args.threads or default_threads()

    # webqa first: a first load may convert the GGUF and then delete a joined copy
    policy = LocalPolicy(args.model, dtype=args.dtype, threads=threads, prefix_cache=False)
    policy.load()
    paragraphs, source = notes(args.dev)
    batch = chats(policy, paragraphs, args.prompt_tokens)
    webqa_ids = policy.encode_chat(batch[0])

    resolved = resolve_model(args.model)
    joined_before = resolved.path.is_file()
    gguf = resolved.gguf_file()
    started = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(gguf),
        n_ctx=N_CTX,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        verbose=False,
    )
    llama_load_s = time.perf_counter() - started
    llama_ids = llm.tokenize(
        rendered(policy, batch[0]).encode("utf-8"), add_bos=False, special=True
    )
    if len(llama_ids) + args.new_tokens > N_CTX:
        parser.error(f"prompt ({len(llama_ids)}) + new tokens exceed the context ({N_CTX})")

    llama_runs, single_runs, batch_runs = [], [], []
    for _ in range(args.repeats):  # interleaved: a change in the machine's load hits both
        llama_runs.append(run_llama(llm, llama_ids, args.new_tokens))
        single_runs.append(run_webqa(policy, batch[:1], args.new_tokens))
        batch_runs.append(run_webqa(policy, batch, args.new_tokens))
    del llm
    if not joined_before:
        resolved.discard_joined()  # leave the data directory as it was

    llama = best(llama_runs)
    single = best(single_runs)
    batched = best(batch_runs)
    report = {
        "benchmark": "llamacpp_compare",
        "model": args.model,
        "gguf": str(gguf),
        "gguf_mb": round(gguf.stat().st_size / 1e6, 1) if gguf.is_file() else None,
        "machine": machine_report(),
        "precision": precision_report(policy),
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),  # both engines' OpenMP
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "prompt": {
            "source": source,
            "webqa_tokens": len(webqa_ids),
            "llama_cpp_tokens": len(llama_ids),
            "same_tokens": list(webqa_ids) == list(llama_ids),
        },
        "llama_cpp": {
            "version": getattr(llama_cpp, "__version__", None),
            "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
            "load_s": round(llama_load_s, 2),
            **llama,
            "batch4_decode_tok_s": None,
            "batch4_note": "llama-cpp-python has no batched generation API",
        },
        "webqa": {
            "precision": policy.precision,
            "load_s": round(policy.load_seconds or 0.0, 2),
            **single,
            "batch4_prefill_tok_s": batched["prefill_tok_s"],
            "batch4_decode_tok_s": batched["decode_tok_s"],  # rows/s summed over 4 rows
            "batch4_decode_wall_tok_s": batched["decode_wall_tok_s"],
            "batch4_tokens": batched["tokens"],
        },
        "webqa_over_llama_cpp": {
            "prefill": ratio(single["prefill_tok_s"], llama["prefill_tok_s"]),
            "decode": ratio(single["decode_tok_s"], llama["decode_tok_s"]),
        },
        # other work on a shared machine slows every number above; this shows how much
        "load_average_1min_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
