"""Fine-tune a policy on what it should have replied (``webqa policy train``): behaviour
cloning, as WebGPT's policy first learned to browse from people's demonstrations.

Each training example is a chat the policy sees and the reply it should give: a
browsing step's observation and its command, or the answer prompt and the answer
(``webqa.expert.training_examples`` turns demonstrations into examples; this module
knows only chats). The chat goes through the base model's own chat template with the
generation prompt (exactly what ``LocalPolicy.encode_chat`` sends), the reply follows
with the end-of-turn token that stops decoding, and the loss is the cross-entropy of the
reply's tokens only: the prompt is read, never learned. Only the reply's logits are
computed (``logits_to_keep``), which spares the output layer's 49k-151k-word
products over the ~740 prompt tokens every browsing step carries.

The base is a preset (its GGUF dequantised once, by ``webqa.models.local.convert_gguf``,
into the same cached folder ``LocalPolicy`` uses) or a Hugging Face model folder.
Training runs in float32 (bf16 on a CPU without native bf16 is emulated and far
slower). A base of more than ``LORA_ABOVE`` parameters trains LoRA adapters on every
linear layer instead of all weights (``lora``: None decides so, True or False says),
merged into the weights before saving: the folder written is a plain Hugging Face
model folder, float32 (bf16 would round away most of a fine-tune's small changes),
with the tokenizer and its chat template and ``webqa-policy.json`` (the report and the
settings), which ``webqa ask --model DIR`` and ``LocalPolicy(str(DIR))`` load as any
other. It appears whole (written beside
``out_dir`` under a temporary name, then renamed) or not at all.

Examples of one optimiser step that share their head (the tokens before the last
message's text: the system prompt) run it once, its KV cache (with its graph) shared by
each example's rest, and its gradients gathered from all of them (the same gradients
as running each whole, to float rounding: 2e-6 relative). A browsing step is ~950
SmolLM2 tokens of which ~740 are the guided system prompt, an answer ~240 of which ~150
are its system prompt: in batches of 8 the model runs ~45% of the examples' tokens.

Speed on the 2-core AVX2 AMD EPYC here, float32, measured while three other jobs kept
the load at ~5 (so an idle machine is faster; ``PolicyTrainReport.tokens_per_second``
counts the examples' tokens): SmolLM2-135M, all weights, 51 and 61 tokens/s in two
runs (16 examples of the expert's, batches of 8); Qwen2.5-0.5B (630M parameters as
converted, LoRA rank 16 on 8.8M), 24 tokens/s (12 examples, batches of 6). An expert
episode trains on two browsing steps and its answer, ~2,100 tokens: 300 episodes are
~3.5 h an epoch with SmolLM2-135M and ~7 h with the 0.5B at those rates.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from webqa.errors import InputError, ModelError
from webqa.models.base import Chat, Message
from webqa.models.trained import Output, loss_curve, quiet, warmup_then_linear

REPORT_FILE = "webqa-policy.json"
# tokens of an example (prompt and reply): a SmolLM2 browsing step runs 900-1,089
DEFAULT_MAX_LENGTH = 2048
OUTPUT = Output(REPORT_FILE, "a policy", "webqa policy train")
DEFAULT_BASE = "smollm2-135m"
DEFAULT_LR = 2e-5  # all weights
DEFAULT_LORA_LR = 2e-4  # LoRA adapters learn from zero and want a larger step
LORA_ABOVE = 300e6  # parameters: a larger base trains LoRA adapters (lora=None)
LORA_RANK = 16
LORA_ALPHA = 32
WARMUP_SHARE = 0.1  # of the steps, the learning rate rising linearly; then falling to 0
CLIP_NORM = 1.0
MIN_LENGTH = 32
MIN_SHARED = 64  # tokens: a shorter head shared in a batch is run with each example
IGNORE = -100  # the label of a prompt token: no loss

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Example:
    """One thing to learn: the ``chat`` the policy sees and the ``target`` reply.

    ``kind`` is "browse" (a browsing step's command) or "answer" (the answer written
    from the quotes); ``where`` says where it came from ("demos.jsonl line 3 step 2"),
    for messages."""

    chat: Chat
    target: str
    kind: str = "browse"
    where: str = ""


@dataclass(frozen=True)
class PolicyTrainReport:
    """What a training run did.

    ``tokens`` counts the examples' tokens (prompt and reply) over all epochs,
    ``target_tokens`` those the loss is on, ``tokens_run`` those the model ran forward
    and back (a system prompt that examples of one step share runs once for them);
    ``tokens_per_second`` is ``tokens`` over the training ``seconds`` (not loading or
    saving). ``loss_start`` and
    ``loss_end`` are the mean per-token loss of the first and last stretches of steps
    (``loss_curve``: at most ``LOSS_CURVE_POINTS`` equal stretches). ``data`` holds
    what the caller said about where the examples came from (the demonstrations' counts)."""

    base: str
    base_folder: str
    out_dir: str
    lora: bool
    parameters: int
    trainable_parameters: int
    examples: int  # given
    pairs: int  # trained on (the rest were longer than max_length)
    browse_pairs: int
    answer_pairs: int
    too_long: int  # examples left out: prompt and reply over max_length tokens
    epochs: int
    steps: int
    batch_size: int
    lr: float
    max_length: int
    tokens: int
    tokens_run: int
    target_tokens: int
    seconds: float
    tokens_per_second: float
    loss_start: float
    loss_end: float
    loss_curve: list[float] = field(default_factory=list)
    total_seconds: float = 0.0  # everything, from loading the base to the folder's rename
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Encoded:
    ids: list[int]
    labels: list[int]  # IGNORE on the prompt
    target: int  # how many tokens the loss is on (the reply and its end token)
    kind: str
    head: int  # tokens before the last message's text: the same for every chat that
    # shares the messages before it (the system prompt), run once for a batch


def train_policy(
    examples: Sequence[Example],
    out_dir: str | Path,
    *,
    base: str = DEFAULT_BASE,
    lora: bool | None = None,
    epochs: int = 1,
    lr: float | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = 8,
    seed: int = 0,
    threads: int | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    data: Mapping[str, Any] | None = None,
) -> PolicyTrainReport:
    """Fine-tune ``base`` on ``examples`` and save it in ``out_dir`` (see the module's
    docstring); the report says how it went.

    ``lr`` defaults to ``DEFAULT_LR`` (all weights) or ``DEFAULT_LORA_LR`` (LoRA);
    ``batch_size`` examples make one optimiser step (run one at a time, their gradients
    summed and weighted by their reply tokens: no padding). An example whose prompt and
    reply are over ``max_length`` tokens is left out and counted (``too_long``), never
    cut: a cut prompt is not what the policy sees. ``progress(done, total)`` is called
    as examples go through the model, over all epochs. ``cache_dir``: where a preset's
    converted folder is kept (default: the data directory's ``models/``, as
    ``LocalPolicy``). ``data`` is stored with the report.

    ``out_dir`` must be new, empty, or a policy this function wrote before (it is
    replaced). InputError for bad settings, no examples or none that fits, or an
    ``out_dir`` that holds something else; ModelError where the base cannot be loaded."""
    started = time.perf_counter()
    _check_settings(epochs, lr, max_length, batch_size)
    if not examples:
        raise InputError("no examples to train on")
    target = Path(out_dir)
    OUTPUT.check(target)
    folder = base_folder(base, cache_dir)

    import torch

    from webqa.models.hardware import default_threads

    threads = threads or default_threads()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left alone
            torch.manual_seed(seed)
            tokenizer, model = _load(folder)
            encoded = [_encode(tokenizer, model, e) for e in examples]
            fits = [x for x in encoded if len(x.ids) <= max_length]
            if not fits:
                longest = min(len(x.ids) for x in encoded)
                raise InputError(
                    f"every example is over --max-length {max_length} tokens (the shortest "
                    f"is {longest}); raise --max-length"
                )
            parameters = sum(p.numel() for p in model.parameters())
            use_lora = parameters > LORA_ABOVE if lora is None else lora
            if use_lora:
                model = _with_lora(model)
            rate = lr if lr is not None else (DEFAULT_LORA_LR if use_lora else DEFAULT_LR)
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            losses, run, seconds = _train(model, fits, epochs, batch_size, rate, seed, progress)
            if use_lora:
                with quiet():
                    model = model.merge_and_unload()
    finally:
        torch.set_num_threads(previous_threads)

    tokens = epochs * sum(len(x.ids) for x in fits)
    curve = loss_curve(losses)
    report = PolicyTrainReport(
        base=base,
        base_folder=str(folder),
        out_dir=str(target),
        lora=use_lora,
        parameters=parameters,
        trainable_parameters=trainable,
        examples=len(examples),
        pairs=len(fits),
        browse_pairs=sum(x.kind == "browse" for x in fits),
        answer_pairs=sum(x.kind == "answer" for x in fits),
        too_long=len(encoded) - len(fits),
        epochs=epochs,
        steps=len(losses),
        batch_size=batch_size,
        lr=rate,
        max_length=max_length,
        tokens=tokens,
        tokens_run=run,
        target_tokens=epochs * sum(x.target for x in fits),
        seconds=round(seconds, 3),
        tokens_per_second=round(tokens / seconds, 1) if seconds > 0 else 0.0,
        loss_start=curve[0],
        loss_end=curve[-1],
        loss_curve=curve,
        data=dict(data or {}),
    )
    settings = {
        "base": base,
        "base_folder": str(folder),
        "lora": use_lora,
        "lora_rank": LORA_RANK if use_lora else None,
        "lora_alpha": LORA_ALPHA if use_lora else None,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": rate,
        "max_length": max_length,
        "seed": seed,
        "threads": threads,
        "dtype": "float32",
        "input": "the base's chat template with the generation prompt, then the reply "
        "and its end-of-turn token; loss on the reply only",
        "warmup_share": WARMUP_SHARE,
        "clip_norm": CLIP_NORM,
        "torch": str(torch.__version__),
        "transformers": _version("transformers"),
        "peft": _version("peft") if use_lora else None,
    }
    report = _with_total(report, time.perf_counter() - started)
    OUTPUT.save(model, tokenizer, target, {"report": report.to_dict(), "settings": settings})
    return _with_total(report, time.perf_counter() - started)


def base_folder(base: str, cache_dir: Path | None = None) -> Path:
    """The Hugging Face folder of ``base``, resolved as ``LocalPolicy`` resolves a model
    (``resolve_model``): a preset or ``.gguf`` file is converted once into the cached
    folder ``LocalPolicy`` loads from (``convert_gguf``)."""
    from webqa.models.local import MARKER, convert_gguf
    from webqa.models.presets import resolve_model
    from webqa.paths import sub_dir

    resolved = resolve_model(base, cache_dir=cache_dir)
    if resolved.kind != "gguf":
        return resolved.path
    folder = (cache_dir if cache_dir is not None else sub_dir("models")) / resolved.key
    if not (folder / MARKER).is_file():
        convert_gguf(resolved, folder)
    return folder


def _with_total(report: PolicyTrainReport, seconds: float) -> PolicyTrainReport:
    return PolicyTrainReport(**{**report.to_dict(), "total_seconds": round(seconds, 3)})


def _check_settings(epochs: int, lr: float | None, max_length: int, batch_size: int) -> None:
    if epochs < 1:
        raise InputError(f"--epochs must be at least 1, not {epochs}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr must be a positive number, not {lr}")
    if max_length < MIN_LENGTH:
        raise InputError(f"--max-length must be at least {MIN_LENGTH} tokens, not {max_length}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, not {batch_size}")


def _load(folder: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with quiet():
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                str(folder), dtype=torch.float32, local_files_only=True
            )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load base model {str(folder)!r}: {_first_line(exc)}") from None
    if tokenizer.chat_template is None:
        raise ModelError(f"base model {str(folder)!r} has no chat template")
    model.train()
    return tokenizer, model


def _end_token(tokenizer: Any, model: Any) -> int:
    """The token that ends a reply: the first that stops ``LocalPolicy``'s decoding (the
    generation config's end of turn, "<|im_end|>" for SmolLM2 and Qwen), else the
    tokenizer's end of sequence."""
    eos = model.generation_config.eos_token_id
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    if ids:
        return int(ids[0])
    if tokenizer.eos_token_id is None:
        raise ModelError("the base model names no end-of-sequence token")
    return int(tokenizer.eos_token_id)


def _encode(tokenizer: Any, model: Any, example: Example) -> _Encoded:
    """The prompt exactly as ``LocalPolicy.encode_chat`` builds it, then the reply and
    its end token; labels only on the reply."""
    prompt = _chat_ids(tokenizer, example.chat, example.where)
    # the tokens before the last message's text (as LocalPolicy's prefix cache finds them)
    probe = [*example.chat[:-1], Message(example.chat[-1].role, "")]
    head = min(_common_length(prompt, _chat_ids(tokenizer, probe, example.where)), len(prompt) - 1)
    reply = list(tokenizer(example.target, add_special_tokens=False)["input_ids"])
    reply.append(_end_token(tokenizer, model))
    return _Encoded(
        prompt + reply, [IGNORE] * len(prompt) + reply, len(reply), example.kind, max(0, head)
    )


def _chat_ids(tokenizer: Any, chat: Chat, where: str) -> list[int]:
    messages = [{"role": m.role, "content": m.content} for m in chat]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as error:  # jinja errors, a template that rejects a role
        raise ModelError(f"{where}: chat template failed: {error}") from error
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def _with_lora(model: Any) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ModelError(
            "LoRA needs the peft package (pip install peft), or train all weights with --no-lora"
        ) from None
    config = LoraConfig(
        r=LORA_RANK,
        lora_alpha=LORA_ALPHA,
        lora_dropout=0.0,
        target_modules="all-linear",  # every linear layer but the output head
        task_type="CAUSAL_LM",
    )
    with quiet():
        return get_peft_model(model, config)


def _train(
    model: Any,
    items: Sequence[_Encoded],
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: Progress | None,
) -> tuple[list[float], int, float]:
    """AdamW, the learning rate rising over the first tenth of the steps then falling
    linearly to 0, gradients clipped; each epoch in its own seeded order. A step's
    loss is the mean over its reply tokens. Within a step, examples that share their
    head (the system prompt) run it once (``_losses``). The loss of every step, the
    tokens run and the seconds."""
    import torch

    steps = epochs * math.ceil(len(items) / batch_size)
    warmup = max(1, round(WARMUP_SHARE * steps))

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_linear(steps, warmup))
    order = random.Random(seed)
    losses: list[float] = []
    total = epochs * len(items)
    done = run = 0
    if progress is not None:
        progress(0, total)
    share = _sharable(model)
    model.train()
    started = time.perf_counter()
    for _ in range(epochs):
        shuffled = list(items)
        order.shuffle(shuffled)
        for start in range(0, len(shuffled), batch_size):
            batch = shuffled[start : start + batch_size]
            weight = sum(x.target for x in batch)
            optimizer.zero_grad(set_to_none=True)
            summed = 0.0
            for shared, group in _by_head(batch, share):
                run += shared + sum(len(x.ids) - shared for x in group)
                for _, loss in _losses(model, shared, group, weight):
                    summed += loss
                    done += 1
                    if progress is not None:
                        progress(done, total)
            torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
            optimizer.step()
            scheduler.step()
            losses.append(summed / weight)
    seconds = time.perf_counter() - started
    model.eval()
    return losses, run, seconds


