"""A guided episode through a real OpenAI-compatible server: `transformers serve` on
127.0.0.1 with the tests' SmolLM2 (converted from its package's GGUF), as a user of a
local model server runs webqa. transformers serve refuses fields it does not know
(``grammar``, ``structured_outputs``, ``response_format``: 422), so the probe settles on
``nearest``: the model replies freely and webqa takes the listed command nearest to it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes import BF, FakeWeb, flat_ranker
from webqa import api
from webqa.models.openai import OpenAIPolicy
from webqa.models.server_decoding import ModeCache

pytestmark = pytest.mark.slow
START_S = 120.0  # the server's start, model load included, at most


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smollm_converted: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("served")
    folder = root / "smollm2-135m-hf"
    shutil.copytree(smollm_converted, folder)  # the GGUF converted to a transformers folder
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-c", "from transformers.cli.transformers import main; main()"]
    args = ["serve", str(folder), "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32"]
    log = (root / "server.log").open("w")
    proc = subprocess.Popen([*command, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None:
                said = (root / "server.log").read_text()[-2000:]
                pytest.fail(f"transformers serve exited: {said}")
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start in {START_S:g} s")
            time.sleep(0.5)
        yield f"{base}/v1|{folder}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_a_guided_episode_through_transformers_serve(server: str, tmp_path: Path) -> None:
    api_base, model = server.split("|")
    modes = ModeCache(tmp_path / "servers.json")
    with OpenAIPolicy(model, api_base=api_base, modes=modes, timeout=120) as policy:
        result = api.answer(
            "What is the capital of Burkina Faso?",
            model=policy,
            web=FakeWeb([BF], any_query=True),
            ranker=flat_ranker,
            log=False,
            max_actions=8,
        )
        decoding = policy.served_decoding()
        requests = policy.usage.requests
    steps = [s.command for s in result.candidates[0].steps]
    # guided (the folder's name says 135M): the question searched, the result opened, a
    # listed quote taken from the page, then the answer; every command valid, none twice
    assert steps[:2] == ["Search What is the capital of Burkina Faso?", "Clicked on link 0"]
    assert steps[2].startswith("Quote: ") and steps[2][7:] in BF.body
    assert steps[-1] == "End: Answer"
    assert all(s.valid for s in result.candidates[0].steps)
    assert len(steps) == len(set(steps))
    assert decoding.startswith("guided commands held by nearest (probe")
    assert modes.get(f"{api_base}/chat/completions|{model}") == "nearest"
    assert requests >= 2  # the probe's, then the quote's and the answer's
    assert result.references and result.answer.strip()
