"""Where webqa keeps its corpus, cache, model weights and records."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ENV_VAR = "WEBQA_HOME"


def data_dir() -> Path:
    """The data directory (created on demand): see ``data_dir_path``."""
    path = data_dir_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir_path() -> Path:
    """Where the data directory is, without creating it: $WEBQA_HOME if set, else the
    platform's convention.

    Linux: $XDG_DATA_HOME/webqa (default ~/.local/share/webqa); macOS:
    ~/Library/Application Support/webqa; Windows: %LOCALAPPDATA%\\webqa.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / "webqa"
    elif os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        path = Path(base) / "webqa"
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(base) / "webqa"
    return path


def sub_dir(name: str) -> Path:
    """A named folder inside the data directory (created on demand)."""
    path = data_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_file(name: str) -> Path | None:
    """A cache file's place in the data directory, or None where there is no usable
    data directory (the cache is then built again each run)."""
    try:
        return data_dir() / name
    except OSError:
        return None


def read_json_object(path: Path | None) -> dict[str, Any]:
    """A small JSON cache file's object: empty where there is none, or it is damaged
    (the cache is then built again)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_object(path: Path | None, data: dict[str, Any]) -> None:
    """Replace a small JSON cache file at once (a reader sees the old or the new one);
    a read-only place is left as it is (the cache is built again next time)."""
    if path is None:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        partial.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
