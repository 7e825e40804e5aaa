"""One batched decode loop for a transformers causal LM, with per-sequence constraints.

``decode_batch`` runs every prompt through the model's forward pass (one at a time: a
CPU gains nothing from batching a prompt, and a batch would pay for padding), joins their
KV caches, and then decodes them together, one step for all, picking each sequence's
next token on its own: greedy or seeded sampling, EOS, stop strings, ``max_new_tokens``
and, when a request has a ``Constraint``, only tokens that keep the text a valid prefix
(see ``_Row.pick``). Sequences that finish leave the batch (their rows are dropped from
the cache), so a long answer does not make short commands pay for it.

Text a constraint forces (its optional ``forced(text)``: "Clicked on link " when only
clicks are allowed, a quote's passage once its start is chosen) is fed to the model in
one step instead of a token per step: measured on the guided episodes, a quote went
from ~6 s to ~1-2 s.

With ``prefixes`` (for each prompt, the KV cache of tokens it starts with, from
``prefix_cache``: a system prompt most calls share), only each prompt's rest is run.
Rows may start from different prefixes (a batch that mixes browsing commands and
answers) or none. The joined cache is left-padded: each row's tokens end together, the
padding before them masked out, and position ids count real tokens only.

This module imports torch at the top, so only ``LocalPolicy``'s methods import it.
"""

from __future__ import annotations

import codecs
import inspect
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from webqa.models.base import Constraint, ForcingConstraint, Generation, GenerationRequest

TOP_CANDIDATES = 64  # constrained decoding tests this many best tokens first
SCAN_CHUNK = 2048  # then the rest of the vocabulary, this many at a time
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "</s>")
_PARTIAL = "\ufffd"  # what a token holding half a UTF-8 character decodes to


