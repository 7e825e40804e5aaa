"""Int8 linear layers for a float32 causal LM (the ``int8`` precision; see ``hardware``).

``add_int8_layers(model, cache_file, stamp, calibration)`` replaces every
``torch.nn.Linear`` of the model with an int8 one: weights quantised per output channel
(symmetric), activations quantised per row (each row scaled to max |x| = 1, then put on
one fixed grid, so a row computes the same in any batch) by torch's fbgemm kernel that
takes the activations' grid as given. Prompts and decode steps both run in int8: a CPU is
compute-bound on prompts, where fbgemm's int8 products run ~2-3x float32's, and
memory-bound on decode steps, where int8 reads a quarter of the bytes. Layers that read
the same input (a block's q/k/v projections, its MLP's gate and up) are one product: a
decode step is then 97 products instead of 169 on Qwen 0.5B, each with its fixed cost of
calls and quantising the row.

Per-row activation quantisation alone is coarse: a few input channels of a transformer's
linear layers carry activations tens of times larger than the rest, and a row's one scale
then rounds the other channels away (measured on Qwen 0.5B: all-int8 forward passes agreed
with float32 on 92.8% of next tokens). So each layer's inputs are smoothed first
(SmoothQuant, Xiao et al. 2023): channel j of the input is divided by
``s_j = max|x_j|^a / max|W_:,j|^(1-a)`` and column j of the weight multiplied by it,
which leaves the product unchanged in exact arithmetic and moves the outliers' range into
the weights, where per-channel scales absorb it. ``max|x_j|`` comes from running the
float32 model once over calibration text (the packaged prompt templates: no data
download, nothing question-specific). With a = 0.65, all-int8 forward passes over eight
browsing episodes' prompts agreed with float32 on 96.1% of next tokens (KL 0.009; a =
0.35, 0.5, 0.8: 95.3%, 94.5%, 95.2%); without smoothing 92.8% (KL 0.025).

A fused unit (q/k/v, gate/up) has one input and so one set of factors, made from the
largest of its layers' weight columns; with a = 0.65 everywhere, fusing raised the KL
from float32 over twelve question-and-quote prompts from 0.032 to 0.057. So each unit
takes, of a in ALPHAS, the one whose int8 product strays least from the float product on
rows sampled from its calibration inputs (per-layer search, as SmoothQuant's later
auto-tuning does): KL 0.038, top-1 agreement 89.6% (unfused 90.3%).

Quantising and calibrating the 0.5B model takes tens of seconds, so the int8 weights,
scales and smoothing factors are cached in ``cache_file`` (safetensors, written
atomically, stamped with what they were made from); later loads read them and only
repack them for the kernel, in threads.

This module imports torch at the top, so only ``LocalPolicy.load`` imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "webqa-int8-v3"
ALPHA = 0.65  # SmoothQuant's migration strength: how much of the outliers' range moves


class Int8Linear(nn.Module):
    """A linear layer computed in int8 (see the module docstring) from per-output-row
    int8 weights ``q`` and their ``scale``."""

    def __init__(
        self,
        q: torch.Tensor,
        scale: torch.Tensor,
        smooth: torch.Tensor | None,
        bias: torch.Tensor | None,
    ) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notices
            weight = torch._make_per_channel_quantized_tensor(
                q, scale.double(), torch.zeros(q.shape[0], dtype=torch.long), 0
            )
            self.packed = torch.ops.quantized.linear_prepack(weight, None)
        self.smooth = smooth  # 1/s per input channel, or None
        self.bias = bias
        self.out_features, self.in_features = q.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.smooth is not None:
            x = x * self.smooth
        # Each row is scaled to max |x| = 1 and quantised on the fixed grid of [-1, 1]
        # (7 bits, as fbgemm's dynamic linear does on x86, whose u8 x s8 pairs would
        # overflow with 8): a row's quantisation is its own, so its output does not
        # depend on which other rows share its batch.
        scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12)
        out = _LINEAR(x / scale, _STEP, _ZERO, self.packed) * scale
        return out if self.bias is None else out + self.bias


_STEP, _ZERO = 2 / 127, 64  # the activation grid: 0..127 covers [-1, 1]
_LINEAR = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32


class Int8Group:
    """One int8 product for sibling layers that read the same input (a block's query,
    key and value projections; an MLP's gate and up projections): computed when the
    first of them is called with an input and handed out part by part, a third of the
    calls for q/k/v. An input the group has not seen, or a part asked for twice, runs
    the product again, so any calling order computes the right thing."""

    def __init__(self, linear: Int8Linear, sizes: list[int]) -> None:
        self.linear = linear
        self.sizes = sizes
        self._last: tuple[torch.Tensor, int, tuple[torch.Tensor, ...], set[int]] | None = None

    def part(self, x: torch.Tensor, index: int) -> torch.Tensor:
        last, version = self._last, _version(x)
        if last is None or last[0] is not x or last[1] != version or index in last[3]:
            last = (x, version, self.linear(x).split(self.sizes, dim=-1), set())
        last[3].add(index)
        # let go of the input and outputs once every part has been handed out
        self._last = None if len(last[3]) == len(self.sizes) else last
        return last[2][index]


def _version(x: torch.Tensor) -> int:
    """x's in-place change counter (-1 for inference tensors, which keep none)."""
    return -1 if x.is_inference() else x._version


class Int8Part(nn.Module):
    """One sibling's share of an Int8Group (the first part holds the group's layer as
    its submodule, so the model's modules list it once)."""

    def __init__(self, group: Int8Group, index: int) -> None:
        super().__init__()
        self.group = group
        self.index = index
        if index == 0:
            self.shared = group.linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.group.part(x, self.index)


def linear_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``weight ~ q * scale[:, None]``, q in [-127, 127]."""
    weight = weight.detach().float()
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12)
    q = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def input_ranges(
    model: nn.Module, sequences: Sequence[Sequence[int]], every: int = 8
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """max |input| per input channel of every linear layer, over ``sequences`` of token
    ids run through ``model`` (one float forward pass each); and every ``every``-th input
    row each layer saw (a sample to measure quantisation error on)."""
    ranges: dict[str, torch.Tensor] = {}
    rows: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for name in linear_names(model):

        def hook(module: nn.Module, args: tuple[Any, ...], output: Any, name: str = name) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            seen = x.abs().amax(dim=0)
            ranges[name] = seen if name not in ranges else torch.maximum(ranges[name], seen)
            rows.setdefault(name, []).append(x[::every].clone())

        hooks.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        with torch.inference_mode():
            for ids in sequences:
                model(torch.tensor([list(ids)]), use_cache=False, logits_to_keep=1)
    finally:
        for handle in hooks:
            handle.remove()
    return ranges, {name: torch.cat(found) for name, found in rows.items()}


ALPHAS = (0.35, 0.5, 0.65, 0.8)  # the migration strengths best_smoothing tries


def best_smoothing(
    weight: torch.Tensor, seen: torch.Tensor | None, sample: torch.Tensor | None
) -> torch.Tensor:
    """The smoothing factors, of ALPHAS, whose int8 product strays least from the float
    one on ``sample`` (relative squared error); ALPHA's where nothing was seen."""
    if seen is None or sample is None or not len(sample):
        return smoothing(weight, seen)
    with torch.inference_mode():
        exact = sample @ weight.t()
        best, chosen = float("inf"), smoothing(weight, seen)
        for alpha in ALPHAS:
            s = smoothing(weight, seen, alpha)
            got = Int8Linear(*quantize_rows(weight * s[None, :]), 1.0 / s, None)(sample)
            error = float((got - exact).pow(2).sum() / exact.pow(2).sum().clamp(min=1e-30))
            if error < best:
                best, chosen = error, s
    return chosen


def smoothing(
    weight: torch.Tensor, seen: torch.Tensor | None, alpha: float = ALPHA
) -> torch.Tensor:
    """SmoothQuant's per-input-channel factors s (see the module docstring): ones where
    the channel's input range is unknown."""
    if seen is None:
        return torch.ones(weight.shape[1])
    w = weight.detach().float().abs().amax(dim=0).clamp(min=1e-5)
    return (seen.clamp(min=1e-5) ** alpha / w ** (1 - alpha)).clamp(min=1e-5, max=1e5)


def calibration_stamp(sequences: Sequence[Sequence[int]]) -> str:
    digest = hashlib.sha256(f"{FORMAT}|{ALPHA}|{ALPHAS}".encode())
    for ids in sequences:
        digest.update(b"|" + ",".join(map(str, ids)).encode())
    return digest.hexdigest()[:16]


SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def units(model: nn.Module, ranges: dict[str, torch.Tensor] | None = None) -> list[list[str]]:
    """The model's linear layers in product units: a SIBLINGS set under one parent (all
    present, same input width and, where ``ranges`` are known, the same input seen in
    calibration) is one unit; every other layer is a unit of its own."""
    names = linear_names(model)
    grouped: set[str] = set()
    found: list[list[str]] = []
    for name in names:
        parent, _, attr = name.rpartition(".")
        for siblings in SIBLINGS:
            if attr != siblings[0]:
                continue
            members = [f"{parent}.{s}" if parent else s for s in siblings]
            if not all(m in names for m in members):
                continue
            widths = {_linear(model, m).in_features for m in members}
            same = ranges is None or all(
                m in ranges and torch.equal(ranges[m], ranges[members[0]]) for m in members
            )
            if len(widths) == 1 and same:
                found.append(members)
                grouped.update(members)
    return found + [[name] for name in names if name not in grouped]


def add_int8_layers(
    model: nn.Module,
    cache_file: Path | None,
    stamp: str,
    calibration: Sequence[Sequence[int]] = (),
    threads: int = 2,
) -> None:
    """Replace ``model``'s linear layers with int8 ones, in place (weights cached in
    ``cache_file`` when it holds ``stamp`` and this calibration; made and written there
    otherwise). Siblings that read the same input become one product (see Int8Group)."""
    names = linear_names(model)
    stamp = f"{stamp}|{calibration_stamp(calibration)}"
    stored = _read(cache_file, stamp, names)
    if stored is None:
        ranges, samples = input_ranges(model, calibration) if calibration else ({}, {})
        layout = units(model, ranges if calibration else None)
        tensors: dict[str, torch.Tensor] = {}
        for unit in layout:
            weight = torch.cat([_linear(model, n).weight.detach().float() for n in unit])
            s = best_smoothing(weight, ranges.get(unit[0]), samples.get(unit[0]))
            key = _key(unit)
            tensors[f"{key}.q"], tensors[f"{key}.scale"] = quantize_rows(weight * s[None, :])
            tensors[f"{key}.smooth"] = 1.0 / s
        stored = (layout, tensors)
        _write(cache_file, stamp, stored)
    layout, tensors = stored

    def build(unit: list[str]) -> tuple[list[str], Int8Linear]:
        key = _key(unit)
        layers = [_linear(model, n) for n in unit]
        bias = None
        if any(m.bias is not None for m in layers):
            bias = torch.cat(
                [
                    m.bias.detach().float() if m.bias is not None else torch.zeros(m.out_features)
                    for m in layers
                ]
            )
        smooth = tensors[f"{key}.smooth"].float()
        keep = None if bool((smooth == 1).all()) else smooth
        return unit, Int8Linear(tensors[f"{key}.q"], tensors[f"{key}.scale"], keep, bias)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # prepacking frees the GIL
        built = list(pool.map(build, layout))
    for unit, layer in built:
        if len(unit) == 1:
            replacements: list[tuple[str, nn.Module]] = [(unit[0], layer)]
        else:
            group = Int8Group(layer, [_linear(model, n).out_features for n in unit])
            replacements = [(n, Int8Part(group, i)) for i, n in enumerate(unit)]
        for name, module in replacements:
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, module)


