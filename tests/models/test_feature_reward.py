"""`webqa reward train --architecture features` (the default): the features an answer is
read as, a real fit on comparisons where the better answer is learnable, the folder
``--reward-model`` loads, and the command's checks. The grounding terms come from the
real packaged MiniLM."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FakePolicy
from webqa import api
from webqa.comparisons import Comparison, write_comparisons
from webqa.errors import InputError, ModelError
from webqa.frontend.reward import add_reward_parser, run_reward
from webqa.models.batching import BatchingPolicy
from webqa.models.feature_reward import (
    FEATURES,
    KIND,
    PACKAGED_FILE,
    FeatureRewardModel,
    Head,
    feature_matrix,
    fit,
    train_features,
)
from webqa.models.grounding import GroundingScorer
from webqa.models.openai import OpenAIPolicy
from webqa.models.reward_train import REPORT_FILE, heldout_side
from webqa.values import Quote

from .test_reward_train import learnable

BURKINA = Quote(
    "Burkina Faso - The World Factbook",
    "zim://webqa/factbook/Burkina_Faso",
    "webqa",
    "Elevation\nhighest point: Tena Kourou 749 m\nlowest point: Mouhoun 200 m\n"
    "Capital\nname: Ouagadougou",
)
Q = "What is the highest point in Burkina Faso?"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="webqa")
    add_reward_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def scorer() -> GroundingScorer:
    return GroundingScorer()


def row(scorer: GroundingScorer, question: str, quotes: tuple[Quote, ...], answer: str) -> dict:
    return dict(zip(FEATURES, feature_matrix(scorer, question, [(quotes, answer)])[0], strict=True))


def test_the_features_read_what_an_answer_says_and_where(scorer: GroundingScorer) -> None:
    right = row(scorer, Q, (BURKINA,), "The highest point in Burkina Faso is Tena Kourou [1].")
    wrong = row(scorer, Q, (BURKINA,), "The highest point in Burkina Faso is Ouagadougou [1].")
    made_up = row(scorer, Q, (BURKINA,), "The highest point in Burkina Faso is Mount Sindou [1].")
    declined = row(scorer, Q, (BURKINA,), "I could not find the answer in the quotes.")
    assert right["news_quoted"] == wrong["news_quoted"] == 1.0 and made_up["news_quoted"] == 0.0
    # "Tena Kourou" stands next to "highest point"; "Ouagadougou" five lines on
    assert right["news_near_question"] > wrong["news_near_question"] > 0.0
    assert made_up["news_near_question"] == 0.0
    assert declined["declined"] == 1.0 and declined["declined_without_quotes"] == 0.0
    assert all(declined[f] == 0.0 for f in ("grounding", "news_quoted", "answer_words"))
    alone = row(scorer, Q, (), "I could not find the answer.")
    assert alone["declined_without_quotes"] == 1.0
    assert right["names_covered"] == 1.0 and right["question_covered"] > 0.5
    other = Quote(
        "Mali", "zim://webqa/wiki/Mali", "webqa", "Mali's highest point is Hombori Tondo."
    )
    assert row(scorer, Q, (other,), "It is Hombori Tondo [1].")["names_covered"] == 0.0
    height = "How high is Tena Kourou?"
    given = row(scorer, height, (BURKINA,), "Tena Kourou is 749 m high [1].")
    missing = row(scorer, height, (BURKINA,), "Tena Kourou is in Burkina Faso [1].")
    assert given["number_asked_given"] == 1.0 and missing["number_asked_missing"] == 1.0


def test_a_fit_learns_the_direction_and_ties_pull_margins_in() -> None:
    rng = np.random.default_rng(0)
    first = rng.normal(size=(200, len(FEATURES)))
    second = rng.normal(size=(200, len(FEATURES)))
    p = (first[:, 3] > second[:, 3]).astype(np.float64)  # feature 3 decides
    head, loss = fit(first, second, p, l2=0.01)
    assert loss < 0.3 and int(np.argmax(np.abs(head.weights))) == 3 and head.weights[3] > 0
    tied, tied_loss = fit(first, second, np.full(200, 0.5), l2=0.01)
    assert np.abs(tied.weights).max() < 0.2 and tied_loss == pytest.approx(math.log(2), abs=0.01)


def test_training_learns_what_is_better_and_the_folder_loads(tmp_path: Path) -> None:
    comparisons = learnable(60)
    calls: list[tuple[int, int]] = []
    report = train_features(
        comparisons, tmp_path / "rm", holdout=0.25, progress=lambda d, t: calls.append((d, t))
    )
    assert report.comparisons == 60 and report.train_pairs + report.heldout_pairs == 60
    assert report.heldout_scored == report.heldout_pairs >= 8
    assert report.heldout_accuracy is not None and report.heldout_accuracy >= 0.9
    assert report.heldout_loss is not None and report.heldout_loss < math.log(2)
    assert report.train_loss < report.train_loss_start == round(math.log(2), 4)
    assert calls[-1] == (60, 60)  # a question at a time
    record = json.loads((tmp_path / "rm" / REPORT_FILE).read_text())
    assert record["kind"] == KIND and record["head"]["features"] == list(FEATURES)
    reward = api.load_reward(str(tmp_path / "rm"), policy=None)  # type: ignore[arg-type]
    assert isinstance(reward, FeatureRewardModel)
    held = [c for c in comparisons if heldout_side(c.question, 0.25)]
    right = 0
    for c in held:
        scores = reward.score(c.question, [(c.quotes_0, c.answer_0), (c.quotes_1, c.answer_1)])
        better = c.preferred
        assert better is not None
        right += scores[better] > scores[1 - better]
    assert right / len(held) == pytest.approx(report.heldout_accuracy, abs=1.01 / len(held))


def test_a_head_for_other_features_is_refused() -> None:
    good = Head(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.ones(len(FEATURES)))
    data = good.to_json()
    assert Head.from_json(data, "rm").weights.tolist() == [1.0] * len(FEATURES)
    with pytest.raises(ModelError, match="rm: trained on features .* train it again"):
        Head.from_json({**data, "features": ["declined"]}, "rm")
    with pytest.raises(ModelError, match=f"not {len(FEATURES)} finite values"):
        Head.from_json({**data, "weights": [math.nan] * len(FEATURES)}, "rm")
    with pytest.raises(ModelError, match="not a feature reward model's head"):
        Head.from_json(None, "rm")


def test_the_command_fits_features_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "comparisons.jsonl"
    write_comparisons(source, learnable(40))
    assert run_reward(parse(["reward", "train", str(source), "-o", str(tmp_path / "rm")])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("fit in ") and "the grounding scorer ->" in lines[2]
    assert json.loads((tmp_path / "rm" / REPORT_FILE).read_text())["kind"] == KIND
    for option in (["--base", "x"], ["--epochs", "2"], ["--lr", "0.1"]):
        argv = ["reward", "train", str(source), "-o", str(tmp_path / "rm2"), *option]
        with pytest.raises(InputError, match=f"{option[0]}: only for --architecture cross-encoder"):
            run_reward(parse(argv))
    with pytest.raises(InputError, match="--l2 must be a number, 0 or more"):
        train_features(learnable(4), tmp_path / "rm3", l2=-1.0)
    assert not (tmp_path / "rm2").exists() and not (tmp_path / "rm3").exists()


def test_a_comparison_with_no_answer_text_is_still_read(tmp_path: Path) -> None:
    empty = Comparison(Q, (BURKINA,), "", (BURKINA,), "Tena Kourou [1].", -1.0)
    report = train_features([empty, *learnable(12)], tmp_path / "rm", holdout=0.0)
    assert report.train_pairs == 13 and report.heldout_note == "not measured: --holdout 0"


def test_the_packaged_reward_model_loads_by_name_and_prefers_a_quoted_answer() -> None:
    reward = api.load_reward("bootstrap", policy=None)  # type: ignore[arg-type]
    assert isinstance(reward, FeatureRewardModel) and reward.name == "features:bootstrap"
    record = json.loads(PACKAGED_FILE.read_text())
    assert record["kind"] == KIND and record["report"]["heldout_accuracy"] > 0.6
    right, made_up = reward.score(
        Q,
        [
            ((BURKINA,), "The highest point in Burkina Faso is Tena Kourou [1]."),
            ((BURKINA,), "The highest point in Burkina Faso is Mount Sindou [1]."),
        ],
    )
    assert right > made_up


def test_the_default_reward_model_is_the_packaged_one_for_a_local_policy() -> None:
    local = FakePolicy()
    assert isinstance(api.load_reward(None, local), FeatureRewardModel)
    served = OpenAIPolicy("qwen", api_base="http://127.0.0.1:9/v1")
    for policy in (served, BatchingPolicy(served)):
        chosen = api.load_reward(None, policy)
        assert isinstance(chosen, GroundingScorer) and chosen.judge is policy
    assert isinstance(api.load_reward("grounding", local), GroundingScorer)
