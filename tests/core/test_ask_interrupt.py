"""Nothing lost when `webqa ask` is stopped part-way: Ctrl-C (SIGINT) or SIGTERM leaves
the episode so far in the log, marked interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webqa.cli import main
from webqa.store import reader

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What is the capital of Burkina Faso?"
# `webqa ask` in its own process, its model a fake that writes MARKER when first asked for
# a command (the guided search and the one result's click are taken without asking)
# and then takes a minute to answer
SCRIPT = """
import sys, time
from pathlib import Path
from tests.fakes import FakeBackends, FakePolicy
from webqa.cli import main

def reply(request):
    Path(sys.argv[1]).write_text("asked")
    time.sleep(60)
    return "End: Answer"

sys.exit(main(["ask", sys.argv[2]], FakeBackends(FakePolicy(reply, name="stuck"))))
"""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_part_way(tmp_path: Path, how: signal.Signals) -> subprocess.CompletedProcess[str]:
    marker = tmp_path / "asked"
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(marker), QUESTION],
        # as from a terminal: a job started in the background by a shell (as CI may
        # run the tests) inherits SIGINT ignored, and Python then never turns it into
        # KeyboardInterrupt
        preexec_fn=_default_sigint,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), process.communicate(timeout=10)
        process.send_signal(how)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize(
    ("how", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_a_stopped_ask_leaves_its_episode_in_the_log(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    how: signal.Signals,
    code: int,
    said: str,
) -> None:
    done = stop_part_way(tmp_path, how)
    assert done.returncode == code, done.stderr
    assert f"webqa ask: {said}" in done.stderr
    assert "Traceback" not in done.stderr
    [row] = reader.recent()
    assert (row.question, row.error, row.model) == (QUESTION, "interrupted", "stuck")
    assert row.id is not None
    record = reader.episode(row.id)
    assert record.end_reason == "interrupted"
    assert [(s.command, s.valid) for s in record.steps] == [
        (f"Search {QUESTION}", True),
        ("Clicked on link 0", True),
    ]
    assert [v.kind for v in record.visits] == ["search", "fetch"]
    # and `webqa log` lists it, marked
    assert main(["log"]) == 0
    assert "failed: interrupted" in capsys.readouterr().out
