"""`webqa reward train`: the Bradley-Terry loss, the held-out split, and a real training run
of the packaged MiniLM on comparisons where the better answer is learnable (it states the
fact its quote states; the other names a fact the quote does not), whose folder
``HFRewardModel`` and ``api.load_reward`` then load and score with. The command's
checks (bad rows, settings, the folder) run on a tiny random BERT, in a second."""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from webqa import api
from webqa.comparisons import Comparison, write_comparisons
from webqa.errors import InputError
from webqa.frontend.reward import add_reward_parser, run_reward, summary
from webqa.models.base import RewardModel
from webqa.models.hf_reward import HFRewardModel, format_context
from webqa.models.reward_train import (
    REPORT_FILE,
    TrainReport,
    bradley_terry_loss,
    heldout_side,
    model_pairs,
    split,
    train_reward,
)
from webqa.values import Quote

from .test_reward_hf import tiny_model

NAMES = "Alder Brennan Castell Dorrit Ellery Fenwick Garrow Hollis Ingram Jessop".split()
CITIES = "Lisbon Oslo Quito Hanoi Dakar Lima Perth Tunis Riga Sofia Accra Minsk".split()
COLOURS = "red blue green yellow purple orange white black grey brown".split()


def learnable(n: int, seed: int = 0) -> list[Comparison]:
    """``n`` comparisons over distinct questions (a birthplace, a year of death, a flag's
    colour): the better answer states the value in its quote, the other another value of
    the same kind; which of the two comes first is random."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = f"{rng.choice(NAMES)} {rng.choice(NAMES)}son {i}"
        kind = i % 3
        if kind == 0:
            right, wrong = rng.sample(CITIES, 2)
            question = f"Where was {name} born?"
            text = f"{name} was born in {right} and later moved abroad to work as an engineer."
            good, bad = f"{name} was born in {right} [1].", f"{name} was born in {wrong} [1]."
        elif kind == 1:
            right, wrong = (str(y) for y in rng.sample(range(1800, 2000), 2))
            question = f"In which year did {name} die?"
            text = f"{name} died in {right}, after a long career as a painter."
            good, bad = f"{name} died in {right} [1].", f"{name} died in {wrong} [1]."
        else:
            right, wrong = rng.sample(COLOURS, 2)
            question = f"What colour was the flag of {name}'s club?"
            text = f"The club that {name} founded flew a {right} flag over its ground."
            good, bad = f"The flag was {right} [1].", f"The flag was {wrong} [1]."
        quotes = (Quote(name, f"https://en.example.org/wiki/{i}", "", text),)
        if rng.random() < 0.5:
            out.append(Comparison(question, quotes, good, quotes, bad, 1.0))
        else:
            out.append(Comparison(question, quotes, bad, quotes, good, -1.0))
    return out


# -- the loss -------------------------------------------------------------------------


def test_a_preference_is_the_logistic_loss_of_the_margin() -> None:
    first, second = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    margin = first - second
    expected = torch.nn.functional.softplus(-margin).mean()  # -logsigmoid(margin)
    assert float(bradley_terry_loss(first, second, torch.ones(2))) == pytest.approx(float(expected))
    # p = 0: the second is better, the same loss with the roles swapped
    assert float(bradley_terry_loss(first, second, torch.zeros(2))) == pytest.approx(
        float(bradley_terry_loss(second, first, torch.ones(2)))
    )


def test_ties_count_half_each_way() -> None:
    first, second = torch.tensor([1.5, -0.3, 0.0]), torch.tensor([0.2, 0.9, 0.0])
    half = torch.full((3,), 0.5)
    tie = float(bradley_terry_loss(first, second, half))
    either = [float(bradley_terry_loss(first, second, torch.full((3,), p))) for p in (1.0, 0.0)]
    assert tie == pytest.approx(sum(either) / 2)
    assert tie == pytest.approx(float(bradley_terry_loss(second, first, half)))  # symmetric
    # smallest where the rewards are equal: log 2, and no pull either way there
    same = torch.tensor([0.7], requires_grad=True)
    loss = bradley_terry_loss(same, same.detach().clone(), torch.tensor([0.5]))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(math.log(2))
    assert same.grad is not None and float(same.grad) == pytest.approx(0.0, abs=1e-7)
    assert tie > math.log(2)


# -- pairs and the split ----------------------------------------------------------------


def test_the_held_out_side_follows_the_question_only() -> None:
    questions = [f"question number {i}?" for i in range(400)]
    held = [q for q in questions if heldout_side(q, 0.25)]
    assert 60 < len(held) < 140  # about a quarter
    assert heldout_side("Question  NUMBER 7?", 0.25) == heldout_side("question number 7?", 0.25)
    assert not any(heldout_side(q, 0.0) for q in questions)
    assert [q for q in questions if heldout_side(q, 0.25)] == held  # the same every time


def test_pairs_read_as_the_scorer_reads_and_identical_ones_are_skipped() -> None:
    quote = Quote("Oslo", "https://www.example.org/Oslo", "", "Oslo is the capital.")
    same = Comparison("Capital?", (quote,), "Oslo [1].", (quote,), "Oslo [1]. ", 1.0)
    tie = Comparison("Capital?", (quote,), "Oslo [1].", (quote,), "Bergen [1].", 0.0)
    items, skipped = model_pairs([same, tie])
    assert skipped == 1 and len(items) == 1
    (pair,) = items
    assert pair.tie and pair.p == 0.5
    # the domain a comparisons file lacks comes from the URL, as the browser shows it
    shown = Quote("Oslo", quote.url, "example.org", quote.text)
    assert pair.first == (format_context("Capital?", [shown]), "Oslo [1].")
    assert "[1] Oslo (example.org): Oslo is the capital." in pair.first[0]


def test_too_few_held_out_questions_train_on_everything() -> None:
    items, _ = model_pairs(learnable(3))
    train, held, note = split(items, 0.1)
    assert (len(train), held) == (3, [])
    assert note.startswith("not measured") and "trained on all" in note
    train, held, note = split(items, 0.0)
    assert (len(train), held, note) == (3, [], "not measured: --holdout 0")


# -- a real training run ----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainReport, Path, list[Any]]:
    """MiniLM trained once on 64 learnable comparisons (~25 s on two busy AVX2 cores)."""
    comparisons = learnable(64)
    out_dir = tmp_path_factory.mktemp("reward") / "model"
    calls: list[tuple[int, int]] = []
    report = train_reward(
        comparisons,
        out_dir,
        holdout=0.25,
        epochs=1,
        batch_size=4,
        lr=3e-4,
        max_length=128,
        seed=0,
        progress=lambda done, total: calls.append((done, total)),
    )
    return report, out_dir, [calls, comparisons]


def test_training_learns_what_is_better(trained: tuple[TrainReport, Path, list[Any]]) -> None:
    report, out_dir, (calls, comparisons) = trained
    assert report.comparisons == 64 and report.skipped_identical == 0 and report.ties == 0
    assert report.train_pairs + report.heldout_pairs == 64
    assert report.heldout_scored == report.heldout_pairs >= 10
    assert report.heldout_questions == report.heldout_pairs  # one pair a question here
    assert report.heldout_accuracy is not None and report.heldout_accuracy > 0.6
    assert report.heldout_accuracy_start is not None  # the untrained start, for the gain
    assert report.heldout_loss is not None and report.heldout_loss_start is not None
    assert report.heldout_loss < report.heldout_loss_start  # the loss fell, held out
    assert report.train_loss < report.train_loss_start  # and on the training pairs
    assert report.steps == math.ceil(report.train_pairs / 4)
    assert report.pairs_per_second > 0 and report.seconds > 0
    # progress: from 0 to the total, never backwards (held out, training, held out)
    total = 2 * report.heldout_pairs + report.train_pairs
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    saved = json.loads((out_dir / REPORT_FILE).read_text())
    assert saved["report"]["heldout_accuracy"] == report.heldout_accuracy
    assert saved["settings"]["lr"] == 3e-4 and saved["settings"]["max_length"] == 128
    assert not [p for p in out_dir.parent.iterdir() if p.name != "model"]  # no leftovers


def test_the_folder_scores_through_hf_reward_model(
    trained: tuple[TrainReport, Path, list[Any]],
) -> None:
    report, out_dir, (_, comparisons) = trained
    model = HFRewardModel(out_dir, max_length=128)
    held = [c for c in comparisons if heldout_side(c.question, 0.25)]
    assert len(held) == report.heldout_pairs
    right = []
    for c in held:
        scores = model.score(c.question, [(c.quotes_0, c.answer_0), (c.quotes_1, c.answer_1)])
        better = c.preferred
        assert better is not None
        right.append(scores[better] > scores[1 - better])
    # as the trainer measured it (within a pair: where the CPU has native bf16 the
    # scorer runs in bf16)
    assert report.heldout_accuracy is not None
    assert sum(right) / len(held) == pytest.approx(report.heldout_accuracy, abs=1.01 / len(held))
    assert sum(right) / len(held) > 0.6


def test_webqa_ask_loads_the_folder(trained: tuple[TrainReport, Path, list[Any]]) -> None:
    _, out_dir, (_, comparisons) = trained
    reward = api.load_reward(str(out_dir), policy=None)  # type: ignore[arg-type]
    assert isinstance(reward, RewardModel)
    c = comparisons[0]
    scores = reward.score(c.question, [(c.quotes_0, c.answer_0), (c.quotes_1, c.answer_1)])
    assert len(scores) == 2 and all(math.isfinite(s) for s in scores)


# -- the command, on a tiny random BERT --------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="webqa")
    add_reward_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("tiny") / "bert", 1)


def test_the_command_trains_and_prints_json(
    tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "comparisons.jsonl"
    rows = learnable(30)
    rows.append(Comparison(rows[0].question, (), "same", (), "same", 1.0))
    write_comparisons(source, rows)
    out_dir = tmp_path / "rm"
    argv = ["reward", "train", str(source), "-o", str(out_dir), "--base", str(tiny)]
    argv += ["--architecture", "cross-encoder"]
    argv += ["--holdout", "0.3", "--max-length", "64", "--batch-size", "4", "--json"]
    args = parse(argv)
    assert (args.epochs, args.seed, args.progress) == (None, None, None)  # the trainer's
    assert run_reward(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["comparisons"] == 31 and report["skipped_identical"] == 1
    assert report["train_pairs"] + report["heldout_pairs"] == 30
    assert HFRewardModel(out_dir, max_length=64).score("q", [((), "a")])  # loads, scores
    lines = summary(TrainReport(**report))
    assert "1 skipped (both answers the same text)" in lines[0]
    assert lines[-1].startswith(f"saved {out_dir}")
    # again into the same folder: the earlier reward model is replaced whole
    before = (out_dir / REPORT_FILE).read_text()
    assert run_reward(parse([*argv, "--seed", "1"])) == 0
    assert (out_dir / REPORT_FILE).read_text() != before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".rm")]  # no leftovers


def test_a_bad_row_names_the_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "comparisons.jsonl"
    write_comparisons(source, learnable(2))
    with source.open("a") as f:
        f.write(json.dumps({"question": "q", "answer_0": "a", "answer_1": "b", "score_0": 3}))
        f.write("\n")
    args = parse(["reward", "train", str(source), "-o", str(tmp_path / "rm")])
    with pytest.raises(InputError, match=rf"{source} line 3: score_0 3 is not in \[-1, 1\]"):
        run_reward(args)
    assert not (tmp_path / "rm").exists()


def test_few_questions_train_on_all_and_say_accuracy_is_not_measured(
    tmp_path: Path, tiny: Path
) -> None:
    report = train_reward(learnable(4), tmp_path / "rm", base=tiny, max_length=64, holdout=0.1)
    assert report.heldout_accuracy is None and report.heldout_accuracy_start is None
    assert report.train_pairs == 4 and report.heldout_pairs == 0
    assert "not measured" in report.heldout_note
    assert "held-out accuracy not measured" in summary(report)[2]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"holdout": 0.95}, "--holdout must be from 0 to 0.9"),
        ({"epochs": 0}, "--epochs must be at least 1"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"lr": -1.0}, "--lr must be a positive number"),
        ({"max_length": 65}, "--max-length 65 is over the base model's 64 positions"),
    ],
)
def test_bad_settings_are_input_errors(
    tmp_path: Path, tiny: Path, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        train_reward(learnable(4), tmp_path / "rm", base=tiny, **{"max_length": 64, **settings})
    assert not (tmp_path / "rm").exists()


def test_nothing_to_train_on_and_a_folder_of_other_things_are_refused(
    tmp_path: Path, tiny: Path
) -> None:
    with pytest.raises(InputError, match="no comparisons to train on"):
        train_reward([], tmp_path / "rm", base=tiny)
    same = Comparison("q", (), "same", (), "same", 1.0)
    with pytest.raises(InputError, match="all 1 comparisons have the same text"):
        train_reward([same], tmp_path / "rm", base=tiny)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="a folder with other things in it"):
        train_reward(learnable(4), busy, base=tiny, max_length=64)
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
