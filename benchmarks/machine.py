"""What every benchmark records about the machine it ran on (imported by its siblings).

Every script here is run as ``python benchmarks/<script>.py``, which puts this folder on
``sys.path``, so ``from machine import machine_report`` finds this module.

- ``machine_report()``: the CPU model, usable cores, the SIMD/matrix flags that decide
  speed (avx2, avx512_bf16, amx_bf16, ...), torch's version and CPU capability, and the
  environment variables that change it (``webqa.models.hardware.cpu_info``);
- ``precision_report(policy)``: the precision a loaded local policy runs in and why
  (precision, source, threads, cpu, probe), or None for a policy behind an API;
- ``chosen_precision(threads)``: the same choice without loading a model, for scripts
  whose model runs in other processes (cached in the data directory: cheap).
"""

from __future__ import annotations

from typing import Any

from webqa.models.hardware import choose_precision, cpu_info


def machine_report() -> dict[str, Any]:
    """The machine, as ``webqa.models.hardware.CpuInfo.to_dict`` gives it."""
    return cpu_info().to_dict()


def precision_report(policy: Any) -> dict[str, Any] | None:
    """``policy.hardware.to_dict()`` for a loaded local policy, else None (a model behind
    an OpenAI-compatible server, or a local one never loaded)."""
    hardware = getattr(policy, "hardware", None)
    return hardware.to_dict() if hardware is not None else None


def chosen_precision(threads: int | None = None) -> dict[str, Any]:
    """The precision local models run in here on ``threads`` threads (default: webqa's
    default thread count), as a loaded ``LocalPolicy`` would choose it."""
    if threads is None:
        from webqa.models.hardware import default_threads

        threads = default_threads()
    return choose_precision(threads).to_dict()
