"""The acceptance test: SIGKILL a running batch part-way, run it again, lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.batch.helpers import stub_responder
from tests.models.stub_server import StubServer
from webqa.store import reader
from webqa.web.corpus import build_from_folder

ROOT = Path(__file__).resolve().parents[2]
PAGE = (
    "<html><head><title>Burkina Faso</title></head><body><main><h1>Burkina Faso</h1>"
    "<p>Burkina Faso is a landlocked country in West Africa. Its capital and largest city"
    " is Ouagadougou.</p></main></body></html>"
)
QUESTIONS = [f"Question {i}: what is the capital of Burkina Faso?" for i in range(12)]


@pytest.fixture(scope="module")
def zim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("site")
    (src / "index.html").write_text(PAGE, encoding="utf-8")
    return build_from_folder(src, tmp_path_factory.mktemp("zim") / "site.zim")


def complete_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_part_way_then_rerun_answers_every_question_exactly_once(
    zim: Path, tmp_path: Path, webqa_home: Path
) -> None:
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text(
        "".join(json.dumps({"id": f"q{i}", "question": q}) + "\n" for i, q in enumerate(QUESTIONS)),
        encoding="utf-8",
    )
    out = tmp_path / "answers.jsonl"
    with StubServer(stub_responder) as server:
        server.delay = 0.05  # each model call; a question makes five
        command = [
            sys.executable, "-m", "webqa.cli", "batch", str(qfile), "-o", str(out),
            "--concurrency", "2", "--model", "stub", "--api-base", server.api_base,
            "--zim", str(zim), "--max-actions", "6",
        ]  # fmt: skip
        env = {**os.environ, "WEBQA_HOME": str(webqa_home)}
        first = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while complete_lines(out) < 3 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL, first.stderr.read() if first.stderr else ""
        if first.stderr:
            first.stderr.close()
        written = complete_lines(out)
        assert 3 <= written < len(QUESTIONS), "the kill should land part-way"
        with open(out, "ab") as f:  # and as if it had landed in the middle of a write:
            f.write(b'{"id": "q11", "line": 12, "question": "Quest')
        second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "dropped a partial last line" in second.stderr
    done = len(QUESTIONS) - written
    assert second.stdout.startswith(f"{done} answered, 0 failed, 0 bad line(s), {written} skipped")
    data = out.read_text(encoding="utf-8")
    assert data.endswith("\n")
    records = [json.loads(line) for line in data.splitlines()]  # no broken line
    assert sorted(r["id"] for r in records) == sorted(f"q{i}" for i in range(12))  # once each
    for r in records:
        assert r["error"] is None
        assert r["answer"] == f"Ouagadougou [1], for: {r['question'].rstrip('?')}"
        assert r["references"][0]["extract"] == ("Its capital and largest city is Ouagadougou.")
    logged = {row.question for row in reader.recent(100)}
    assert logged == set(QUESTIONS)
