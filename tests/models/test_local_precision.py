"""LocalPolicy runs the precision webqa.models.hardware chooses (real SmolLM2-135M; the
GGUF converted once for the run: ``smollm_converted``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import with_smollm
from webqa.models import hardware
from webqa.models.base import GenerationRequest, Message
from webqa.models.hardware import Probe
from webqa.models.local import INT8_FILE, LocalPolicy

SPEC = "smollm2-135m"
# prompts whose greedy tokens win by a clear margin in float32 (on "What is the capital of
# France?" "The" beats "L" by 0.1 logit, and int8 flips it)
PROMPTS = ["Name three primary colors.", "Hi"]


@pytest.fixture(autouse=True)
def no_env_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBQA_DTYPE", raising=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, smollm_converted: Path) -> Path:
    return with_smollm(smollm_converted, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def float32(cache: Path) -> LocalPolicy:
    loaded = LocalPolicy(SPEC, cache_dir=cache, dtype="float32")  # the copy of the converted GGUF
    loaded.load()
    return loaded


def greedy(tokens: int = 12) -> list[GenerationRequest]:
    return [GenerationRequest(chat=[Message("user", p)], max_new_tokens=tokens) for p in PROMPTS]


def test_a_named_dtype_is_an_override(float32: LocalPolicy) -> None:
    import torch

    assert (float32.precision, float32.hardware.source) == ("float32", "override")
    assert float32.hardware.threads == float32.threads
    assert {p.dtype for p in float32._model.parameters()} == {torch.float32}
    json.dumps(float32.hardware.to_dict())  # what `webqa ask --json` reports


def agreement(a: LocalPolicy, b: LocalPolicy, answers: list) -> float:
    """The share of positions of greedy()'s prompts followed by ``answers`` where a's and
    b's models predict the same next token."""
    import torch

    same = total = 0
    with torch.inference_mode():
        for request, answer in zip(greedy(), answers, strict=True):
            ids = a.encode_chat(request.chat) + a._tokenizer(answer.text)["input_ids"]
            tokens = torch.tensor([ids])
            first = a._model(tokens).logits[0].argmax(-1)
            second = b._model(tokens).logits[0].argmax(-1)
            same += int((first == second).sum())
            total += len(ids)
    return same / total


