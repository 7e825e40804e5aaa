"""Demonstrations: browsing sessions people drive, saved as JSONL for training."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from webqa.errors import StorageError
from webqa.paths import ENV_VAR, data_dir
from webqa.values import Quote


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


def to_json(demo: Demonstration) -> str:
    """One demonstration as one line of JSON (no newline)."""
    return json.dumps(asdict(demo), ensure_ascii=False)


def save(demo: Demonstration, path: Path | None = None) -> Path:
    """Append one demonstration as a single JSON line (written whole, then fsynced)."""
    path = path or demonstrations_path()
    _write(path, to_json(demo) + "\n", "a")
    return path


def check_writable(path: Path | None = None) -> Path:
    """Where demonstrations go, or a StorageError (one line naming it) if it cannot be
    written: checked before a session starts, so that none is lost at its end."""
    try:
        path = path or demonstrations_path()
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        where = path or exc.filename
        reason = exc.strerror or type(exc).__name__
        raise StorageError(
            f"cannot save demonstrations to {where}: {reason}; "
            f"make it writable or set {ENV_VAR} to another folder"
        ) from exc
    return path


def keep_elsewhere(demo: Demonstration) -> Path:
    """Write ``demo`` to a file of its own, ``webqa-demonstration-<id>.json``, in the
    current folder or else the temporary folder (when the usual file failed).

    Raises OSError when neither can be written."""
    name = f"webqa-demonstration-{demo.id}.json"
    error: OSError | None = None
    for folder in (Path.cwd(), Path(tempfile.gettempdir())):
        try:
            _write(folder / name, to_json(demo) + "\n", "x")
        except OSError as exc:
            error = exc
            continue
        return folder / name
    assert error is not None
    raise error


def _write(path: Path, text: str, mode: str) -> None:
    with open(path, mode, encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