def _linear(model: nn.Module, name: str) -> nn.Linear:
    layer = model.get_submodule(name)
    assert isinstance(layer, nn.Linear)
    return layer


def _key(unit: list[str]) -> str:
    """A unit's name in the cache file: its layers' names joined by '+'."""
    return "+".join(unit)


def _read(
    path: Path | None, stamp: str, names: list[str]
) -> tuple[list[list[str]], dict[str, torch.Tensor]] | None:
    if path is None or not path.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != FORMAT or meta.get("stamp") != stamp:
                return None
            layout = json.loads(meta.get("units", "null"))
            if not isinstance(layout, list) or sorted(n for u in layout for n in u) != sorted(
                names
            ):
                return None  # made for another model's layers
            wanted = [f"{_key(u)}.{part}" for u in layout for part in ("q", "scale", "smooth")]
            if not set(wanted) <= set(handle.keys()):
                return None
            return layout, {key: handle.get_tensor(key) for key in wanted}
    except (OSError, SafetensorError, ValueError, RuntimeError, TypeError):
        return None  # damaged: made again


def _write(
    path: Path | None, stamp: str, stored: tuple[list[list[str]], dict[str, torch.Tensor]]
) -> None:
    if path is None:
        return
    from safetensors.torch import save_file

    layout, tensors = stored
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in tensors.items()},
            str(partial),
            metadata={"format": FORMAT, "stamp": stamp, "units": json.dumps(layout)},
        )
        os.replace(partial, path)
    except OSError:  # a read-only cache: quantised again next time
        partial.unlink(missing_ok=True)
