"""What this CPU computes fast, and so the precision local models run in.

Users' CPUs come in two kinds that matter here. Some multiply bfloat16 natively (Intel
AMX, AVX-512-BF16): there bf16 halves the bytes a step reads and runs matrix products
several times faster than float32. Most (AVX2-only laptops and cloud machines) do not:
torch then emulates bf16, and a bf16 product runs ~100x slower than the same product in
float32 (measured on a 2-core AVX2 AMD EPYC: 0.6 GFLOP/s against 64). A constant cannot
be right on both, so the precision is decided per machine:

- ``WEBQA_DTYPE`` (or ``--dtype``) if set: ``bfloat16``, ``float32`` or ``int8``;
- else a probe, run once and cached in the data directory (``hardware.json``), keyed by
  the CPU, its flags, torch's version and CPU capability and the thread count. It times a
  prompt-shaped product in bf16 and float32 (bf16 only where the CPU's flags could make
  it native) and a one-row product in float32 and int8, well under a second in all.

The precisions (``PRECISIONS``):

- ``bfloat16``: weights and activations in bf16; chosen where the bf16 prompt product
  beats float32's (native bf16) and int8 does not beat bf16 (below).
- ``int8``: every linear layer in int8 (``webqa.models.int8``: weights per output
  channel, activations per row, smoothed per input channel as SmoothQuant does so that a
  few outlier channels do not ruin a row's scale), through torch's fbgemm dynamic int8
  kernels: prompts run ~2-3x float32's speed where a CPU is compute-bound, decode steps
  read a quarter of float32's bytes and half of bf16's. Chosen where it beats the float
  precision this CPU would otherwise run (bf16 where native, else float32): a decode
  step's row clearly (< ``INT8_WIN`` of the float's time) and a prompt's rows at all (a
  question's time is mostly decode steps). On an AVX2 AMD EPYC int8 products beat
  float32's 3x; on an AVX-512-BF16 AMD EPYC (Zen 4, no AMX) a decode step's row takes a
  quarter of bf16's time and a prompt's rows ~0.6-0.75x, and int8 decodes 2.5x faster than
  bf16 there. On the 40 dev questions (n=1) int8 answered 23 right as float32 did on the
  AVX2 CPU, and 25 against float32's 26 on the AVX-512-BF16 one. An earlier int8 (decode
  steps only, no smoothing; prompts in float32) lost 3 and gained none, which is why
  smoothing is there.
- ``float32``: everywhere else.

The sentence embedder and a Hugging Face reward model run in the best float precision
(``Choice.float_precision``): bf16 where it is native, whether or not the policy runs in
int8, else float32.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from webqa.errors import ModelError
from webqa.paths import cache_file, read_json_object, write_json_object

PRECISIONS = ("bfloat16", "float32", "int8")
ENV_VAR = "WEBQA_DTYPE"
CACHE_FILE = "hardware.json"
# the CPU flags that decide speed here (as /proc/cpuinfo spells them)
FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
BF16_WIN = 0.8  # bf16 is chosen when its prompt product takes < 0.8x float32's
INT8_WIN = 0.7  # int8 when its decode-step row takes < 0.7x the float precision's
INT8_AUTO = True  # whether auto may choose int8 (off: only --dtype int8 does)
PROBE_VERSION = 3  # what the probe measures; a cached probe of another version is redone


@dataclass(frozen=True)
class CpuInfo:
    """The machine, as every benchmark records it."""

    model: str  # "AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+", ...
    cores: int  # cores this process may use
    flags: tuple[str, ...]  # those of FLAGS the CPU has
    torch: str | None  # torch's version (None: not installed)
    capability: str | None  # torch's CPU capability: "AVX2", "AVX512", "DEFAULT", ...
    env: dict[str, str] = field(default_factory=dict)  # ATEN_CPU_CAPABILITY etc., if set

    @property
    def native_bf16_flags(self) -> bool:
        """Whether the CPU says it multiplies bf16 natively (the probe still decides)."""
        return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)

    def to_dict(self) -> dict[str, Any]:
        report = asdict(self)
        report["flags"] = list(self.flags)
        report["python"] = platform.python_version()
        return report


def cpu_info() -> CpuInfo:
    """This machine's CPU model, usable cores, speed-relevant flags and torch's view."""
    model, flags = _cpuinfo()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    version = capability = None
    try:
        import torch

        version = str(torch.__version__)
        capability = str(torch.backends.cpu.get_cpu_capability())
    except ImportError:
        pass
    env = {
        name: os.environ[name]
        for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
        if os.environ.get(name)
    }
    return CpuInfo(model, cores, flags, version, capability, env)


def _cpuinfo() -> tuple[str, tuple[str, ...]]:
    model = platform.processor() or platform.machine()
    found: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:  # not Linux
        return model, ()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and value.strip():
            model = value.strip()
        elif key in ("flags", "Features"):
            found.update(value.split())
            break  # every core reports the same
    return model, tuple(flag for flag in FLAGS if flag in found)


@dataclass(frozen=True)
class Probe:
    """Milliseconds for the probe's products, and what they decide."""

    prompt_float32_ms: float
    prompt_bfloat16_ms: float | None  # None: not tried (no native-bf16 flag)
    row_float32_ms: float
    row_int8_ms: float | None  # None: torch has no int8 dynamic linear here
    precision: str
    prompt_int8_ms: float | None = None  # None: as row_int8_ms
    row_bfloat16_ms: float | None = None  # None: not tried (bf16 not native)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bf16_native(prompt_float32_ms: float, prompt_bfloat16_ms: float | None) -> bool:
    """Whether the probe's bf16 prompt product clearly beats float32's (native bf16)."""
    return prompt_bfloat16_ms is not None and prompt_bfloat16_ms < BF16_WIN * prompt_float32_ms


