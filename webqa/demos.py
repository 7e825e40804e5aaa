"""Demonstrations: browsing sessions people drive, saved as JSONL for training."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from webqa.browser.page import Quote
from webqa.paths import data_dir


@dataclass(frozen=True)
class Demonstration:
    """One human browsing session: question, every step, the quotes and the answer."""

    question: str
    steps: list[dict[str, object]]
    quotes: list[Quote]
    answer: str
    end_reason: str
    web: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: float = field(default_factory=time.time)


def demonstrations_path() -> Path:
    return data_dir() / "demonstrations.jsonl"


def save(demo: Demonstration, path: Path | None = None) -> Path:
    """Append one demonstration as a single JSON line (written whole, then fsynced)."""
    path = path or demonstrations_path()
    line = json.dumps(asdict(demo), ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    return path
