"""A policy that runs a model on this machine with transformers (CPU by default).

``LocalPolicy("qwen-0.5b")`` is cheap to build: nothing is read until the first
``generate`` or ``yes_probability`` (or an explicit ``load()``). A preset or ``.gguf``
file is dequantised by transformers once (30-50 s for the 0.5B model) and saved as a
bf16 safetensors copy with its tokenizer and chat template under
``<cache_dir>/<key>/`` (``cache_dir`` defaults to the data directory's ``models/``);
every later start loads that copy in a second or two. The copy is written to a
temporary folder and renamed into place, so a killed conversion never leaves a half
cache that a later start would trust. A multi-piece preset's joined GGUF is deleted once
the copy exists (it is re-joined from the packages in about a second if ever needed).

torch and transformers are imported only inside this module's functions, so importing
webqa costs nothing when no local model is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from webqa.errors import ModelError
from webqa.models.base import Chat, Generation, GenerationRequest, Message
from webqa.models.hardware import default_threads
from webqa.models.presets import DEFAULT_PRESET, ResolvedModel, resolve_model
from webqa.paths import sub_dir

MARKER = "webqa-model.json"  # written last inside a finished cache folder
INT8_FILE = "int8-twins.safetensors"  # the int8 precision's weights, beside the model's
COPY_PREFIX = "webqa-weights-"  # <prefix><dtype>.safetensors: the weights in another dtype
YES_WORDS = ("yes", " yes", "Yes", " Yes", "YES")
NO_WORDS = ("no", " no", "No", " No", "NO")
DTYPES = ("auto", "bfloat16", "float16", "float32", "int8")
PREFIX_MIN_TOKENS = 64  # a shorter shared prefix is not worth a cache
PREFIX_ENTRIES = 4  # prefix caches kept (least recently used dropped first)
PROMPT_ENTRIES = 16  # recent prompts' caches kept for prompts that share their start
PREFIX_FILES = 32  # prefix caches kept on disk, per data directory (oldest dropped first)


class LocalPolicy:
    """A ``Policy`` backed by a local transformers model.

    ``spec`` is a preset name, a ``.gguf`` path, a model folder or a cached Hugging Face
    id (see ``resolve_model``). ``threads`` caps torch's intra-op threads (the setting is
    process-wide); ``cache_dir`` is where converted models are kept.

    With ``prefix_cache`` (the default), ``generate`` runs the tokens a prompt starts
    with (up to the start of its last message's text: a long system prompt) once, keeps
    their KV cache for later calls (the few most recently used prefixes, and on disk
    between processes), and runs only each prompt's rest on top of it. It also keeps the
    caches of the last few prompts: a prompt that starts with more of one of them (the
    next browsing step on the same page, an answer written again) runs only what differs.
    One batch may mix prompts of different prefixes; identical prompts in it run once.

    ``dtype`` "auto" (the default) runs the precision that is fast on this CPU
    (``webqa.models.hardware.choose_precision``: bf16 where it is native, else float32
    prompts with int8 decode steps, else float32); ``WEBQA_DTYPE`` or a named dtype
    overrides it. ``precision`` says what runs, once loaded.
    """

    def __init__(
        self,
        spec: str = DEFAULT_PRESET,
        *,
        dtype: str = "auto",
        threads: int | None = None,
        cache_dir: Path | None = None,
        device: str = "cpu",
        prefix_cache: bool = True,
    ) -> None:
        if dtype not in DTYPES:
            raise ModelError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        self.spec = spec
        self.name = spec
        self.dtype = dtype  # as asked: "auto" lets webqa.models.hardware decide
        self.hardware: Any = None  # hardware.Choice: the precision in force and why (load)
        self.threads = threads if threads is not None else default_threads()
        self.cache_dir = cache_dir
        self.device = device
        self.score_batch = 16  # yes_probability: chats per forward pass (bounds memory)
        self.prefix_cache = prefix_cache
        self.prefix_hits = 0  # generate calls that found their prefix's cache kept
        self.prefix_misses = 0  # ... and that had to compute it
        self.prefix_loads = 0  # ... and that read it from disk (kept by an earlier process)
        self._prefixes: LRUCache[tuple[int, ...], Any] = LRUCache(maxsize=PREFIX_ENTRIES)
        self._prompts = RecentPrompts(PROMPT_ENTRIES)  # recent prompts' KV and last logits
        # chat heads: the tokens before each chat's last message, by chat
        self._heads: LRUCache[tuple[Message, ...], list[int]] = LRUCache(maxsize=PREFIX_ENTRIES)
        self.load_seconds: float | None = None  # how long load() took
        self.decode_stats: Any = None  # DecodeStats: prefill and decode time (set by load)
        self.converted = False  # whether load() had to convert a GGUF first
        self._model: Any = None
        self._tokenizer: Any = None
        self._vocab: Any = None
        self._prefix_dir: Path | None = None  # where prefix caches persist (set by load)
        self._prefix_tag = ""  # model, weights and precision: part of each file's name

    # -- loading ---------------------------------------------------------------------

    def load(self) -> None:
        """Load the model now (it is loaded on first use otherwise)."""
        if self._model is not None:
            return
        import torch

        from webqa.models.decoding import DecodeStats, Vocabulary
        from webqa.models.hardware import Choice, choose_precision, cpu_info

        started = time.perf_counter()
        torch.set_num_threads(self.threads)
        resolved = resolve_model(self.spec, cache_dir=self.cache_dir)
        if resolved.kind == "gguf":
            folder = self._cache_root() / resolved.key
            if not (folder / MARKER).is_file():
                convert_gguf(resolved, folder)
                self.converted = True
        else:
            folder = resolved.path
        if self.device != "cpu" or self.dtype == "float16":  # GPUs multiply bf16 natively
            if self.dtype == "int8":
                raise ModelError("the int8 precision runs on the CPU only")
            asked = "bfloat16" if self.dtype == "auto" else self.dtype
            self.hardware = Choice(asked, "override", cpu_info(), self.threads)
        else:
            override = None if self.dtype == "auto" else self.dtype
            self.hardware = choose_precision(self.threads, override=override)
        precision = self.hardware.precision
        weights = "float32" if precision == "int8" else precision
        # A converted GGUF's folder is webqa's own: it may keep a copy of the weights in
        # the precision in force and map it straight into the model (see _load_copy).
        mine = resolved.kind == "gguf" and self.device == "cpu"
        model, self._tokenizer = _load_pretrained(folder, weights, self.device, copies=mine)
        variant = precision
        if precision == "int8":
            from webqa.models.int8 import FORMAT, add_int8_layers

            cache = self._cache_root() / resolved.key / INT8_FILE
            calibration = [self._tokenizer(text)["input_ids"] for text in _calibration_texts()]
            add_int8_layers(model, cache, _stamp(folder), calibration, self.threads)
            model.float()  # what stays float: embeddings, norms
            variant = f"{precision}|{FORMAT}"
        self._model = model
        self._prefix_dir = self._cache_root() / resolved.key / "prefixes"
        identity = f"{resolved.key}|{_stamp(folder)}|{variant}|{self.device}"
        self._prefix_tag = hashlib.sha256(identity.encode()).hexdigest()[:16]
        eos = self._model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        self._vocab = Vocabulary(self._tokenizer, eos_ids)
        self.decode_stats = DecodeStats()
        self.load_seconds = time.perf_counter() - started

    @property
    def precision(self) -> str:
        """The precision in force ("bfloat16", "float32", "int8"; the asked dtype before
        loading)."""
        return self.hardware.precision if self.hardware is not None else self.dtype

    def _cache_root(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else sub_dir("models")

    # -- the Policy protocol ---------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Complete every request in one batched decode."""
        if not requests:
            return []
        self.load()
        import torch

        from webqa.models.decoding import decode_batch

        prompts = [self.encode_chat(request.chat) for request in requests]
        try:
            with torch.inference_mode():
                prefixes = self._prefixes_for(requests, prompts)
                memory = self._prompts if self.prefix_cache else None
                return decode_batch(
                    self._model,
                    self._vocab,
                    prompts,
                    requests,
                    prefixes,
                    self.decode_stats,
                    memory,
                )
        except (RuntimeError, ValueError) as error:
            raise ModelError(f"{self.name}: generation failed: {error}") from error

    def yes_probability(self, chats: Sequence[Chat]) -> list[float]:
        """P(yes) / (P(yes) + P(no)) over the first token of each reply.

        One forward pass per ``score_batch`` chats (sorted by length so little is
        padding), no decoding: the logits of the reply's first token are compared.
        """
        if not chats:
            return []
        self.load()
        import torch

        from webqa.models.decoding import last_logits, left_pad

        yes, no = self._answer_ids(YES_WORDS), self._answer_ids(NO_WORDS)
        prompts = [self.encode_chat(chat) for chat in chats]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        result = [0.0] * len(prompts)
        for start in range(0, len(order), self.score_batch):
            group = order[start : start + self.score_batch]
            ids, mask, positions = left_pad(
                [prompts[i] for i in group], self._vocab.pad_id, self._model.device
            )
            try:
                with torch.inference_mode():
                    logits = last_logits(self._model, ids, mask, positions, None).cpu()
            except (RuntimeError, ValueError) as error:
                raise ModelError(f"{self.name}: scoring failed: {error}") from error
            log_yes = torch.logsumexp(logits[:, yes], dim=-1)
            log_no = torch.logsumexp(logits[:, no], dim=-1)
            for index, p in zip(group, torch.sigmoid(log_yes - log_no), strict=True):
                result[index] = float(p)
        return result

    # -- helpers ---------------------------------------------------------------------

    def _prefixes_for(
        self, requests: Sequence[GenerationRequest], prompts: Sequence[list[int]]
    ) -> list[tuple[int, Any] | None]:
        """For each prompt, ``(length, cache)`` of the prefix kept for it, or None.

        A prompt's prefix ends where its chat's last message's text begins (a system
        prompt, so the next step's prompt finds it again) and leaves it at least one
        token of its own. Prompts of one call may have different prefixes (browsing
        commands and answers batched together); each distinct one is computed once.
        """
        if not self.prefix_cache:
            return [None] * len(prompts)
        found: list[tuple[int, Any] | None] = []
        seen: dict[tuple[int, ...], Any] = {}
        for request, prompt in zip(requests, prompts, strict=True):
            length = min(len(prompt) - 1, self._head_length(request.chat, prompt))
            if length < PREFIX_MIN_TOKENS or not self.prefix_cache:
                found.append(None)
                continue
            key = tuple(prompt[:length])
            if key not in seen:
                seen[key] = self._kept_prefix(key)
            cache = seen[key]
            found.append((length, cache) if cache is not None else None)
        return [self._longer_shared(p, f) for p, f in zip(prompts, found, strict=True)]

    def _longer_shared(
        self, prompt: list[int], head: tuple[int, Any] | None
    ) -> tuple[int, Any] | None:
        """``head``, or a kept prompt's cache if that prompt shares more of ``prompt``'s
        first tokens (the step before on the same page)."""
        shared = self._prompts.longest(prompt)
        return shared if shared is not None and shared[0] > (head[0] if head else 0) else head

    def _kept_prefix(self, key: tuple[int, ...]) -> Any | None:
        """The kept cache of ``key``, computed (and kept) if new; None where the model's
        cache cannot take a prefix (then prefixes are off from now on)."""
        cache = self._prefixes.get(key)  # a hit is the most recently used from now on
        if cache is not None:
            self.prefix_hits += 1
            return cache
        from webqa.models.decoding import load_prefix, prefix_cache, save_prefix

        path = self._prefix_path(key)
        cache = load_prefix(self._model, key, path) if path is not None else None
        if cache is not None and path is not None:
            self.prefix_loads += 1
            os.utime(path)  # recently used: pruned last
        else:
            cache = prefix_cache(self._model, key)
            if cache is None:
                self.prefix_cache = False
                return None
            self.prefix_misses += 1
            if path is not None:
                save_prefix(cache, key, path)
                _prune(path.parent, PREFIX_FILES)
        self._prefixes[key] = cache  # the least recently used one goes past PREFIX_ENTRIES
        return cache

    def _prefix_path(self, key: tuple[int, ...]) -> Path | None:
        """Where the KV cache of prefix ``key`` persists between processes (a system
        prompt's, ~17 MB in float32 for the 0.5B model: it costs a fresh process several
        seconds of prefill on a CPU without native bf16), or None."""
        if self._prefix_dir is None:
            return None
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
        return self._prefix_dir / f"{self._prefix_tag}-{digest}.safetensors"

    def _head_length(self, chat: Chat, prompt: list[int]) -> int:
        """How many of ``prompt``'s tokens come before the text of ``chat``'s last message."""
        if not chat:
            return len(prompt)
        probe: tuple[Message, ...] = (*chat[:-1], replace(chat[-1], content=""))
        head = self._heads.get(probe)
        if head is None:
            try:
                head = self.encode_chat(probe)
            except ModelError:  # a template that rejects an empty message
                return len(prompt)
            self._heads[probe] = head
        return _common_length(prompt, head)

    def encode_chat(self, chat: Chat) -> list[int]:
        """The prompt token ids: the model's own chat template, ready for the reply."""
        self.load()
        messages = [{"role": m.role, "content": m.content} for m in chat]
        try:
            text = self._tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except Exception as error:  # jinja errors, a template that rejects a role
            raise ModelError(f"{self.name}: chat template failed: {error}") from error
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _answer_ids(self, words: Sequence[str]) -> list[int]:
        ids: set[int] = set()
        for word in words:
            pieces = self._tokenizer(word, add_special_tokens=False)["input_ids"]
            if len(pieces) == 1:
                ids.add(int(pieces[0]))
        if not ids:
            raise ModelError(f"{self.name}: no single-token spelling of {words[0]!r}")
        return sorted(ids)


class RecentPrompts:
    """The last few prompts run (decode_batch's ``PromptMemory``): their KV caches, for
    prompts that start like them, and their last logits, so that a prompt run again (an
    answer asked again, the same question in a long-lived process) is not run at all
    and comes out exactly as it did the first time."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        # an OrderedDict, not an LRUCache: ``longest`` scans it oldest first, and which
        # of two equally long matches it takes decides the floats a prompt starts from
        self._kept: OrderedDict[tuple[int, ...], tuple[Any, Any]] = OrderedDict()

    def keep(self, tokens: tuple[int, ...], cache: Any, logits: Any) -> None:
        self._kept[tokens] = (cache, logits)
        self._kept.move_to_end(tokens)
        while len(self._kept) > self.entries:
            self._kept.popitem(last=False)

    def recall(self, tokens: tuple[int, ...]) -> tuple[Any, Any] | None:
        found = self._kept.get(tokens)
        if found is not None:
            self._kept.move_to_end(tokens)
        return found

    def longest(self, prompt: Sequence[int]) -> tuple[int, Any] | None:
        """``(length, cache)`` of the kept prompt sharing the most first tokens with
        ``prompt`` (leaving it at least one), if at least PREFIX_MIN_TOKENS."""
        best: tuple[int, Any] | None = None
        used = None
        for tokens, (cache, _) in self._kept.items():
            shared = min(_common_length(prompt, tokens), len(prompt) - 1)
            if shared >= PREFIX_MIN_TOKENS and shared > (best[0] if best else 0):
                best, used = (shared, cache), tokens
        if used is not None:
            self._kept.move_to_end(used)
        return best

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)


def _calibration_texts() -> list[str]:
    """Text whose activations calibrate the int8 layers (see ``webqa.models.int8``): the
    packaged prompt templates, which is what a browsing model reads most."""
    from importlib import resources

    folder = resources.files("webqa") / "prompts"
    return sorted(
        item.read_text(encoding="utf-8") for item in folder.iterdir() if item.name.endswith(".txt")
    )


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used files in ``folder``."""
    try:
        files = sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - keep)]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def _stamp(folder: Path) -> str:
    """What a model folder's weights are: their files' names, sizes and times."""
    parts = []
    for path in sorted(folder.glob("*")):
        if _stamp_part(path):
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def convert_gguf(resolved: ResolvedModel, folder: Path) -> None:
    """Dequantise a GGUF into a bf16 safetensors model folder, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = resolved.gguf_file()
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(folder)
    partial = Path(
        tempfile.mkdtemp(prefix=f".{folder.name}.partial-{os.getpid()}-", dir=folder.parent)
    )
    try:
        kwargs: dict[str, Any] = {"gguf_file": gguf.name}
        try:
            from transformers import GgufConfig

            kwargs["quantization_config"] = GgufConfig(dequantize=True)
        except ImportError:  # older transformers always dequantise
            pass
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.bfloat16, **kwargs)
        # save_pretrained refuses a model that still looks GGUF-quantised.
        setattr(model, "hf_quantizer", None)  # noqa: B010 (typed as a module attribute)
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        del model
        marker = {"source": str(gguf), "name": resolved.name, "dtype": "bfloat16"}
        if resolved.preset is not None:
            marker["sha256"] = resolved.preset.sha256 or ""
        (partial / MARKER).write_text(json.dumps(marker, indent=2))
        if folder.exists():  # a finished copy from another process, or a broken one
            if (folder / MARKER).is_file():
                return
            shutil.rmtree(folder)
        os.replace(partial, folder)
        resolved.discard_joined()
    except ModelError:
        raise
    except Exception as error:
        raise ModelError(f"could not convert {gguf} to a bf16 copy: {error}") from error
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _stamp_part(path: Path) -> bool:
    """Whether ``path`` is one of a folder's own weight files (not a copy webqa derived)."""
    derived = path.name == INT8_FILE or path.name.startswith(COPY_PREFIX)
    return path.suffix in (".safetensors", ".bin") and not derived and path.is_file()


