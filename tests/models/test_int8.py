"""Int8 layers (webqa.models.int8) on small random weights: close to the float product,
a row computes the same in any batch, and sibling layers fused into one product hand out
the same parts in any calling order."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from webqa.models.int8 import Int8Group, Int8Linear, Int8Part, quantize_rows, units  # noqa: E402


def layer(weight: torch.Tensor, bias: torch.Tensor | None = None) -> Int8Linear:
    return Int8Linear(*quantize_rows(weight), None, bias)


def test_an_int8_layer_is_close_to_the_float_product_and_adds_its_bias() -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 48, generator=generator)
    bias = torch.randn(64, generator=generator)
    x = torch.randn(5, 48, generator=generator)
    exact = x @ weight.t() + bias
    got = layer(weight, bias)(x)
    assert got.shape == exact.shape
    assert (got - exact).norm() / exact.norm() < 0.03  # 7-bit activations, 8-bit weights
    assert not torch.equal(layer(weight)(x), got)  # the bias is added


def test_a_row_computes_the_same_alone_and_in_any_batch() -> None:
    generator = torch.Generator().manual_seed(1)
    int8 = layer(torch.randn(32, 40, generator=generator))
    rows = torch.randn(6, 40, generator=generator)
    rows[2] *= 1000  # a row on a very different scale shares the batch
    together = int8(rows)
    for i in range(len(rows)):
        assert torch.equal(int8(rows[i : i + 1])[0], together[i])
    assert torch.equal(int8(rows.view(2, 3, 40)).view(6, -1), together)  # any leading shape


def test_fused_siblings_hand_out_their_own_products_in_any_order() -> None:
    generator = torch.Generator().manual_seed(2)
    weights = [torch.randn(n, 16, generator=generator) for n in (8, 4, 4)]
    fused = layer(torch.cat(weights))
    group = Int8Group(fused, [8, 4, 4])
    q, k, v = (Int8Part(group, i) for i in range(3))
    x, y = torch.randn(3, 16, generator=generator), torch.randn(3, 16, generator=generator)
    whole = fused(x)
    expected = [whole[:, :8], whole[:, 8:12], whole[:, 12:]]
    for order in ([q, k, v], [v, q, k], [k, k, q, v]):  # a part asked twice runs again
        assert [torch.equal(p(x), expected[p.index]) for p in order] == [True] * len(order)
    assert torch.equal(q(x), expected[0])
    assert torch.equal(k(y), fused(y)[:, 8:12])  # a new input in the middle of a round
    assert torch.equal(v(x), expected[2])
    # each part matches the product of its own weights
    for part, weight in zip((q, k, v), weights, strict=True):
        assert (part(x) - x @ weight.t()).norm() / (x @ weight.t()).norm() < 0.03
    assert group._last is None or len(group._last[3]) < 3  # a finished round lets go


def test_units_fuse_sibling_projections_that_read_the_same_input() -> None:
    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj = (
                nn.Linear(8, 8),
                nn.Linear(8, 2),
                nn.Linear(8, 2),
            )
            self.o_proj = nn.Linear(8, 8)

    class Mlp(nn.Module):
        def __init__(self, up_width: int) -> None:
            super().__init__()
            self.gate_proj, self.up_proj = nn.Linear(8, 16), nn.Linear(up_width, 16)
            self.down_proj = nn.Linear(16, 8)

    model = nn.ModuleDict(
        {"attn": Attention(), "mlp": Mlp(8), "odd": Mlp(4), "head": nn.Linear(8, 3)}
    )
    got = units(model)
    assert ["attn.q_proj", "attn.k_proj", "attn.v_proj"] in got
    assert ["mlp.gate_proj", "mlp.up_proj"] in got
    assert ["odd.gate_proj"] in got and ["odd.up_proj"] in got  # different input widths
    assert sorted(n for unit in got for n in unit) == sorted(
        name for name, m in model.named_modules() if isinstance(m, nn.Linear)
    )
    # calibration saw different inputs for siblings: not fused
    seen = {name: torch.ones(8) for unit in got for name in unit}
    seen["attn.v_proj"] = torch.full((8,), 2.0)
    assert ["attn.q_proj"] in units(model, seen) and ["attn.v_proj"] in units(model, seen)
