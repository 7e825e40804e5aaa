"""The embedder and a Hugging Face reward model follow the float part of the machine's
precision choice: bf16 only where the probe chose bf16, float32 elsewhere."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.models.test_reward_hf import QUOTES, tiny_model
from webqa.errors import ModelError
from webqa.models import hardware
from webqa.models.embed import Embedder
from webqa.models.hardware import Choice, CpuInfo
from webqa.models.hf_reward import HFRewardModel

CPU = CpuInfo("test CPU", 2, (), None, None)
TEXTS = ["Canberra is the capital of Australia.", "Sydney is a large city.", "x"]


def machine_chooses(monkeypatch: pytest.MonkeyPatch, precision: str) -> list[int]:
    """Make ``choose_precision`` answer ``precision``; the list records its calls."""
    calls: list[int] = []

    def choose(threads: int, **kwargs: object) -> Choice:
        calls.append(threads)
        return Choice(precision, "probe", CPU, threads)

    monkeypatch.setattr(hardware, "choose_precision", choose)
    return calls


def weights_dtype(model: object) -> set[str]:
    return {str(p.dtype) for p in model.parameters()}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("precision", "expected"),
    [("bfloat16", "bfloat16"), ("int8", "float32"), ("float32", "float32")],
)
def test_the_embedder_follows_the_machine(
    monkeypatch: pytest.MonkeyPatch, precision: str, expected: str
) -> None:
    calls = machine_chooses(monkeypatch, precision)
    embedder = Embedder()
    assert embedder.dtype is None and not calls  # nothing chosen before loading
    vectors = embedder.embed(TEXTS)
    assert len(calls) == 1 and embedder.dtype == expected
    assert weights_dtype(embedder._model) == {f"torch.{expected}"}
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_an_explicit_embedder_dtype_wins_and_agrees_with_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = machine_chooses(monkeypatch, "int8")
    bf16 = Embedder(dtype="bfloat16").embed(TEXTS)
    f32 = Embedder(dtype="float32").embed(TEXTS)
    assert not calls  # the machine's choice was not asked for
    assert bf16.dtype == f32.dtype == np.float32
    assert min(float(a @ b) for a, b in zip(bf16, f32, strict=True)) > 0.99
    with pytest.raises(ModelError, match="unknown embedder dtype 'int8'"):
        Embedder(dtype="int8")


@pytest.mark.parametrize(("precision", "expected"), [("bfloat16", "bfloat16"), ("int8", "float32")])
def test_the_hf_reward_model_follows_the_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, precision: str, expected: str
) -> None:
    machine_chooses(monkeypatch, precision)
    model = HFRewardModel(tiny_model(tmp_path / "rm", 1), max_length=48)
    (score,) = model.score("What is the capital of Australia?", [(QUOTES, "Canberra [1].")])
    assert isinstance(score, float) and math.isfinite(score)
    assert weights_dtype(model._model) == {f"torch.{expected}"}
