"""HFRewardModel on a tiny randomly initialised BERT built in a temporary folder."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from webqa.errors import ModelError
from webqa.models.base import RewardModel
from webqa.models.hf_reward import HFRewardModel, format_context
from webqa.values import Quote

WORDS = "question the capital of australia is canberra sydney : [ ] 1 2 ( ) . , wiki org".split()
QUOTES = [
    Quote("Canberra", "https://wiki.org/Canberra", "wiki.org", "Canberra is the capital."),
    Quote("Sydney", "https://wiki.org/Sydney", "wiki.org", "Sydney is the capital of NSW."),
]


def tiny_model(folder: Path, num_labels: int) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tokenizer = BertTokenizer(vocab=vocab)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    config.num_labels = num_labels
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_format_context() -> None:
    assert format_context("What is the capital?", QUOTES) == (
        "Question: What is the capital?\n"
        "\n"
        "[1] Canberra (wiki.org): Canberra is the capital.\n"
        "[2] Sydney (wiki.org): Sydney is the capital of NSW."
    )
    assert format_context("Why?", []) == "Question: Why?"


def test_a_scalar_head_gives_finite_scores(tmp_path: Path) -> None:
    model = HFRewardModel(tiny_model(tmp_path / "rm", 1), max_length=48)
    assert isinstance(model, RewardModel)
    assert model._model is None  # loaded on first use
    long_answer = "canberra is the capital of australia . " * 40  # truncated to 48 tokens
    question = "What is the capital of Australia?"
    answers = ["Canberra [1].", "Sydney [2].", long_answer, ""]
    scores = model.score(question, [(QUOTES, answer) for answer in answers])
    assert len(scores) == 4
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert scores[0] != scores[1]
    # in one batch (padded), or in batches of two, or alone: the same scores
    alone = [model.score(question, [(QUOTES, answer)])[0] for answer in answers]
    assert scores == pytest.approx(alone, abs=1e-4)
    model.batch_size = 2
    assert model.score(question, [(QUOTES, answer) for answer in answers]) == pytest.approx(
        scores, abs=1e-4
    )
    assert model.score(question, []) == []


def test_a_two_label_head_is_refused(tmp_path: Path) -> None:
    model = HFRewardModel(tiny_model(tmp_path / "classifier", 2))
    with pytest.raises(ModelError, match=r"has 2 outputs; a reward model needs a scalar head"):
        model.score("q", [(QUOTES, "a")])


def test_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"reward model '.*nothing-here' not found locally"):
        HFRewardModel(tmp_path / "nothing-here").score("q", [(QUOTES, "a")])
    with pytest.raises(ModelError, match="not found locally"):
        HFRewardModel("someone/never-downloaded-reward-model").score("q", [(QUOTES, "a")])
