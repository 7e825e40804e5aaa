"""The folders `webqa reward train` and `webqa policy train` write: checked before any
work, written whole or not at all, and quiet while transformers loads and saves.

A trained folder is a Hugging Face model folder plus a JSON record (the report and the
settings) whose name says which command wrote it (``webqa-reward.json``,
``webqa-policy.json``): only an empty folder or one that command wrote before may be
replaced, so a mistyped ``-o`` never deletes someone's files.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webqa.errors import InputError, StorageError, os_reason

REWARD_RECORD = "webqa-reward.json"  # a reward folder's record (read when it is scored)
LOSS_CURVE_POINTS = 20  # a report's train loss: at most this many means


@dataclass(frozen=True)
class Output:
    """What a training command writes: its record's file name, what the folder holds
    ("a policy") and the command ("webqa policy train")."""

    record: str
    what: str
    command: str

    def check(self, target: Path) -> None:
        """Before any work: ``target`` is new, empty, or written by this command."""
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise InputError(f"{target}: exists and is not a folder")
        if target.is_dir() and any(target.iterdir()) and not (target / self.record).is_file():
            raise InputError(
                f"{target}: a folder with other things in it (not {self.what} written by "
                f"`{self.command}`); choose a new folder"
            )

    def save(self, model: Any, tokenizer: Any, target: Path, record: dict[str, Any]) -> None:
        """Write the folder (``model`` and ``tokenizer``, unless None, and the record)
        beside ``target`` under a temporary name, then rename it into place (an earlier
        one there is moved aside first, then removed; on any failure it is put back)."""
        parent = target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=parent))
        except OSError as exc:
            raise StorageError(f"{target}: cannot write: {os_reason(exc)}") from None
        old: Path | None = None
        try:
            if model is not None:  # None: the record is the whole folder
                with quiet():
                    model.save_pretrained(partial)
                    tokenizer.save_pretrained(partial)
            text = json.dumps(record, indent=2) + "\n"
            (partial / self.record).write_text(text, encoding="utf-8")
            os.chmod(partial, 0o755)  # mkdtemp's 0700 would hide the model from other users
            for written in partial.iterdir():
                os.chmod(written, 0o644)  # as would safetensors' 0600
            if target.is_dir():
                self.check(target)  # still empty or an earlier one of ours
                old = parent / f".{target.name}.old-{os.getpid()}"
                target.rename(old)
            partial.rename(target)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if old is not None and not target.exists():
                old.rename(target)  # put the earlier one back
                old = None
            raise StorageError(f"{target}: cannot write: {os_reason(exc)}") from None
        except BaseException:  # an interrupt, or the folder there changed: as it was
            shutil.rmtree(partial, ignore_errors=True)
            if old is not None and not target.exists():
                old.rename(target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """transformers' and peft's loading bars, notes (a fresh head's weights) and
    deprecation warnings, off."""
    from transformers.utils import logging as hf_logging

    from webqa.models.embed import quiet_transformers

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with quiet_transformers(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        hf_logging.set_verbosity(level)


def warmup_then_linear(steps: int, warmup: int) -> Callable[[int], float]:
    """The learning rate's factor at each step: rising over the first ``warmup`` steps
    (the first step already learns, at 1/warmup), then falling linearly to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return factor


def loss_curve(losses: Sequence[float]) -> list[float]:
    """The step losses as at most ``LOSS_CURVE_POINTS`` means of equal stretches."""
    if not losses:
        return [math.nan]
    points = min(LOSS_CURVE_POINTS, len(losses))
    bounds = [round(i * len(losses) / points) for i in range(points + 1)]
    return [round(sum(losses[a:b]) / (b - a), 4) for a, b in zip(bounds, bounds[1:], strict=False)]
