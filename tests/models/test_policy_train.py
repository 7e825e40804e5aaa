"""Behaviour cloning (webqa.models.policy_train) on the real SmolLM2-135M: a few steps on
the expert's demonstrations lower the loss on the replies, and the folder written loads
as a policy and generates. Short examples only (the answers; a browsing step's guided
system prompt alone is ~740 tokens, too slow for a test on two cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import with_smollm
from tests.core.test_expert import BURKINA, MALI, named_first, web
from webqa import demos
from webqa.errors import InputError
from webqa.expert import (
    Row,
    demonstrate,
    read_demonstrations,
    train_on_demonstrations,
    training_examples,
)
from webqa.models.base import GenerationRequest, Message
from webqa.models.local import LocalPolicy
from webqa.models.policy_train import REPORT_FILE, PolicyTrainReport, train_policy
from webqa.procedure import Guided

SPEC = "smollm2-135m"
MALI_ROW = Row(
    "What is the capital of Mali?",
    ("Bamako",),
    True,
    ("Mali",),
    ("Its capital and largest city is Bamako.",),
    id="mali",
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, smollm_converted: Path) -> Path:
    return with_smollm(smollm_converted, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert MALI.title == "Mali"
    made = [demonstrate(row, web(), Guided(named_first)) for row in (BURKINA, MALI_ROW)]
    path = tmp_path_factory.mktemp("demos") / "demos.jsonl"
    path.write_text("".join(demos.to_json(d) + "\n" for d in made), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(
    cache: Path, demo_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PolicyTrainReport, Path]:
    found = training_examples(read_demonstrations(demo_file), str(demo_file))
    out = tmp_path_factory.mktemp("policy") / "policy"
    done: list[tuple[int, int]] = []
    report = train_policy(
        found.examples,
        out,
        base=SPEC,
        epochs=2,
        lr=1e-4,
        max_length=400,  # the answers fit; the browsing steps are left out, counted
        batch_size=2,
        cache_dir=cache,
        progress=lambda a, b: done.append((a, b)),
        data=found.summary(),
    )
    assert done[0] == (0, 4) and done[-1] == (4, 4)
    return report, out


def test_a_few_steps_lower_the_loss(trained: tuple[PolicyTrainReport, Path]) -> None:
    report, _ = trained
    assert (report.pairs, report.answer_pairs, report.browse_pairs) == (2, 2, 0)
    assert report.too_long == 4  # two browsing steps each (click, quote), over 400 tokens
    assert report.steps == 2 and not report.lora
    # the same two answers again: 1.15 -> 0.14 here (and 0.009, 0.0014 two steps on)
    assert report.loss_end < report.loss_start * 0.5, report.loss_curve
    # the two answers share their system prompt: it ran once a step
    assert report.tokens_run < report.tokens
    assert report.tokens_per_second > 0 and report.data["used"] == 2


def test_the_folder_loads_as_a_policy_and_generates(
    trained: tuple[PolicyTrainReport, Path], demo_file: Path
) -> None:
    report, out = trained
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", REPORT_FILE, "tokenizer.json"} <= files
    assert not any(name.startswith("adapter") for name in files)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no partials
    saved = json.loads((out / REPORT_FILE).read_text())
    assert saved["report"]["loss_end"] == report.loss_end
    assert saved["settings"]["base"] == SPEC and saved["settings"]["dtype"] == "float32"
    policy = LocalPolicy(str(out), dtype="float32", prefix_cache=False)
    found = training_examples(read_demonstrations(demo_file), "")
    answer = next(e for e in found.examples if e.kind == "answer")
    [reply] = policy.generate([GenerationRequest(chat=answer.chat, max_new_tokens=12)])
    assert reply.text.strip()


def test_a_quote_not_on_its_page_names_the_file_and_line(
    demo_file: Path, tmp_path: Path, cache: Path
) -> None:
    lines = demo_file.read_text().splitlines()
    record = json.loads(lines[1])
    record["steps"][2]["command"] = "Quote: Its capital is Timbuktu."
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\n" + json.dumps(record) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl line 2 step 3: the quote is not in"):
        train_on_demonstrations(bad, tmp_path / "out", base=SPEC, cache_dir=cache)
    assert not (tmp_path / "out").exists()


def test_a_folder_with_other_things_in_it_is_refused(demo_file: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a policy written by"):
        train_on_demonstrations(demo_file, tmp_path)
    with pytest.raises(InputError, match="--max-length must be at least"):
        train_on_demonstrations(demo_file, tmp_path / "new", max_length=8)


def test_lora_adapters_are_merged_into_a_plain_folder(
    cache: Path, demo_file: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    from webqa.models.policy_train import base_folder

    report = train_on_demonstrations(
        demo_file, tmp_path / "lora", base=SPEC, lora=True, lr=1e-3, max_length=400, cache_dir=cache
    )
    assert report.lora and report.trainable_parameters < report.parameters / 20
    files = {p.name for p in (tmp_path / "lora").iterdir()}
    assert "model.safetensors" in files and not any("adapter" in name for name in files)
    merged = load_file(tmp_path / "lora" / "model.safetensors")
    assert not any("lora" in name for name in merged)
    base = load_file(base_folder(SPEC, cache) / "model.safetensors")
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged[name], base[name].float())  # the adapters' change is in
    policy = LocalPolicy(str(tmp_path / "lora"), dtype="float32", prefix_cache=False)
    [reply] = policy.generate([GenerationRequest(chat=[Message("user", "Hi")], max_new_tokens=4)])
    assert reply.tokens > 0
