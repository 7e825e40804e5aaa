from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.batch.conftest import Cli
from tests.batch.helpers import stub_responder
from tests.fakes import BF, FakeBackends, FakePolicy, FakeReward, FakeWeb, flat_ranker
from tests.models.stub_server import StubServer
from webqa import api
from webqa.cli import main
from webqa.store import reader
from webqa.values import Question


def lines_of(path: Path) -> list[dict[str, Any]]:
    data = path.read_text(encoding="utf-8")
    assert data.endswith("\n")
    return [json.loads(line) for line in data.splitlines()]  # every line whole


def test_bad_lines_are_reported_by_line_and_every_good_question_is_answered(
    policy: FakePolicy, cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        '{"id": "a", "question": "What is the capital of Burkina Faso?", "gold": "Ouaga"}\n'
        '{"id": "b", "question": "Capital of Burkina Faso, again?"\n'
        '{"id": "c", "question": ""}\n'
        '{"id": "d", "question": "Which city is the capital?"}\n'
        '{"id": "a", "question": "A duplicate?"}\n'
        '{"question": "No id, still fine?"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "answers.jsonl"
    assert cli(["batch", str(qfile), "-o", str(out), "--concurrency", "3"]) == 0
    captured = capsys.readouterr()
    reported = [line for line in captured.err.splitlines() if " line " in line]
    assert reported == [
        f"{qfile} line 2: malformed JSON: Expecting ',' delimiter (column 58)",
        f"{qfile} line 3: the question is empty",
        f"{qfile} line 5: duplicate id 'a' (first on line 1)",
    ]
    assert captured.out.startswith("3 answered, 0 failed, 3 bad line(s), 0 skipped")
    records = {(r["id"], r["line"]): r for r in lines_of(out)}
    assert sorted(records) == [("a", 1), ("a", 5), ("c", 3), ("d", 4), ("line-2", 2), ("line-6", 6)]
    for key in [("a", 1), ("d", 4), ("line-6", 6)]:
        r = records[key]
        assert (
            r["error"] is None
            and r["answer"] == f"Ouagadougou [1], for: {r['question'].rstrip('?')}"
        )
        assert r["references"][0]["url"] == BF.url and r["candidates"][0]["trajectory"]
        assert r["log_id"] is not None and r["started"] < r["finished"]
    assert records[("a", 1)]["gold"] == "Ouaga"
    for key in [("line-2", 2), ("c", 3), ("a", 5)]:
        assert records[key]["error_type"] == "input" and records[key]["answer"] is None
    # run again: nothing to do, nothing duplicated, the bad lines reported again
    assert cli(["batch", str(qfile), "-o", str(out)]) == 0
    again = capsys.readouterr()
    assert again.out.startswith("0 answered, 0 failed, 3 bad line(s), 3 skipped")
    assert len(lines_of(out)) == 6


def test_failed_questions_are_recorded_and_retried_with_retry_failed(
    policy: FakePolicy,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    qfile = tmp_path / "q.txt"
    qfile.write_text("Capital one?\nCapital two?\n", encoding="utf-8")
    out = tmp_path / "q.answers.jsonl"
    web = FakeWeb([BF], any_query=True, search_error="429")
    assert main(["batch", str(qfile), "--max-actions", "2"], FakeBackends(policy, web=web)) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("0 answered, 2 failed, 0 bad line(s), 0 skipped")
    assert "line 1 (id line-1): every search failed (1); the last: 429" in captured.err
    assert {r["error_type"] for r in lines_of(out)} == {"search"}
    web.search_error = None
    assert main(["batch", str(qfile)], FakeBackends(policy, web=web)) == 0  # done, unless asked
    assert capsys.readouterr().out.startswith("0 answered, 0 failed, 0 bad line(s), 2 skipped")
    assert main(["batch", str(qfile), "--retry-failed"], FakeBackends(policy, web=web)) == 0
    assert capsys.readouterr().out.startswith("2 answered, 0 failed, 0 bad line(s), 0 skipped")
    records = lines_of(out)
    assert sorted(r["id"] for r in records) == ["line-1", "line-2"]
    assert all(r["error"] is None for r in records)


def test_shards_answer_disjoint_parts_that_cover_the_file(
    policy: FakePolicy, cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qfile = tmp_path / "q.txt"
    qfile.write_text("".join(f"Capital {i}?\n" for i in range(5)), encoding="utf-8")
    for i in (1, 2):
        assert cli(["batch", str(qfile), "--shard", f"{i}/2"]) == 0
    one = [r["id"] for r in lines_of(tmp_path / "q.answers.1of2.jsonl")]
    two = [r["id"] for r in lines_of(tmp_path / "q.answers.2of2.jsonl")]
    assert sorted(one) == ["line-1", "line-3", "line-5"] and sorted(two) == ["line-2", "line-4"]
    assert cli(["batch", str(qfile), "--shard", "3/2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "webqa batch: --shard takes i/N with 1 <= i <= N (e.g. 1/4 ... 4/4), got '3/2'"


def test_a_missing_question_file_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["batch", str(tmp_path / "nope.txt")]) == 1
    assert capsys.readouterr().err.strip() == f"webqa batch: {tmp_path / 'nope.txt'}: no such file"


def test_answer_many_and_batch_give_the_same_answers_for_the_same_seed(
    policy: FakePolicy, backends: FakeBackends, cli: Cli, tmp_path: Path
) -> None:
    questions = [f"What is capital number {i}?" for i in range(4)]
    qfile = tmp_path / "q.txt"
    qfile.write_text("\n".join(questions) + "\n", encoding="utf-8")
    assert cli(["batch", str(qfile), "-n", "2", "--seed", "11", "--concurrency", "2"]) == 0
    from_cli = {r["question"]: r for r in lines_of(tmp_path / "q.answers.jsonl")}
    cli_requests = sorted((r.seed, r.temperature, r.chat[-1].content) for r in policy.requests)
    policy.requests.clear()
    from_api = {
        d.question.text: d
        for d in api.answer_many(questions, n=2, seed=11, concurrency=3, backends=backends)
    }
    api_requests = sorted((r.seed, r.temperature, r.chat[-1].content) for r in policy.requests)
    assert api_requests == cli_requests  # the very same prompts, seeds and temperatures
    for q in questions:
        result = from_api[q].result
        assert result is not None
        assert result.answer == from_cli[q]["answer"]
        assert [c.answer for c in result.candidates] == [
            c["answer"] for c in from_cli[q]["candidates"]
        ]
    # episode 0 is greedy (no seed shown), episode 1 samples with seed 11 + 1
    assert [c["answer"][-9:] for c in from_cli[questions[0]]["candidates"]] == [
        " number 0",
        "(seed 12)",
    ]
    assert {d.question.id for d in from_api.values()} == {"0", "1", "2", "3"}
    assert len(reader.recent(100)) == 2 * 2 * 4  # both runs logged, every candidate


def test_answer_many_takes_questions_with_ids_and_validates_up_front(
    backends: FakeBackends,
) -> None:
    [done] = api.answer_many([Question("Capital?", id="x7")], log=False, backends=backends)
    assert done.question.id == "x7" and done.ok
    with pytest.raises(Exception, match="n must be at least 1"):
        api.answer_many(["q"], n=0)
    with pytest.raises(Exception, match="concurrency must be at least 1"):
        api.answer_many(["q"], concurrency=0)


def test_answer_many_takes_a_policy_and_reward_model_object_and_leaves_them_open() -> None:
    class Closable(FakePolicy):
        closed = False

        def close(self) -> None:
            self.closed = True

    rules = Closable()
    done = list(
        api.answer_many(
            ["Capital one?", "Capital two?"],
            n=2,
            model=rules,
            reward_model=FakeReward(),
            web=FakeWeb([BF], any_query=True),
            ranker=flat_ranker,
            log=False,
        )
    )
    assert all(d.ok for d in done) and len(done) == 2
    assert len(rules.requests) >= 4  # the object given is what answered
    assert not rules.closed  # the caller's policy: used, not closed


def test_openai_backend_keeps_k_requests_in_flight(tmp_path: Path) -> None:
    questions = [f"Capital {i}?" for i in range(4)]
    with StubServer(stub_responder) as server:
        server.delay = 0.2
        done = list(
            api.answer_many(
                questions,
                concurrency=4,
                model="stub",
                api_base=server.api_base,
                web=FakeWeb([BF], any_query=True),
                log=False,
            )
        )
    assert all(d.ok for d in done) and len(done) == 4
    assert server.max_in_flight == 4
