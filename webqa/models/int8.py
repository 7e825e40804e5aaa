"""Int8 decode steps for a float32 causal LM (the ``int8`` precision; see ``hardware``).

``add_int8_twins(model, cache_file)`` gives every ``torch.nn.Linear`` of the model an
int8 twin (weights quantised per output channel, symmetric; activations quantised per
row by fbgemm's dynamic linear kernel, on rows scaled to one range) and routes by
input: a forward pass that feeds one token a row (a decode step) runs the twin, one
that feeds more (a prompt, forced text) runs the float32 layer. The output head only
ever sees one position a row (``logits_to_keep=1``), so it keeps the twin alone and its
float copy is freed.

Quantising the 0.5B model's weights takes a few seconds, so the int8 weights and scales
are cached in ``cache_file`` (safetensors, written atomically, stamped with what they
were made from); later loads read them and only repack them for the kernel, in threads.

This module imports torch at the top, so only ``LocalPolicy.load`` imports it.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "webqa-int8-v1"


class SplitLinear(nn.Module):
    """A linear layer with an int8 twin for one-token rows (see the module docstring)."""

    def __init__(self, full: nn.Linear | None, int8: Any, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.full = full
        self.int8 = int8  # takes the input's two extra columns (see forward), no bias
        self.bias = bias
        self.in_features = int8.in_features - 2
        self.out_features = int8.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.full is not None and (x.dim() < 2 or x.shape[-2] != 1):
            return self.full(x)
        # Each row is scaled to max |x| = 1 and given the two constant inputs +1 and -1
        # (their weights are zero), so every row spans exactly [-1, 1]: the kernel's one
        # activation scale for the whole batch is then every row's own, and a row's
        # output does not depend on which other rows share its batch.
        scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12)
        ones = x.new_ones((*x.shape[:-1], 1))
        out = self.int8(torch.cat([x / scale, ones, -ones], dim=-1)) * scale
        return out if self.bias is None else out + self.bias


def linear_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``weight ~ q * scale[:, None]``, q in [-127, 127]."""
    weight = weight.detach().float()
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12)
    q = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def int8_linear(q: torch.Tensor, scale: torch.Tensor) -> nn.Module:
    """An fbgemm dynamic int8 linear layer (no bias) from per-row int8 weights and
    scales, with two zero columns after them for SplitLinear's constant inputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

        padded = torch.cat([q, q.new_zeros((q.shape[0], 2))], dim=1)
        qweight = torch._make_per_channel_quantized_tensor(
            padded, scale.double(), torch.zeros(q.shape[0], dtype=torch.long), 0
        )
        layer = DynamicLinear(padded.shape[1], q.shape[0], bias_=False, dtype=torch.qint8)
        layer.set_weight_bias(qweight, None)
    return layer


def add_int8_twins(model: nn.Module, cache_file: Path | None, stamp: str, threads: int = 2) -> None:
    """Give ``model``'s linear layers int8 twins, in place (weights cached in
    ``cache_file`` when it holds ``stamp``; made and written there otherwise)."""
    names = linear_names(model)
    stored = _read(cache_file, stamp, names)
    if stored is None:
        stored = {}
        for name in names:
            linear: Any = model.get_submodule(name)
            q, scale = quantize_rows(linear.weight)
            stored[f"{name}.q"], stored[f"{name}.scale"] = q, scale
        _write(cache_file, stamp, stored)
    getter: Any = getattr(model, "get_output_embeddings", None)
    head = getter() if getter is not None else None

    def build(name: str) -> tuple[str, nn.Module]:
        full: Any = model.get_submodule(name)
        layer = int8_linear(stored[f"{name}.q"], stored[f"{name}.scale"])
        bias = None if full.bias is None else full.bias.detach()
        return name, SplitLinear(None if full is head else full, layer, bias)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # prepacking frees the GIL
        built = list(pool.map(build, names))
    for name, layer in built:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, layer)


def _read(path: Path | None, stamp: str, names: list[str]) -> dict[str, torch.Tensor] | None:
    if path is None or not path.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != FORMAT or meta.get("stamp") != stamp:
                return None
            wanted = [f"{name}.{part}" for name in names for part in ("q", "scale")]
            if not set(wanted) <= set(handle.keys()):
                return None
            return {key: handle.get_tensor(key) for key in wanted}
    except (OSError, SafetensorError, ValueError, RuntimeError):
        return None  # damaged: made again


def _write(path: Path | None, stamp: str, tensors: dict[str, torch.Tensor]) -> None:
    if path is None:
        return
    from safetensors.torch import save_file

    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in tensors.items()},
            str(partial),
            metadata={"format": FORMAT, "stamp": stamp},
        )
        os.replace(partial, path)
    except OSError:  # a read-only cache: quantised again next time
        partial.unlink(missing_ok=True)
