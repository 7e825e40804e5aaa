"""webqa.models.hardware: the per-machine precision choice (fake probes; one real probe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webqa.errors import ModelError
from webqa.models import hardware
from webqa.models.hardware import (
    CACHE_FILE,
    FLAGS,
    PRECISIONS,
    CpuInfo,
    Probe,
    choose_precision,
    cpu_info,
    decide,
    probe,
)

NATIVE = CpuInfo(
    "Intel(R) Xeon(R) Platinum 8480+", 8, ("avx2", "avx512_bf16", "amx_bf16"), "2", "AVX512"
)
AVX2 = CpuInfo("AMD EPYC", 2, ("avx", "avx2", "fma"), "2", "AVX2")


@pytest.fixture(autouse=True)
def no_env_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBQA_DTYPE", raising=False)


def fake_probe(
    prompt32: float,
    prompt16: float | None,
    row32: float,
    row8: float | None,
    prompt8: float | None = 2.0,
    row16: float | None = None,
) -> Probe:
    precision = decide(prompt32, prompt16, row32, row8, prompt8, row16)
    return Probe(prompt32, prompt16, row32, row8, precision, prompt8, row16)


class Counting:
    """A ``measure`` seam: returns ``result`` and records the ``try_bf16`` of each call."""

    def __init__(self, result: Probe) -> None:
        self.result = result
        self.calls: list[bool] = []

    def __call__(self, threads: int, *, try_bf16: bool = True) -> Probe:
        self.calls.append(try_bf16)
        return self.result


def on_cpu(monkeypatch: pytest.MonkeyPatch, cpu: CpuInfo) -> None:
    monkeypatch.setattr(hardware, "cpu_info", lambda: cpu)


# -- decide ------------------------------------------------------------------------


def test_decide_picks_bf16_where_its_prompt_product_is_clearly_faster() -> None:
    assert decide(10.0, 2.0, 1.0, 0.5) == "bfloat16"  # int8's prompt product untimed
    assert decide(10.0, 7.9, 1.0, 1.0) == "bfloat16"
    assert decide(10.0, 2.0, 1.0, 0.1, 1.0) == "bfloat16"  # bf16's decode row untimed


def test_int8_over_native_bf16_must_beat_bf16_itself() -> None:
    # the AVX-512-BF16 EPYC's probe: int8 rows ~4x faster than bf16's, prompts ~0.7x
    assert decide(1.55, 0.38, 0.92, 0.11, 0.28, 0.46) == "int8"
    assert decide(10.0, 2.0, 1.0, 0.3, 2.5, 0.5) == "bfloat16"  # int8 prompts slower
    assert decide(10.0, 2.0, 1.0, 0.4, 1.0, 0.5) == "bfloat16"  # rows not clearly faster
    assert decide(1.55, 0.38, 0.92, 0.11, 0.28, 0.46, int8_auto=False) == "bfloat16"


def test_decide_picks_int8_where_both_int8_products_are_clearly_faster() -> None:
    assert decide(10.0, 9.0, 1.0, 0.5, 5.0) == "int8"  # bf16 not clearly faster
    assert decide(10.0, 1000.0, 1.0, 0.3, 3.0) == "int8"  # emulated bf16
    assert decide(10.0, None, 1.0, 0.69, 6.9) == "int8"


def test_int8_needs_both_its_products_to_win() -> None:
    assert decide(10.0, None, 1.0, 0.3, 10.5) == "float32"  # prompts would be slower
    assert decide(10.0, None, 1.0, 0.3, 8.0) == "int8"  # faster at all is enough there
    assert decide(10.0, None, 1.0, 0.8, 3.0) == "float32"  # decode steps would be slower
    assert decide(10.0, None, 1.0, 0.3, None) == "float32"  # an old probe: prompt untimed


def test_int8_auto_off_leaves_int8_to_the_override() -> None:
    assert decide(10.0, None, 1.0, 0.3, 3.0, int8_auto=False) == "float32"


def test_decide_falls_back_to_float32() -> None:
    assert decide(10.0, 8.5, 1.0, 0.8, 8.0) == "float32"  # neither clearly faster
    assert decide(10.0, 10.0, 1.0, 1.0, 10.0) == "float32"
    assert decide(10.0, None, 1.0, None, None) == "float32"  # no int8 kernel here


def test_an_untried_bf16_never_gives_bf16() -> None:
    for row8 in (None, 0.1, 1.0, 5.0):
        assert decide(10.0, None, 1.0, row8, row8) != "bfloat16"


def test_float_models_run_bf16_where_it_is_native_even_under_int8(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_cpu(monkeypatch, NATIVE)
    choice = choose_precision(
        2, cache_dir=tmp_path, measure=Counting(fake_probe(1.55, 0.38, 0.92, 0.11, 0.28, 0.46))
    )
    assert (choice.precision, choice.float_precision) == ("int8", "bfloat16")
    assert choice.to_dict()["float_precision"] == "bfloat16"
    on_cpu(monkeypatch, AVX2)
    choice = choose_precision(
        2, cache_dir=tmp_path, measure=Counting(fake_probe(10.0, None, 1.0, 0.3, 3.0))
    )
    assert (choice.precision, choice.float_precision) == ("int8", "float32")
    assert choose_precision(2, override="bfloat16").float_precision == "bfloat16"
    assert choose_precision(2, override="int8").float_precision == "float32"  # no probe


# -- choose_precision --------------------------------------------------------------


def test_a_native_bf16_machine_chooses_bf16(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_cpu(monkeypatch, NATIVE)
    measure = Counting(fake_probe(10.0, 2.5, 1.0, 0.6))
    choice = choose_precision(4, cache_dir=tmp_path, measure=measure)
    assert (choice.precision, choice.source, choice.threads) == ("bfloat16", "probe", 4)
    assert measure.calls == [True]  # bf16 is tried where the flags say it may be native
    assert choice.probe == measure.result and choice.cpu == NATIVE
    json.dumps(choice.to_dict())  # reports are plain JSON


@pytest.mark.parametrize(
    ("row8", "int8_auto", "expected"),
    [(0.4, False, "float32"), (0.4, True, "int8"), (0.9, True, "float32"), (None, True, "float32")],
)
def test_an_avx2_machine_chooses_float32_or_int8_where_allowed(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    row8: float | None,
    int8_auto: bool,
    expected: str,
) -> None:
    monkeypatch.setattr(hardware, "INT8_AUTO", int8_auto)
    on_cpu(monkeypatch, AVX2)
    measure = Counting(fake_probe(10.0, None, 1.0, row8))
    choice = choose_precision(2, cache_dir=tmp_path, measure=measure)
    assert (choice.precision, choice.source) == (expected, "probe")
    assert measure.calls == [False]  # bf16 is not even tried without a native flag


def test_the_choice_is_cached_per_machine_and_threads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_cpu(monkeypatch, AVX2)
    measure = Counting(fake_probe(10.0, None, 1.0, 0.4))
    first = choose_precision(2, cache_dir=tmp_path, measure=measure)
    second = choose_precision(2, cache_dir=tmp_path, measure=measure)
    assert (first.source, second.source) == ("probe", "cached")
    assert second.precision == first.precision == "int8"
    assert second.probe == first.probe
    assert len(measure.calls) == 1  # not measured again
    stored = json.loads((tmp_path / CACHE_FILE).read_text())
    assert [entry["precision"] for entry in stored.values()] == ["int8"]
    # another thread count (or another CPU) is a different entry: measured again
    assert choose_precision(1, cache_dir=tmp_path, measure=measure).source == "probe"
    on_cpu(monkeypatch, NATIVE)
    assert choose_precision(2, cache_dir=tmp_path, measure=measure).source == "probe"
    assert len(measure.calls) == 3
    assert len(json.loads((tmp_path / CACHE_FILE).read_text())) == 3


@pytest.mark.parametrize("damage", [b"\x00\xff garbage \x80", b"[1, 2, 3]", b'{"half": ', b""])
def test_a_damaged_cache_is_probed_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, damage: bytes
) -> None:
    on_cpu(monkeypatch, AVX2)
    (tmp_path / CACHE_FILE).write_bytes(damage)
    measure = Counting(fake_probe(10.0, None, 1.0, 0.4))
    choice = choose_precision(2, cache_dir=tmp_path, measure=measure)
    assert (choice.precision, choice.source) == ("int8", "probe")
    assert len(json.loads((tmp_path / CACHE_FILE).read_text())) == 1  # rewritten whole
    assert choose_precision(2, cache_dir=tmp_path, measure=measure).source == "cached"


def test_an_entry_naming_no_known_precision_is_probed_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_cpu(monkeypatch, AVX2)
    measure = Counting(fake_probe(10.0, None, 1.0, 0.4))
    choose_precision(2, cache_dir=tmp_path, measure=measure)
    path = tmp_path / CACHE_FILE
    path.write_text(json.dumps(dict.fromkeys(json.loads(path.read_text()), {"precision": "fp4"})))
    assert choose_precision(2, cache_dir=tmp_path, measure=measure).source == "probe"


def never(threads: int, *, try_bf16: bool = True) -> Probe:
    raise AssertionError("an override must not probe")


def test_an_override_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    on_cpu(monkeypatch, NATIVE)
    choose_precision(2, cache_dir=tmp_path, measure=Counting(fake_probe(10.0, 2.0, 1.0, 0.5)))
    choice = choose_precision(2, override="float32", cache_dir=tmp_path, measure=never)
    assert (choice.precision, choice.source, choice.probe) == ("float32", "override", None)
    monkeypatch.setenv("WEBQA_DTYPE", "bfloat16")
    choice = choose_precision(2, cache_dir=tmp_path, measure=never)
    assert (choice.precision, choice.source) == ("bfloat16", "override")
    forced = choose_precision(2, override="int8", cache_dir=tmp_path, measure=never)
    assert forced.precision == "int8"  # --dtype beats WEBQA_DTYPE
    monkeypatch.setenv("WEBQA_DTYPE", "auto")  # auto: the probe (here its cache) decides
    assert choose_precision(2, cache_dir=tmp_path, measure=never).source == "cached"


@pytest.mark.parametrize("value", ["garbage", "float16", "int4"])
def test_a_bad_webqa_dtype_is_a_model_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    monkeypatch.setenv("WEBQA_DTYPE", value)
    with pytest.raises(ModelError, match="WEBQA_DTYPE") as raised:
        choose_precision(2, cache_dir=tmp_path, measure=never)
    assert repr(value) in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(ModelError, match="--dtype"):
        choose_precision(2, override=value, cache_dir=tmp_path, measure=never)


# -- the real machine ----------------------------------------------------------------


def test_the_real_probe_is_quick_and_decides() -> None:
    import torch

    threads = torch.get_num_threads()
    result = probe(1, try_bf16=False)
    assert torch.get_num_threads() == threads  # restored
    assert result.prompt_float32_ms > 0 and result.row_float32_ms > 0
    assert result.prompt_bfloat16_ms is None  # not tried
    assert result.row_int8_ms is None or result.row_int8_ms > 0
    assert (result.row_int8_ms is None) == (result.prompt_int8_ms is None)
    assert result.precision in PRECISIONS and result.precision != "bfloat16"
    assert result.precision == decide(
        result.prompt_float32_ms,
        None,
        result.row_float32_ms,
        result.row_int8_ms,
        result.prompt_int8_ms,
    )


def test_cpu_info_describes_this_machine() -> None:
    cpu = cpu_info()
    assert isinstance(cpu.model, str) and cpu.model
    assert cpu.cores >= 1
    assert set(cpu.flags) <= set(FLAGS)
    assert list(cpu.flags) == [flag for flag in FLAGS if flag in cpu.flags]  # FLAGS' order
    report = cpu.to_dict()
    assert json.loads(json.dumps(report))["cores"] == cpu.cores


def test_default_threads_use_every_core_only_when_waiting_threads_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from webqa.models import hardware

    monkeypatch.delenv("WEBQA_THREADS", raising=False)
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert hardware.default_threads() == 4
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert hardware.default_threads() == 3
    monkeypatch.setenv("WEBQA_THREADS", "2")
    assert hardware.default_threads() == 2
    monkeypatch.setenv("WEBQA_THREADS", "two")
    with pytest.raises(ModelError, match="WEBQA_THREADS"):
        hardware.default_threads()


def test_a_probe_cached_by_an_earlier_version_is_measured_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # version 1 timed no int8 prompt product, so its entries cannot decide int8
    on_cpu(monkeypatch, AVX2)
    old_key = "|".join([AVX2.model, " ".join(AVX2.flags), "2", "AVX2", "", "2"])
    old = {"prompt_float32_ms": 10.0, "prompt_bfloat16_ms": None, "row_float32_ms": 1.0}
    old |= {"row_int8_ms": 0.4, "precision": "float32"}
    (tmp_path / CACHE_FILE).write_text(json.dumps({old_key: old}))
    measure = Counting(fake_probe(10.0, None, 1.0, 0.4))
    choice = choose_precision(2, cache_dir=tmp_path, measure=measure)
    assert (choice.precision, choice.source) == ("int8", "probe")
    assert len(measure.calls) == 1
