"""`--dtype` / WEBQA_DTYPE on the command line, and what `webqa ask` reports about the
precision a local model ran in (no model is loaded: fakes stand in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import FakeBackends, FakePolicy
from webqa import api
from webqa.cli import main
from webqa.errors import ModelError
from webqa.frontend.ask import hardware_line, hardware_report
from webqa.models.hardware import Choice, CpuInfo
from webqa.models.local import LocalPolicy

EPYC = CpuInfo("AMD EPYC", 2, ("avx", "avx2", "fma"), "2.13.0", "AVX2")


@pytest.fixture(autouse=True)
def no_env_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBQA_DTYPE", raising=False)
    monkeypatch.setattr(api, "_policies", {})


@pytest.mark.parametrize("command", ["ask", "batch"])
def test_an_unknown_dtype_flag_is_refused_by_argparse(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "question", "--dtype", "bogus"])
    assert exited.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["ask", "batch"])
def test_a_bad_webqa_dtype_is_one_line_before_any_work(
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("WEBQA_DTYPE", "bogus")
    missing = tmp_path / "missing.zim"  # were the web opened first, it would fail on this
    questions = tmp_path / "q.txt"
    questions.write_text("What is the capital?\n", encoding="utf-8")
    target = "What is the capital?" if command == "ask" else str(questions)
    assert main([command, target, "--zim", str(missing)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith(f"webqa {command}: ") and "WEBQA_DTYPE" in lines[0]
    assert "'bogus'" in lines[0]
    assert not (tmp_path / "q.answers.jsonl").exists()
    # --dtype wins over the variable, and a server model ignores both
    assert main([command, target, "--zim", str(missing), "--dtype", "float32"]) == 1
    assert main([command, target, "--zim", str(missing), "--api-base", "http://x"]) == 1
    for line in capsys.readouterr().err.strip().splitlines():
        assert "WEBQA_DTYPE" not in line and str(missing) in line


def test_load_policy_passes_the_dtype_and_keys_its_cache_by_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auto = api.load_policy("smollm2-135m")
    assert isinstance(auto, LocalPolicy) and auto.dtype == "auto"
    assert api.load_policy("smollm2-135m", dtype="auto") is auto
    int8 = api.load_policy("smollm2-135m", dtype="int8")
    assert isinstance(int8, LocalPolicy) and int8.dtype == "int8" and int8 is not auto
    assert api.load_policy("smollm2-135m", dtype="int8") is int8
    server = api.load_policy("m", api_base="http://127.0.0.1:9", dtype="int8")  # ignored
    assert server is api.load_policy("m", api_base="http://127.0.0.1:9")
    monkeypatch.setenv("WEBQA_DTYPE", "int4")
    with pytest.raises(ModelError, match="WEBQA_DTYPE"):
        api.load_policy("smollm2-135m")
    with pytest.raises(ModelError, match="WEBQA_DTYPE"):
        api.answer_many(["q"])  # at the call, not per question


def test_batch_passes_dtype_through(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backends = FakeBackends()
    questions = tmp_path / "q.txt"
    questions.write_text("What is the capital of Burkina Faso?\n", encoding="utf-8")
    assert main(["batch", str(questions), "--dtype", "int8"], backends) == 0
    assert backends.asked("policy", "dtype") == ["int8"]
    assert capsys.readouterr().out.startswith("1 answered, 0 failed")


def test_ask_json_reports_the_hardware_choice(capsys: pytest.CaptureFixture[str]) -> None:
    choice = Choice("int8", "probe", EPYC, 2)
    backends = FakeBackends(FakePolicy(name="smollm2-135m", hardware=choice))
    argv = ["ask", "What is the capital of Burkina Faso?", "--json", "--dtype", "auto"]
    assert main(argv, backends) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hardware"] == json.loads(json.dumps(choice.to_dict()))
    assert data["hardware"]["precision"] == "int8" and data["hardware"]["threads"] == 2
    assert set(backends.asked("policy", "dtype")) == {"auto"}


def test_ask_json_has_no_hardware_for_a_server_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "What is the capital of Burkina Faso?", "--json"], FakeBackends()) == 0
    assert json.loads(capsys.readouterr().out)["hardware"] is None


def test_ask_verbose_says_what_precision_ran_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    backends = FakeBackends(
        FakePolicy(name="smollm2-135m", hardware=Choice("int8", "probe", EPYC, 2))
    )
    assert main(["ask", "What is the capital of Burkina Faso?", "--verbose"], backends) == 0
    err = capsys.readouterr().err
    expected = "model smollm2-135m: int8 (probe; AVX2, 2 threads, AMD EPYC)"
    assert [line for line in err.splitlines() if line.startswith("model ")] == [expected]


def test_hardware_line_names_the_reason() -> None:
    policy = LocalPolicy("smollm2-135m", threads=1)
    assert hardware_line(policy) is None and hardware_report(policy) is None  # not loaded
    policy.hardware = Choice("bfloat16", "cached", EPYC, 1)
    assert hardware_line(policy) == (
        "model smollm2-135m: bfloat16 (cached probe; AVX2, 1 thread, AMD EPYC)"
    )
    policy.hardware = Choice("float32", "override", EPYC, 1)
    assert "(--dtype float32; " in (hardware_line(policy, "float32") or "")
    assert hardware_line(FakePolicy()) is None


def test_hardware_line_names_webqa_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = LocalPolicy("smollm2-135m", threads=2)
    policy.hardware = Choice("int8", "override", EPYC, 2)
    monkeypatch.setenv("WEBQA_DTYPE", "int8")
    assert hardware_line(policy, "auto") == (
        "model smollm2-135m: int8 (WEBQA_DTYPE=int8; AVX2, 2 threads, AMD EPYC)"
    )
