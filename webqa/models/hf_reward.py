"""A reward model from Hugging Face: any local sequence-classification model with one
output (for example OpenAssistant's DeBERTa reward models); the score is that logit."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from webqa.errors import ModelError
from webqa.models.base import Scorable
from webqa.values import Quote


def format_context(question: str, quotes: Sequence[Quote]) -> str:
    """The first segment an ``HFRewardModel`` reads: the question, then the numbered quotes.

    Question: <question>

    [1] <title> (<domain>): <text>
    [2] ...
    """
    lines = [f"Question: {question}", ""]
    lines += [f"[{n}] {q.title} ({q.domain}): {q.text}" for n, q in enumerate(quotes, 1)]
    return "\n".join(lines).rstrip()


class HFRewardModel:
    """A local sequence-classification model with one output; the score is that logit.

    Input pair: ``format_context(question, quotes)`` as the first segment, the answer as
    the second (truncated longest-first to ``max_length`` tokens, so long quotes give way
    before the answer does). Loaded on first use from a folder or the local Hugging Face
    cache; nothing is downloaded.
    """

    def __init__(
        self, id_or_dir: str | Path, *, max_length: int = 512, batch_size: int = 8
    ) -> None:
        self.source = str(id_or_dir)
        self.name = f"hf:{self.source}"
        self.max_length = max_length
        self.batch_size = max(1, batch_size)  # answers per forward pass (bounds memory)
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                from transformers import (
                    AutoConfig,
                    AutoModelForSequenceClassification,
                    AutoTokenizer,
                )

                from webqa.models.embed import quiet_transformers

                try:
                    config = AutoConfig.from_pretrained(self.source, local_files_only=True)
                except (OSError, ValueError) as exc:
                    raise ModelError(
                        f"reward model {self.source!r} not found locally "
                        f"(a folder or a model in the Hugging Face cache): {_first_line(exc)}"
                    ) from None
                if getattr(config, "num_labels", None) != 1:
                    raise ModelError(
                        f"reward model {self.source!r} has {config.num_labels} outputs; "
                        "a reward model needs a scalar head (num_labels=1)"
                    )
                import torch

                # float32 even where bf16 is native: the scores only matter against one
                # another, and bf16's 8-bit mantissa rounds near scores to the same value
                # (two different answers both -0.0349 on a native-bf16 CPU); a reward
                # model scores n answers once a question, so float32 costs little
                dtype = "float32"
                try:
                    with quiet_transformers():
                        tokenizer = AutoTokenizer.from_pretrained(
                            self.source, local_files_only=True
                        )
                        model = AutoModelForSequenceClassification.from_pretrained(
                            self.source, dtype=getattr(torch, dtype), local_files_only=True
                        )
                except (OSError, ValueError) as exc:
                    raise ModelError(
                        f"cannot load reward model {self.source!r}: {_first_line(exc)}"
                    ) from None
                model.eval()
                self.max_length = _trained_length(self.source) or self.max_length
                self._tokenizer, self._model = tokenizer, model
            return self._tokenizer, self._model

    def score(self, question: str, answers: Sequence[Scorable]) -> list[float]:
        """Each answer's logit, read with its quotes; the answers go through the model
        together, ``batch_size`` at a time (padded: a score can differ from the answer's
        alone in the last bits)."""
        import torch

        tokenizer, model = self._load()
        # a model without a padding token (some decoder-only ones) reads one at a time
        size = self.batch_size if tokenizer.pad_token is not None else 1
        scores: list[float] = []
        for start in range(0, len(answers), size):
            chunk = answers[start : start + size]
            encoded = tokenizer(
                [format_context(question, quotes) for quotes, _ in chunk],
                [answer for _, answer in chunk],
                truncation="longest_first",
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            with torch.inference_mode():
                logits = model(**encoded).logits
            scores += [float(x) for x in logits.reshape(len(chunk), -1)[:, 0]]
        return scores


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _trained_length(source: str) -> int | None:
    """The inputs' length a `webqa reward train` folder was trained at (read as it was
    trained: scored longer, the later quotes it never saw would count), else None."""
    import json

    from webqa.models.trained import REWARD_RECORD

    try:
        record = json.loads((Path(source) / REWARD_RECORD).read_text())
        length = record["settings"]["max_length"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return length if isinstance(length, int) and length > 0 else None