def decide(
    prompt_float32_ms: float,
    prompt_bfloat16_ms: float | None,
    row_float32_ms: float,
    row_int8_ms: float | None,
    prompt_int8_ms: float | None = None,
    row_bfloat16_ms: float | None = None,
    *,
    int8_auto: bool | None = None,
) -> str:
    """The precision the measured times call for (see the module's docstring): the float
    precision (bf16 where native, else float32), unless int8 beats it. int8 is a
    candidate only with ``int8_auto`` (default ``INT8_AUTO``) and only with both its
    products timed; against native bf16, only with bf16's decode-step row timed too."""
    native = bf16_native(prompt_float32_ms, prompt_bfloat16_ms)
    chosen = "bfloat16" if native else "float32"
    prompt_ms, row_ms = (
        (prompt_bfloat16_ms, row_bfloat16_ms) if native else (prompt_float32_ms, row_float32_ms)
    )
    if int8_auto is None:
        int8_auto = INT8_AUTO
    if (
        int8_auto
        and row_int8_ms is not None
        and prompt_int8_ms is not None
        and row_ms is not None
        and prompt_ms is not None
        and row_int8_ms < INT8_WIN * row_ms
        and prompt_int8_ms < prompt_ms
    ):
        return "int8"
    return chosen


def probe(threads: int, *, try_bf16: bool = True) -> Probe:
    """Time the products that decide the precision, on ``threads`` threads (< 1 s)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        # a prompt's slice through a Qwen-0.5B-sized layer: 32 tokens x 896 -> 2432
        x = torch.randn(32, 896, generator=generator)
        w = torch.randn(2432, 896, generator=generator)
        prompt32 = _best_ms(lambda: x @ w.t())
        prompt16 = None
        if try_bf16:
            xb, wb = x.bfloat16(), w.bfloat16()
            # one run first: an emulated bf16 product is ~100x slower; stop there
            first = _best_ms(lambda: xb @ wb.t(), repeats=1)
            prompt16 = first if first > 3 * prompt32 else _best_ms(lambda: xb @ wb.t())
        # a decode step's product: one row through weights that do not fit in cache
        weights = [torch.randn(4864, 896, generator=generator) for _ in range(4)]
        row = torch.randn(1, 896, generator=generator)
        row32 = _best_ms(lambda: [row @ m.t() for m in weights]) / len(weights)
        row16 = None
        if bf16_native(prompt32, prompt16):  # what int8 must beat there
            weights16, row_b = [m.bfloat16() for m in weights], row.bfloat16()
            row16 = _best_ms(lambda: [row_b @ m.t() for m in weights16]) / len(weights16)
        row8 = prompt8 = None
        layers = int8_linears(weights)
        if layers is not None:  # the model's own int8 layers (see Int8Linear)
            row8 = _best_ms(lambda: [layer(row) for layer in layers]) / len(layers)
            square = int8_linears([w])
            if square is not None:
                prompt8 = _best_ms(lambda: square[0](x))
    finally:
        torch.set_num_threads(previous)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return Probe(
        round(prompt32, 4),
        ms(prompt16),
        round(row32, 4),
        ms(row8),
        decide(prompt32, prompt16, row32, row8, prompt8, row16),
        ms(prompt8),
        ms(row16),
    )


def int8_linears(weights: list[Any]) -> list[Any] | None:
    """The int8 decode-step layers the model would use (``webqa.models.int8``) for these
    float32 weights ([out, in]), or None where this torch has no fbgemm dynamic linear
    (``torch.ao`` removed)."""
    try:
        import torch

        from webqa.models.int8 import Int8Linear, quantize_rows

        return [Int8Linear(*quantize_rows(w), torch.ones(w.shape[1]), None) for w in weights]
    except (ImportError, AttributeError, RuntimeError):
        return None


def _best_ms(fn: Callable[[], object], repeats: int = 5) -> float:
    fn()  # warm up (allocations, kernel selection)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def requested_precision() -> str | None:
    """``WEBQA_DTYPE`` if set (checked), else None (let the probe decide)."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value or value == "auto":
        return None
    return check_precision(value, f"${ENV_VAR}")