class Vocabulary:
    """What the decode loop needs to know about a tokenizer."""

    def __init__(self, tokenizer: Any, eos_ids: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        stops = set(eos_ids)
        if tokenizer.eos_token_id is not None:
            stops.add(int(tokenizer.eos_token_id))
        added = tokenizer.get_added_vocab()  # special tokens only: "</s>" is plain text in Qwen
        stops.update(added[name] for name in STOP_TOKENS if name in added)
        self.eos_ids: frozenset[int] = frozenset(stops)
        special = set(tokenizer.all_special_ids)
        special.update(int(i) for i in getattr(tokenizer, "added_tokens_decoder", {}))
        # Special tokens never appear inside a constrained output (only EOS, which ends it).
        self.banned: frozenset[int] = frozenset(special - self.eos_ids)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.eos_ids))
        self._bytes: list[bytes | None] | None = None  # built on first need
        self.size = len(tokenizer)  # the model's logits may have unused rows beyond this

    def token_bytes(self, token: int) -> bytes | None:
        """The raw bytes of a token, for byte-level BPE vocabularies (else None)."""
        if self._bytes is None:
            self._bytes = _byte_table(self.tokenizer)
        return self._bytes[token] if 0 <= token < len(self._bytes) else None

    def half_character(self, ids: Sequence[int]) -> bytes | None:
        """The bytes of the unfinished character at the end of ``ids`` (None: unknown)."""
        pieces = [self.token_bytes(token) for token in ids[-4:]]
        if any(piece is None for piece in pieces):
            return None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        decoder.decode(b"".join(p for p in pieces if p is not None), final=False)
        return bytes(decoder.getstate()[0])

    def text(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def raw(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` exactly (special tokens and spacing kept)."""
        return str(
            self.tokenizer.decode(
                list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False
            )
        )

    def raw_many(self, prefix: Sequence[int], candidates: Sequence[int]) -> list[str]:
        batch = [[*prefix, token] for token in candidates]
        texts = self.tokenizer.batch_decode(
            batch, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        return [str(text) for text in texts]


@dataclass
class DecodeStats:
    """Where ``decode_batch``'s time went, summed over calls (for benchmarks)."""

    prefill_seconds: float = 0.0
    prefill_tokens: int = 0  # prompt tokens run (those after a kept prefix)
    steps: int = 0  # decode steps (one forward pass for every live row)
    step_seconds: float = 0.0
    step_rows: int = 0  # rows summed over steps

    def copy(self) -> DecodeStats:
        return replace(self)


@dataclass(frozen=True)
class _Option:
    """What choosing one token would do to a constrained row."""

    token: int
    text: str  # the text after it (a half character at the end left out)
    ends: bool  # the output ends here (EOS, or a newline after a complete output)
    partial: bool  # the token leaves half a UTF-8 character pending


@dataclass
class _Row:
    """The state of one sequence while it decodes."""

    request: GenerationRequest
    prompt_tokens: int
    generator: torch.Generator | None
    ids: list[int] = field(default_factory=list)
    text: str = ""  # constrained rows: the text so far (no trailing half character)
    done: bool = False
    final: str | None = None  # set when the row decided its own final text
    pending: int = 0  # constrained rows: tokens since the last whole character
    before_pending: torch.Tensor | None = None  # the logits that chose the first of them
    rewind: int = 0  # set by pick(): the loop must forget this many fed tokens
    unfed: int = 0  # tokens at the end of ids the model has not been fed yet

    def pick(self, logits: torch.Tensor, vocab: Vocabulary) -> None:
        """Choose the next token from this row's logits, or finish the row."""
        if self.request.constraint is None:
            self._pick_free(logits, vocab)
        else:
            self._pick_constrained(logits, vocab, self.request.constraint)
        if not self.done:
            self.check_limits(vocab)

    def _pick_free(self, logits: torch.Tensor, vocab: Vocabulary) -> None:
        token = self._sample(logits, None)
        if token in vocab.eos_ids:
            self.done = True
        else:
            self.ids.append(token)

    def _sample(self, logits: torch.Tensor, among: list[int] | None) -> int:
        """Greedy or seeded sampling over ``among`` (positions in ``logits``) or all."""
        if among is not None:
            logits = logits[torch.tensor(among)]
        if self.request.temperature <= 0:
            index = int(torch.argmax(logits))
        else:
            probs = torch.softmax(logits / self.request.temperature, dim=-1)
            index = int(torch.multinomial(probs, 1, generator=self.generator))
        return among[index] if among is not None else index

    def _pick_constrained(
        self, logits: torch.Tensor, vocab: Vocabulary, constraint: Constraint
    ) -> None:
        if self.pending:
            # Inside a character: finish it from the best few tokens, or, at a dead end,
            # take the half character back and choose again, whole characters only.
            option = self._choose(logits, vocab, constraint, scan=False, partial=self.pending < 3)
            if option is None and self.before_pending is not None:
                self.rewind = self.pending
                del self.ids[-self.pending :]
                logits, self.pending, self.before_pending = self.before_pending, 0, None
                option = self._choose(logits, vocab, constraint, scan=True, partial=False)
        else:
            option = self._choose(logits, vocab, constraint, scan=True, partial=True)
        if option is None:  # nothing keeps the text valid: stop with what there is
            self.done, self.final = True, self.text
            return
        if option.partial and not self.pending:
            self.before_pending = logits
        self.pending = self.pending + 1 if option.partial else 0
        if not option.partial:
            self.before_pending = None
        if option.token not in vocab.eos_ids:
            self.ids.append(option.token)  # counted, even the newline that ends it
        self.text = option.text
        if option.ends:
            self.done, self.final = True, option.text

    def _choose(
        self,
        logits: torch.Tensor,
        vocab: Vocabulary,
        constraint: Constraint,
        *,
        scan: bool,
        partial: bool,
    ) -> _Option | None:
        """The best allowed token (greedy) or a sample among the allowed best ones.

        The top ``TOP_CANDIDATES`` tokens are tested first; only if none is allowed
        (and ``scan``) is the rest of the vocabulary tested, a chunk at a time.
        """
        greedy = self.request.temperature <= 0
        order = torch.argsort(logits, descending=True)
        start, size = 0, TOP_CANDIDATES
        while start < order.numel():
            chunk = [int(t) for t in order[start : start + size]]
            options = self._options(chunk, vocab, constraint, partial=partial, first_only=greedy)
            if options:
                if greedy:
                    return options[0]
                index = self._sample(logits, [o.token for o in options])
                return next(o for o in options if o.token == index)
            if not scan:
                return None
            start, size = start + size, SCAN_CHUNK
        return None

    def _options(
        self,
        chunk: list[int],
        vocab: Vocabulary,
        constraint: Constraint,
        *,
        partial: bool,
        first_only: bool,
    ) -> list[_Option]:
        plain = [t for t in chunk if t not in vocab.eos_ids and t not in vocab.banned]
        decoded = dict(zip(plain, vocab.raw_many(self.ids, plain), strict=True))
        found: list[_Option] = []
        for token in chunk:
            option = self._option(token, decoded.get(token), vocab, constraint)
            if option is not None and (partial or not option.partial):
                found.append(option)
                if first_only:
                    break
        return found

    def _option(
        self, token: int, decoded: str | None, vocab: Vocabulary, constraint: Constraint
    ) -> _Option | None:
        if token in vocab.eos_ids:
            ok = not self.pending and constraint.complete(self.text)
            return _Option(token, self.text, ends=True, partial=False) if ok else None
        if decoded is None:  # a special token: never part of a constrained output
            return None
        partial = decoded.endswith(_PARTIAL)
        text = decoded[:-1] if partial else decoded  # a half character is judged when whole
        fresh = text[len(self.text) :] if text.startswith(self.text) else text
        if _PARTIAL in fresh:
            return None  # bytes that can never make a character
        newline = -1 if getattr(constraint, "multiline", False) else text.find("\n")
        if newline >= 0:
            head = text[:newline]
            ok = constraint.complete(head)
            return _Option(token, head, ends=True, partial=False) if ok else None
        if not fresh and not partial:
            return None  # a token that adds nothing would only burn the budget
        if not constraint.allows(text):
            return None
        if partial:
            half = vocab.half_character([*self.ids, token])
            if half is not None and not could_finish(half, text, constraint):
                return None
        return _Option(token, text, ends=False, partial=partial)

    def check_limits(self, vocab: Vocabulary) -> None:
        stops = self.request.stop
        if stops:
            text = self.text if self.request.constraint is not None else vocab.text(self.ids)
            cuts = [text.find(stop) for stop in stops if stop and stop in text]
            if cuts:
                self.done, self.final = True, text[: min(cuts)]
                return
        if len(self.ids) >= self.request.max_new_tokens:
            self.done = True

    def result(self, vocab: Vocabulary) -> Generation:
        if self.final is not None:
            text = self.final
        elif self.request.constraint is not None:
            text = self.text
        else:
            text = vocab.text(self.ids).rstrip(_PARTIAL)
        return Generation(text=text, tokens=len(self.ids), prompt_tokens=self.prompt_tokens)


def _byte_table(tokenizer: Any) -> list[bytes | None]:
    """Each token's bytes, when the tokenizer is GPT-2 style byte-level BPE."""
    size = len(tokenizer)
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    if type(decoder).__name__ != "ByteLevel":
        return [None] * size
    # GPT-2's printable stand-ins for the 256 byte values.
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    stand_in = {chr(b): b for b in printable}
    stand_in.update(
        {chr(256 + n): b for n, b in enumerate(b for b in range(256) if b not in set(printable))}
    )
    table: list[bytes | None] = []
    for name in tokenizer.convert_ids_to_tokens(list(range(size))):
        if name is None or any(ch not in stand_in for ch in name):
            table.append(None)
        else:
            table.append(bytes(stand_in[ch] for ch in name))
    return table


def could_finish(half: bytes, text: str, constraint: Constraint) -> bool:
    """Whether some character starting with the bytes ``half`` may follow ``text``.

    Characters still missing one or two bytes are tried one by one (at most 4,096
    calls to ``allows``); a lone lead byte of a 4-byte character is let through, and
    the decode loop takes it back if it leads nowhere.
    """
    if not half:
        return True
    lead = half[0]
    length = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    missing = length - len(half)
    if missing > 2 or missing < 1:
        return missing > 2
    tails = (bytes([b]) for b in range(0x80, 0xC0))
    if missing == 2:
        tails = (bytes([a, b]) for a in range(0x80, 0xC0) for b in range(0x80, 0xC0))
    for tail in tails:
        try:
            character = (half + tail).decode("utf-8")
        except UnicodeDecodeError:
            continue
        if constraint.allows(text + character):
            return True
    return False


def _generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed if seed is not None else random.randrange(2**63))
    return generator


def left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input ids, attention mask and position ids for a left-padded batch."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def last_logits(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
) -> torch.Tensor:
    """One forward pass; the float32 logits of each row's last position."""
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=cache is not None,
        logits_to_keep=1,
        **{_cache_argument(type(model)): cache},
    )
    return out.logits[:, -1, :].float()


class PromptMemory(Protocol):
    """decode_batch's ``memory``: prompts already run, kept with their KV cache and the
    logits of their last token, so an identical prompt is not run again (and so comes
    out bit for bit as it did: run again after a different kept start, its floats would
    differ in the last bits, which int8 layers can turn into a different token)."""

    def keep(self, tokens: tuple[int, ...], cache: Any, logits: torch.Tensor) -> None: ...

    def recall(self, tokens: tuple[int, ...]) -> tuple[Any, torch.Tensor] | None: ...


_CACHE_ARGUMENT: dict[type, str] = {}


def _cache_argument(model_class: Any) -> str:
    # transformers renamed ``past_key_values`` to ``cache`` (the old name warns).
    if model_class not in _CACHE_ARGUMENT:
        parameters = inspect.signature(model_class.forward).parameters
        _CACHE_ARGUMENT[model_class] = "cache" if "cache" in parameters else "past_key_values"
    return _CACHE_ARGUMENT[model_class]


def prefix_cache(model: Any, tokens: Sequence[int]) -> Any | None:
    """The KV cache of ``tokens`` alone (a batch of one), for ``decode_batch``'s prefix.

    None where the model's cache has layers other than plain growing ones (sliding
    windows, linear attention): padding in front of a row would confuse those.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    if any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None
    ids = torch.tensor([list(tokens)], dtype=torch.long, device=model.device)
    positions = torch.arange(len(tokens), device=model.device).unsqueeze(0)
    last_logits(model, ids, torch.ones_like(ids), positions, cache)
    return cache


def save_prefix(cache: Any, tokens: Sequence[int], path: Path) -> None:
    """Write a prefix's KV cache (from ``prefix_cache``) to ``path``, atomically.

    The file holds each layer's keys and values and the prefix's tokens, so a load
    checks it is the prefix it claims to be. A failure to write is not an error: the
    prefix is computed again next time.
    """
    from safetensors.torch import save_file

    tensors = {"tokens": torch.tensor(list(tokens), dtype=torch.long)}
    for index, layer in enumerate(cache.layers):
        tensors[f"{index}.keys"] = layer.keys.contiguous()
        tensors[f"{index}.values"] = layer.values.contiguous()
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(partial))
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)


def load_prefix(model: Any, tokens: Sequence[int], path: Path) -> Any | None:
    """The KV cache ``save_prefix`` wrote for ``tokens``, or None (missing, damaged, or
    for other tokens or another shape of model)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import DynamicCache

    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError, ValueError, RuntimeError):
        return None
    stored = tensors.get("tokens")
    if stored is None or stored.tolist() != list(tokens):
        return None
    cache = DynamicCache(config=model.config)
    layers: Any = cache.layers  # DynamicLayers (see prefix_cache)
    for index, layer in enumerate(layers):
        keys, values = tensors.get(f"{index}.keys"), tensors.get(f"{index}.values")
        if keys is None or values is None or keys.shape[-2] != len(tokens):
            return None
        layer.update(keys.to(model.device), values.to(model.device))
    return cache


def decode_batch(
    model: Any,
    vocab: Vocabulary,
    prompts: Sequence[Sequence[int]],
    requests: Sequence[GenerationRequest],
    prefixes: Sequence[tuple[int, Any] | None] | None = None,
    stats: DecodeStats | None = None,
    memory: PromptMemory | None = None,
) -> list[Generation]:
    """Generate a completion for every prompt in one batched decode.

    ``prefixes``, one per prompt, is ``(length, cache)`` or None: the prompt starts with
    ``length`` tokens (and has at least one more) whose KV cache is the first ``length``
    positions of ``cache`` (from ``prefix_cache``, or a prompt ``keep`` was handed).
    Caches are copied, never changed. ``stats``, if given, is added to. ``memory``, if
    given, is handed each prompt's tokens (with any forced text that starts its output),
    KV cache and last logits once they are run, and a prompt it recalls is not run.

    Prompts are run one at a time (a CPU gains nothing from batching them, and a batch
    would pay for the padding) and their caches joined; the decode steps then run
    together. Text that a row's constraint forces (``forced``) is fed in one step.
    """
    if prefixes is None:
        prefixes = [None] * len(prompts)
    if len(prefixes) != len(prompts):
        raise ValueError("one prefix (or None) is needed for each prompt")
    rows = [
        _Row(
            request=request,
            prompt_tokens=len(prompt),
            generator=_generator(request.seed) if request.temperature > 0 else None,
        )
        for prompt, request in zip(prompts, requests, strict=True)
    ]
    for row in rows:
        if row.request.max_new_tokens <= 0:
            row.done = True
        else:
            _force(row, vocab)
    live = [i for i, row in enumerate(rows) if not row.done]
    if not live:
        return [row.result(vocab) for row in rows]
    starts = [prefixes[i] or (0, None) for i in live]
    if any(len(prompts[i]) <= length for i, (length, _) in zip(live, starts, strict=True)):
        raise ValueError("a prompt is no longer than its prefix")
    started = time.perf_counter()
    logits, cache, mask, positions, ran = _prefill(
        model, [[*prompts[i], *rows[i].ids] for i in live], starts, vocab.pad_id, memory
    )
    if stats is not None:
        stats.prefill_seconds += time.perf_counter() - started
        stats.prefill_tokens += ran
    for i in live:
        rows[i].unfed = 0
    while True:
        for slot, index in enumerate(live):
            row = rows[index]
            row.pick(logits[slot, : vocab.size], vocab)
            if row.rewind:  # forget a half character's tokens: mask them, reuse positions
                mask[slot, -row.rewind :] = 0
                positions[slot] -= row.rewind
                row.rewind = 0
            if not row.done:
                row.unfed += 1
                _force(row, vocab)
        staying = [slot for slot, index in enumerate(live) if not rows[index].done]
        if not staying:
            break
        if len(staying) < len(live):
            kept = torch.tensor(staying, device=model.device)
            cache.batch_select_indices(kept)
            mask, positions = mask[kept], positions[kept]
            live = [live[slot] for slot in staying]
        feeds = [rows[i].ids[-rows[i].unfed :] for i in live]
        step, fresh, places = _step_inputs(feeds, positions, vocab.pad_id)
        mask = torch.cat([mask, fresh.to(model.device)], dim=-1)
        started = time.perf_counter()
        logits = last_logits(model, step.to(model.device), mask, places.to(model.device), cache)
        logits = logits.cpu()
        if stats is not None:
            stats.steps += 1
            stats.step_rows += len(live)
            stats.step_seconds += time.perf_counter() - started
        positions = places[:, -1:]
        for i in live:
            rows[i].unfed = 0
    return [row.result(vocab) for row in rows]


def _force(row: _Row, vocab: Vocabulary) -> None:
    """Append the text ``row``'s constraint forces next (if any) as tokens, unfed."""
    constraint = row.request.constraint
    if not isinstance(constraint, ForcingConstraint) or row.done or row.pending:
        return
    text = constraint.forced(row.text)
    if text and not constraint.complete(row.text + text):
        # the model goes on from here: leave it the space before the next word, which
        # byte-level BPE spells with the word (" Paris"), not as a token of its own
        text = text[: max(0, text.rfind(" "))]
    budget = row.request.max_new_tokens - len(row.ids) - 1
    if not text or budget <= 0:
        return
    tokens = vocab.encode(text)[:budget]
    joined = vocab.raw(row.ids + tokens)
    # a tokenizer that spells text differently on its own (a leading-space marker) or a
    # cut in the middle of a character: leave it to token-by-token decoding
    if not tokens or not joined.startswith(row.text) or not (row.text + text).startswith(joined):
        return
    if joined.endswith(_PARTIAL) or joined == row.text:
        return
    row.ids.extend(tokens)
    row.text = joined
    row.unfed += len(tokens)
    row.before_pending = None
    row.check_limits(vocab)


def _prefill(
    model: Any,
    prompts: Sequence[Sequence[int]],
    starts: Sequence[tuple[int, Any]],
    pad_id: int,
    memory: PromptMemory | None = None,
) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor, int]:
    """Run each prompt after its prefix (``(length, cache)``: the cache's first ``length``
    positions; ``(0, None)`` for none) on its own, then join the caches left-padded, the
    padding masked out. A prompt ``memory`` recalls is not run; the others are kept there.

    Returns the float32 logits of each prompt's last token (CPU), the joined cache, the
    attention mask, each row's last position id and how many tokens were run.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    device = model.device
    if all(stored is None for _, stored in starts) and any(
        type(layer) is not DynamicLayer for layer in DynamicCache(config=model.config).layers
    ):  # sliding windows or linear attention: one left-padded batch, as generate() does
        ids, mask, places = left_pad(prompts, pad_id, device)
        cache = DynamicCache(config=model.config)
        first = last_logits(model, ids, mask, places, cache).cpu()
        return first, cache, mask, places[:, -1:].cpu(), int(mask.sum())
    logits, caches = [], []
    done: dict[tuple[int, ...], tuple[torch.Tensor, Any]] = {}  # identical prompts run once
    runs: dict[tuple[int, ...], int] = {}  # each prompt run: the length of its kept start
    for prompt, (length, stored) in zip(prompts, starts, strict=True):
        key = tuple(prompt)
        recalled = memory.recall(key) if memory is not None and key not in done else None
        if recalled is not None:
            kept, last = recalled
            done[key] = (last, _first(model, kept, len(key)))
        elif key not in done:
            runs[key] = length
            cache = _first(model, stored, length)
            rest = torch.tensor([list(prompt[length:])], dtype=torch.long, device=device)
            places = torch.arange(length, len(prompt), device=device).unsqueeze(0)
            ones = torch.ones((1, len(prompt)), dtype=torch.long, device=device)
            done[key] = (last_logits(model, rest, ones, places, cache).cpu(), cache)
            if memory is not None:
                memory.keep(key, cache, done[key][0])
        logits.append(done[key][0])
        caches.append(done[key][1])
    sizes = [len(p) for p in prompts]
    width = max(sizes)
    joined = DynamicCache(config=model.config)
    for index, layer in enumerate(joined.layers):
        parts: Any = [c.layers[index] for c in caches]  # DynamicLayers (see prefix_cache)
        keys = [_pad_before(p.keys, width - n) for p, n in zip(parts, sizes, strict=True)]
        values = [_pad_before(p.values, width - n) for p, n in zip(parts, sizes, strict=True)]
        fresh: Any = layer
        fresh.update(torch.cat(keys), torch.cat(values))
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, n in enumerate(sizes):
        mask[row, width - n :] = 1
    positions = torch.tensor([[n - 1] for n in sizes], dtype=torch.long)
    ran = sum(len(key) - length for key, length in runs.items())
    return torch.cat(logits), joined, mask.to(device), positions, ran


def _first(model: Any, stored: Any | None, length: int) -> Any:
    """A new cache holding the first ``length`` positions of ``stored`` (a kept prefix or
    a kept prompt that shares them); ``stored`` itself is never changed."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    if stored is not None:
        layers: Any = cache.layers  # DynamicLayers (see prefix_cache)
        for layer, kept in zip(layers, stored.layers, strict=True):
            layer.update(kept.keys[..., :length, :], kept.values[..., :length, :])
    return cache


def _pad_before(states: torch.Tensor, pad: int) -> torch.Tensor:
    """``states`` ([1, heads, tokens, dim]) after ``pad`` zero positions."""
    if pad <= 0:
        return states
    zeros = states.new_zeros((*states.shape[:2], pad, states.shape[3]))
    return torch.cat([zeros, states], dim=-2)


def _step_inputs(
    feeds: Sequence[Sequence[int]], positions: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One decode step's input ids, new mask columns and position ids.

    Each row feeds its ``feeds`` tokens (one, or more where forced text was added),
    right-aligned; the padding before a shorter feed is masked out.
    """
    width = max(len(f) for f in feeds)
    step = torch.full((len(feeds), width), pad_id, dtype=torch.long)
    fresh = torch.zeros((len(feeds), width), dtype=torch.long)
    last = positions.cpu()
    places = last.repeat(1, width) + 1
    for row, feed in enumerate(feeds):
        n = len(feed)
        step[row, width - n :] = torch.tensor(list(feed), dtype=torch.long)
        fresh[row, width - n :] = 1
        places[row, width - n :] = last[row, 0] + torch.arange(1, n + 1)
    return step, fresh, places
