"""Where webqa keeps its corpus, cache, model weights and records."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