def _load_pretrained(
    folder: Path, dtype: str, device: str, *, copies: bool = False
) -> tuple[Any, Any]:
    """The model and tokenizer in ``folder``, with weights in ``dtype``.

    With ``copies`` (a folder webqa wrote itself), the weights are read from a
    single-file copy in ``dtype`` (made once, beside the original) and mapped straight
    into a model built without initialising anything: ~0.1 s instead of transformers'
    4-10 s of reading, widening bf16 to float32 and copying on a 2-core AVX2 CPU. Any
    surprise on that path falls back to ``from_pretrained``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from webqa.models.embed import quiet_transformers

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model: Any = _load_copy(folder, dtype) if copies else None
        if model is None:
            with quiet_transformers():
                model = AutoModelForCausalLM.from_pretrained(
                    folder, dtype=getattr(torch, dtype), local_files_only=True
                )
    except (OSError, ValueError) as error:
        raise ModelError(f"could not load the model in {folder}: {error}") from error
    model.to(device)
    model.eval()
    if tokenizer.chat_template is None:
        raise ModelError(f"the model in {folder} has no chat template")
    return model, tokenizer


def _load_copy(folder: Path, dtype: str) -> Any | None:
    """The model in ``folder`` from its ``dtype`` copy (written first if missing), or
    None where this path does not fit (several weight files, buffers it cannot rebuild,
    names that do not match): the caller then uses ``from_pretrained``."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    from webqa.models.embed import quiet_transformers

    sources = [p for p in folder.glob("*.safetensors") if _stamp_part(p)]
    if len(sources) != 1:
        return None
    want = getattr(torch, dtype)
    copy = folder / f"{COPY_PREFIX}{dtype}.safetensors"
    try:
        weights = load_file(sources[0])  # memory-mapped: nothing read yet
        if all(t.dtype == want for t in weights.values()):
            copy = sources[0]
        elif not copy.is_file() or copy.stat().st_mtime_ns < sources[0].stat().st_mtime_ns:
            weights = {k: t.to(want).contiguous() for k, t in weights.items()}
            partial = copy.with_name(f".{copy.name}.{os.getpid()}.partial")
            try:
                save_file(weights, partial)
                os.replace(partial, copy)
            finally:
                partial.unlink(missing_ok=True)
            del weights
        with quiet_transformers():
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(config, dtype=want)
        # Memory-mapped: the pages are read as the first forward pass touches them.
        loaded = model.load_state_dict(load_file(copy), strict=False, assign=True)
        if loaded.unexpected_keys:
            return None
        if getattr(config, "tie_word_embeddings", False):  # fills a missing output head
            model.tie_weights()
        for module in model.modules():  # non-persistent buffers (RoPE's frequencies)
            if any(b.is_meta for b in module.buffers(recurse=False)):
                fresh = type(module)(module.config)
                for name, buffer in fresh.named_buffers(recurse=False):
                    setattr(module, name, buffer.to(module.get_buffer(name).dtype))
        if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
            return None  # a weight the file lacks

        return model
    except (AttributeError, TypeError, RuntimeError, KeyError, OSError):
        return None


def _remove_stale_partials(folder: Path) -> None:
    """Delete leftovers of conversions whose process is gone (killed mid-way)."""
    for leftover in folder.parent.glob(f".{folder.name}.partial-*"):
        try:
            pid = int(leftover.name.split(".partial-")[1].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(leftover, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue
