"""Shared test setup: every test gets its own temporary data directory."""

from __future__ import annotations

import shutil
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


SMOLLM = "smollm2-135m"


@pytest.fixture(scope="session")
def smollm_converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M's GGUF converted to a model folder once for the whole run (about 45 s
    on a 2-core CPU, which every module that loads it paid again): modules copy it into
    their own model cache (``with_smollm``), so none sees another's writes."""
    from webqa.models.local import convert_gguf
    from webqa.models.presets import resolve_model

    root = tmp_path_factory.mktemp("smollm-converted")
    resolved = resolve_model(SMOLLM, cache_dir=root)
    convert_gguf(resolved, root / resolved.key)
    return root / resolved.key


def with_smollm(converted: Path, models: Path) -> Path:
    """``models``, a model cache folder, holding a copy of the converted SmolLM2 where
    ``LocalPolicy`` looks for it."""
    shutil.copytree(converted, models / converted.name)
    return models