def _by_head(batch: Sequence[_Encoded], share: bool) -> list[tuple[int, list[_Encoded]]]:
    """The batch in groups that share their head (the system prompt), with how many
    tokens to run once for the group (0: none, for an example alone in its group, or
    without ``share``)."""
    groups: dict[tuple[int, ...], list[_Encoded]] = {}
    for x in batch:
        groups.setdefault(tuple(x.ids[: x.head]) if share else (), []).append(x)
    return [
        (len(head) if len(group) > 1 and len(head) >= MIN_SHARED else 0, group)
        for head, group in groups.items()
    ]


def _losses(
    model: Any, shared: int, group: Sequence[_Encoded], weight: int
) -> Iterator[tuple[_Encoded, float]]:
    """Run each example of ``group`` forward and back, its loss summed over its reply
    tokens and divided by ``weight`` (the batch's reply tokens: the gradients add up to
    the batch's mean); the first ``shared`` tokens, the same for all, run once, their
    gradients gathered from every example. Yields each example and its summed loss."""
    import torch
    import torch.nn.functional as F
    from transformers import DynamicCache

    from webqa.models.decoding import _cache_argument

    argument = _cache_argument(type(_inner(model)))
    head_kv = None
    if shared:
        filled: Any = DynamicCache(config=_inner(model).config)
        model(
            input_ids=torch.tensor([group[0].ids[:shared]]),
            use_cache=True,
            logits_to_keep=1,
            **{argument: filled},
        )
        head_kv = [(layer.keys, layer.values) for layer in filled.layers]
    for index, x in enumerate(group):
        ids = torch.tensor([x.ids[shared:]])
        cache = DynamicCache(head_kv) if head_kv is not None else None
        # the logits of the positions that predict the reply, and only those
        logits = model(
            input_ids=ids,
            use_cache=cache is not None,
            logits_to_keep=x.target + 1,
            **{argument: cache},
        ).logits[0, :-1]
        labels = torch.tensor(x.labels[-x.target :])
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        # the head's graph is kept for the group's next examples, then let go
        (loss / weight).backward(retain_graph=head_kv is not None and index < len(group) - 1)
        yield x, float(loss.detach())


def _inner(model: Any) -> Any:
    """The transformers model (under peft's wrapper, with LoRA)."""
    inner = getattr(model, "get_base_model", None)
    return inner() if callable(inner) else model


def _sharable(model: Any) -> bool:
    """Whether the model's cache is plain growing layers, so a head run once can be
    shared (sliding windows and the like: not)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    layers = DynamicCache(config=_inner(model).config).layers
    return all(type(layer) is DynamicLayer for layer in layers)


def _version(package: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(package)
    except Exception:  # not installed, or no metadata
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
