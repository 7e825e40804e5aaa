"""Shared test setup: every test gets its own temporary data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("tests.hostile_server",)  # the `hostile` fixture, for every test


@pytest.fixture(autouse=True)
def webqa_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "webqa-home"
    monkeypatch.setenv("WEBQA_HOME", str(home))
    # `webqa ask` answers in-process, where a test's fakes are (tests/core/test_worker.py
    # turns the model worker on)
    monkeypatch.setenv("WEBQA_KEEP_ALIVE", "0")
    return home
