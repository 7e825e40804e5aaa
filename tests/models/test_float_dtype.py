"""The embedder follows the float part of the machine's precision choice (bf16 only
where bf16 is native); a Hugging Face reward model runs in float32 everywhere."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.models.test_reward_hf import QUOTES, tiny_model
from webqa.errors import ModelError
from webqa.models import hardware
from webqa.models.embed import Embedder
from webqa.models.hf_reward import HFRewardModel

TEXTS = ["Canberra is the capital of Australia.", "Sydney is a large city.", "x"]


def machine_chooses(monkeypatch: pytest.MonkeyPatch, precision: str) -> None:
    """Make the machine's precision choice ``precision``, through its own override
    (``WEBQA_DTYPE``), as a user would."""
    monkeypatch.setenv(hardware.ENV_VAR, precision)


def weights_dtype(model: object) -> set[str]:
    return {str(p.dtype) for p in model.parameters()}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("precision", "expected"),
    [("bfloat16", "bfloat16"), ("int8", "float32"), ("float32", "float32")],
)
def test_the_embedder_follows_the_machine(
    monkeypatch: pytest.MonkeyPatch, precision: str, expected: str
) -> None:
    machine_chooses(monkeypatch, precision)
    embedder = Embedder()
    assert embedder.dtype is None  # nothing chosen before loading
    vectors = embedder.embed(TEXTS)
    assert embedder.dtype == expected
    assert weights_dtype(embedder._model) == {f"torch.{expected}"}
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_an_explicit_embedder_dtype_wins_and_agrees_with_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine_chooses(monkeypatch, "bfloat16")
    f32_embedder = Embedder(dtype="float32")
    f32 = f32_embedder.embed(TEXTS)
    assert weights_dtype(f32_embedder._model) == {"torch.float32"}  # not the machine's bf16
    machine_chooses(monkeypatch, "float32")
    bf16 = Embedder(dtype="bfloat16").embed(TEXTS)
    assert bf16.dtype == f32.dtype == np.float32
    assert min(float(a @ b) for a, b in zip(bf16, f32, strict=True)) > 0.99
    with pytest.raises(ModelError, match="unknown embedder dtype 'int8'"):
        Embedder(dtype="int8")


@pytest.mark.parametrize("precision", ["bfloat16", "int8", "float32"])
def test_the_hf_reward_model_runs_float32_whatever_the_machine_chose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, precision: str
) -> None:
    # its scores are only compared with one another: bf16 rounds near ones together
    machine_chooses(monkeypatch, precision)
    model = HFRewardModel(tiny_model(tmp_path / "rm", 1), max_length=48)
    (score,) = model.score("What is the capital of Australia?", [(QUOTES, "Canberra [1].")])
    assert isinstance(score, float) and math.isfinite(score)
    assert weights_dtype(model._model) == {"torch.float32"}