def test_webqa_dtype_int8_runs_every_linear_layer_in_int8_close_to_float32(
    float32: LocalPolicy, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch import nn

    from webqa.models.int8 import Int8Linear

    monkeypatch.setenv("WEBQA_DTYPE", "int8")
    policy = LocalPolicy(SPEC, cache_dir=cache)  # dtype="auto": the variable decides
    assert policy.precision == "auto"  # nothing chosen before loading
    policy.load()
    assert (policy.precision, policy.hardware.source) == ("int8", "override")
    model = policy._model
    int8 = [m for m in model.modules() if isinstance(m, Int8Linear)]
    assert int8 and not any(isinstance(m, nn.Linear) for m in model.modules())
    # calibrated on the prompt templates: layers whose inputs have outlier channels are
    # smoothed (factors differ per channel), so every layer got its own factors
    assert all(m.smooth is not None and m.smooth.std() > 0 for m in int8)
    # a block's q/k/v projections are one product, as are its MLP's gate and up
    attention, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    assert attention.q_proj.group is attention.k_proj.group is attention.v_proj.group
    assert mlp.gate_proj.group is mlp.up_proj.group
    assert len(int8) == 4 * len(model.model.layers) + 1  # qkv, o, gate+up, down; lm_head
    assert (cache / policy_key() / INT8_FILE).is_file()
    alone = [policy.generate([request])[0] for request in greedy()]
    # each row's activations are quantised on their own scale: a row decodes the same
    # whatever else shares its batch (fbgemm scales a whole batch at once). Only up to
    # a near tie: a padded row's attention differs from an unpadded one in the last bits,
    # which int8 rounding can turn into another token ("Hi" is answered by "Hello! How
    # can I help you today?" and then EOS or " What's" by a hair)
    short = [replace(request, max_new_tokens=8) for request in greedy()]
    policy._prompts.clear()
    assert policy.generate(short) == [policy.generate([one])[0] for one in short]
    # int8 stays close to float32: fed float32's own greedy answers token by token, int8
    # predicts the same next token nearly everywhere (measured 87% on this 135M model,
    # 96% on Qwen 0.5B; one exact decode is no test, as a near tie may flip)
    expected = float32.generate(greedy())
    assert all(e.text.strip() for e in expected)
    assert agreement(float32, policy, expected) >= 0.8
    # a second load reads the cached layers instead of calibrating again
    written = (cache / policy_key() / INT8_FILE).stat().st_mtime_ns
    again = LocalPolicy(SPEC, cache_dir=cache)
    again.load()
    assert again.generate(greedy()[:1]) == alone[:1]
    assert (cache / policy_key() / INT8_FILE).stat().st_mtime_ns == written


def test_a_prompt_run_again_comes_out_exactly_as_before_without_running(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In int8 a float's last bits can flip a rounding and so a token: a prompt run again
    from a different kept start (the whole earlier prompt but its last token, say) could
    decode differently. A prompt seen before is not run again: its kept cache and last
    logits are reused, and a long-lived process (the worker) answers a question asked
    twice the same way."""
    monkeypatch.setenv("WEBQA_DTYPE", "int8")
    policy = LocalPolicy(SPEC, cache_dir=cache)
    system = "You browse the web and answer questions from what you read. " * 12
    asks = [
        GenerationRequest(
            chat=[Message("system", system), Message("user", question)],
            max_new_tokens=24,
            temperature=1.0,
            seed=7,
        )
        for question in ("Where is Ouagadougou?", "Where is Ouagadougou? Say more.")
    ]
    first = [policy.generate([ask])[0] for ask in asks]
    stats = policy.decode_stats
    before = stats.prefill_tokens
    assert [policy.generate([ask])[0] for ask in asks] == first
    assert stats.prefill_tokens == before  # nothing was run again
    fresh = LocalPolicy(SPEC, cache_dir=cache)  # a new process: the same first answer
    assert fresh.generate(asks[:1]) == first[:1]


def test_auto_follows_the_cached_probe_to_bf16(cache: Path, webqa_home: Path) -> None:
    """A machine whose probe found bf16 native (its times, as cached in the data
    directory): auto loads the model in bf16."""
    import torch

    policy = LocalPolicy(SPEC, cache_dir=cache, dtype="auto")
    key = hardware._fingerprint(hardware.cpu_info(), policy.threads)
    native = Probe(10.0, 2.0, 1.0, 0.8, "bfloat16", 5.0)  # bf16 prompts 5x float32's speed
    webqa_home.mkdir(parents=True, exist_ok=True)
    (webqa_home / hardware.CACHE_FILE).write_text(json.dumps({key: native.to_dict()}))
    hardware._choices.clear()  # this process's memo of earlier choices
    policy.load()
    assert (policy.precision, policy.hardware.source) == ("bfloat16", "cached")
    assert policy.hardware.probe == native
    assert {p.dtype for p in policy._model.parameters()} == {torch.bfloat16}
    [generation] = policy.generate(greedy(4)[:1])
    assert generation.text.strip()


def policy_key() -> str:
    from webqa.models.presets import resolve_model

    return resolve_model(SPEC).key


def test_a_float32_copy_is_kept_and_mapped_in_as_transformers_would_load_it(
    float32: LocalPolicy, cache: Path
) -> None:
    import torch

    from webqa.models.local import COPY_PREFIX, _load_pretrained, _stamp
    from webqa.models.presets import resolve_model

    folder = cache / resolve_model(SPEC).key
    copy = folder / f"{COPY_PREFIX}float32.safetensors"
    assert copy.is_file()
    assert copy.name not in _stamp(folder)  # a derived copy does not change what the model is
    reference, tokenizer = _load_pretrained(folder, "float32", "cpu", copies=False)
    model = float32._model
    assert type(model) is type(reference)
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    ids = torch.tensor([tokenizer.encode("The capital of France is")])
    with torch.inference_mode():
        assert torch.equal(model(ids).logits, reference(ids).logits)
    for name, buffer in reference.named_buffers():  # rebuilt, not left on the meta device
        assert torch.equal(model.get_buffer(name), buffer), name