def check_precision(value: str, where: str = "dtype") -> str:
    aliases = {"bf16": "bfloat16", "fp32": "float32", "float": "float32", "qint8": "int8"}
    value = aliases.get(value.strip().lower(), value.strip().lower())
    if value not in PRECISIONS:
        raise ModelError(
            f"{where}: unknown precision {value!r}; expected auto, {', '.join(PRECISIONS)}"
        )
    return value


@dataclass(frozen=True)
class Choice:
    """The precision in force and why: ``source`` is "override", "probe" or "cached"."""

    precision: str
    source: str
    cpu: CpuInfo
    threads: int
    probe: Probe | None = None

    @property
    def float_precision(self) -> str:
        """The float type for float models (embedder, reward model): bf16 where the
        choice is bf16 or the probe found bf16 native (the policy may run int8), else
        float32."""
        probe = self.probe
        if self.precision == "bfloat16" or (
            probe is not None and bf16_native(probe.prompt_float32_ms, probe.prompt_bfloat16_ms)
        ):
            return "bfloat16"
        return "float32"

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "float_precision": self.float_precision,
            "source": self.source,
            "threads": self.threads,
            "cpu": self.cpu.to_dict(),
            "probe": self.probe.to_dict() if self.probe else None,
        }


_choices: dict[tuple[int, str], Choice] = {}  # (threads, cache file): this process's


def choose_precision(
    threads: int,
    *,
    override: str | None = None,
    cache_dir: Path | None = None,
    measure: Callable[..., Probe] | None = None,
) -> Choice:
    """The precision local models run in on this machine (see the module's docstring).

    ``override`` (else ``WEBQA_DTYPE``) wins; otherwise the cached probe for this CPU,
    torch and thread count, or a fresh probe (``measure``, a seam for tests; default
    ``probe``), cached.
    """
    cpu = cpu_info()
    forced = check_precision(override, "--dtype") if override else requested_precision()
    if forced is not None:
        return Choice(forced, "override", cpu, threads)
    path = _cache_path(cache_dir)
    memo = (threads, str(path))
    if measure is None and memo in _choices:
        return _choices[memo]
    key = _fingerprint(cpu, threads)
    known = read_json_object(path)
    stored = known.get(key)
    if isinstance(stored, dict) and stored.get("precision") in PRECISIONS:
        fields: dict[str, Any] = {k: stored.get(k) for k in Probe.__dataclass_fields__}
        try:  # decided again from the stored times: a newer rule applies to an old probe
            names = ("prompt_float32_ms", "prompt_bfloat16_ms", "row_float32_ms")
            later = ("row_int8_ms", "prompt_int8_ms", "row_bfloat16_ms")
            times = [fields[k] for k in (*names, *later)]
            fields["precision"] = decide(*times)
        except TypeError:  # damaged times: keep what was decided then
            pass
        choice = Choice(fields["precision"], "cached", cpu, threads, Probe(**fields))
    else:
        measured = (measure or probe)(threads, try_bf16=cpu.native_bf16_flags)
        known[key] = measured.to_dict()
        write_json_object(path, known)
        choice = Choice(measured.precision, "probe", cpu, threads, measured)
    if measure is None:
        _choices[memo] = choice
    return choice


def default_threads() -> int:
    """Threads for torch: $WEBQA_THREADS, else every core this process may use (at most
    8), or one fewer where torch's OpenMP threads spin while they wait.

    Spinning is what makes extra threads dangerous: torch's threads wait for each other
    at every operation, so when another busy thread or process takes one of their cores,
    spinning threads slow decoding down several times. Importing webqa before torch sets
    ``OMP_WAIT_POLICY=PASSIVE`` (unless it is set), and then both cores are a clear win
    (measured on this 2-core machine, Qwen 0.5B decoding, tok/s):

    ========================  =========  ==========
    threads, wait policy      quiet      one core busy
    ========================  =========  ==========
    1                         ~11        11.4
    2, spinning (default)     20.1       5.7
    2, passive                15.7       11.3
    ========================  =========  ==========
    """
    override = os.environ.get("WEBQA_THREADS", "").strip()
    if override:
        try:
            return max(1, int(override))
        except ValueError as error:
            raise ModelError(f"WEBQA_THREADS must be a whole number, not {override!r}") from error
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    passive = os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"
    return max(1, min(cores if passive else cores - 1, 8))


def machine_float_dtype() -> str:
    """The float type for float models (embedder, reward model) on this machine: bf16
    where it is native, else float32 (``Choice.float_precision``)."""
    return choose_precision(default_threads()).float_precision


def _fingerprint(cpu: CpuInfo, threads: int) -> str:
    env = ",".join(f"{k}={v}" for k, v in sorted(cpu.env.items()))
    parts = [cpu.model, " ".join(cpu.flags), str(cpu.torch), str(cpu.capability), env]
    return "|".join([*parts, str(threads), f"probe{PROBE_VERSION}"])


def _cache_path(cache_dir: Path | None) -> Path | None:
    if cache_dir is not None:
        return cache_dir / CACHE_FILE
    return cache_file(CACHE_FILE)  # None: no writable data directory, probe every time
