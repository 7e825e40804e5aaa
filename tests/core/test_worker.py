"""The model worker (issue 10): real worker processes on real Unix sockets, answering
with the tests' SmolLM2-135M on a two-page ZIM. One worker, started by the first test
that asks, serves the module's data directory; the tests that kill, stop or time out a
worker use their own (cheap: an ask that fails on a missing ZIM starts a worker without
loading a model)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import with_smollm
from webqa.cli import build_parser
from webqa.errors import InputError
from webqa.frontend import worker
from webqa.store import reader

pytestmark = pytest.mark.skipif(not worker.supported(), reason="no Unix sockets")

MODEL = "smollm2-135m"
QUESTION = "What is the capital of Burkina Faso?"
ROOT = Path(__file__).resolve().parents[2]


HOMES: list[Path] = []  # every data directory a worker may have been started in


@pytest.fixture(scope="module", autouse=True)
def stop_every_worker() -> Iterator[None]:
    """After the module: stop the workers it started, and kill any that did not stop."""
    yield
    for home in HOMES:
        listed = cli(home, "worker", "status", "--json")
        for status in json.loads(listed.stdout) if listed.returncode == 0 else []:
            pid = status.get("pid")
            cli(home, "worker", "stop")
            if isinstance(pid, int) and alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory, smollm_converted: Path) -> Path:
    home = tmp_path_factory.mktemp("worker-home")
    with_smollm(smollm_converted, home / "models")
    HOMES.append(home)
    return home


def fresh_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    HOMES.append(home)
    return home


def env_for(home: Path, **extra: str) -> dict[str, str]:
    # float32: a process's second answer in int8 could differ from its first (seen while
    # the int8 path was new), and a worker's answers must be a fresh process's
    env = {
        **os.environ,
        "WEBQA_HOME": str(home),
        "WEBQA_KEEP_ALIVE": "120",
        "WEBQA_DTYPE": "float32",
        **extra,
    }
    env.pop("WEBQA_DEBUG", None)
    return env


def cli(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webqa.cli", *args],
        env=env_for(home, **extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def statuses(home: Path, **extra: str) -> list[dict[str, Any]]:
    done = cli(home, "worker", "status", "--json", **extra)
    assert done.returncode == 0, done.stderr
    return [row for row in json.loads(done.stdout) if not row["stale"]]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child, exited) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def listening(path: Path) -> bool:
    connection = worker.connect(path)
    if connection is None:
        return False
    connection.close()
    return True


def wait_for(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def without_seconds(data: Any) -> Any:
    """A --json result with its timings (which differ from run to run) left out."""
    if isinstance(data, dict):
        return {k: without_seconds(v) for k, v in data.items() if k != "seconds"}
    if isinstance(data, list):
        return [without_seconds(v) for v in data]
    return data


def ask(home: Path, zim: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    return cli(
        home,
        "ask",
        QUESTION,
        "--zim",
        str(zim),
        "--model",
        MODEL,
        "--max-actions",
        "3",
        *extra,
        **env,
    )


# ---- without a worker process --------------------------------------------------------


def test_the_test_suite_answers_in_process_by_default() -> None:
    args = build_parser().parse_args(["ask", QUESTION])
    assert os.environ["WEBQA_KEEP_ALIVE"] == "0" and not worker.wanted(args)


@pytest.mark.parametrize(
    ("raw", "seconds"), [("", 300.0), ("0", 0.0), ("90", 90.0), ("5m", 300.0), ("1h", 3600.0)]
)
def test_keep_alive_reads_seconds_or_units(raw: str, seconds: float) -> None:
    assert worker.keep_alive({"WEBQA_KEEP_ALIVE": raw}) == seconds


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "9999999h"])
def test_a_bad_keep_alive_is_one_line(raw: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="WEBQA_KEEP_ALIVE must be seconds"):
        worker.keep_alive({"WEBQA_KEEP_ALIVE": raw})
    done = cli(tmp_path / "home", "ask", QUESTION, WEBQA_KEEP_ALIVE=raw)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"webqa ask: WEBQA_KEEP_ALIVE must be seconds from 0 to 604800 "
        f'(or with a unit: "5m", "1h"), not {raw!r}'
    ]


def test_the_key_follows_what_changes_answers_and_not_the_workers_knobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = worker.worker_key()
    assert re.fullmatch(r"[0-9a-f]{16}", base)
    assert worker.worker_key(dict(os.environ, WEBQA_KEEP_ALIVE="5", WEBQA_DEBUG="1")) == base
    assert worker.worker_key(dict(os.environ, WEBQA_DTYPE="float32")) != base
    assert worker.worker_key(dict(os.environ, ATEN_CPU_CAPABILITY="avx2")) != base
    assert worker.worker_key(dict(os.environ, HTTPS_PROXY="http://p:1")) != base
    monkeypatch.setattr(sys, "executable", sys.executable + "-other")
    assert worker.worker_key() != base


def good_request(**changes: object) -> dict[str, object]:
    args = build_parser().parse_args(["ask", QUESTION, "--zim", "/nowhere.zim"])
    request = worker.ask_request(args, QUESTION, 60.0)
    request.update(changes)
    return request


def test_a_request_is_checked_field_by_field() -> None:
    args = worker.check_request(good_request())
    assert (args.question, args.n, args.zim, args.keep_alive) == (QUESTION, 1, "/nowhere.zim", 60)
    bad = {
        "n": True,  # a bool is not a number of episodes
        "seed": 2**70,
        "temperature": "hot",
        "dtype": "int4",
        "engine": "google",
        "zim": "x" * 5000,
        "cwd": "relative/dir",
        "keep_alive": 0,
        "v": 99,
        "shell": "rm -rf /",
    }
    for field, value in bad.items():
        with pytest.raises(ValueError) as raised:
            worker.check_request(good_request(**{field: value}))
        assert len(str(raised.value).splitlines()) == 1
    missing = good_request()
    del missing["question"]
    with pytest.raises(ValueError, match="has no 'question'"):
        worker.check_request(missing)
    with pytest.raises(ValueError, match="not a JSON object"):
        worker.check_request(["ask"])


def test_a_socket_path_too_long_for_unix_is_reached_through_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / ("d" * 120)
    folder.mkdir()
    path = folder / "worker-x.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with worker.address(path) as where:
        assert where != str(path)
        server.bind(where)
    server.listen(1)
    assert path.exists()
    client = worker.connect(path)
    assert client is not None
    client.close()
    server.close()
    path.unlink()
    assert worker.connect(path) is None  # nothing there: no worker


def test_a_gone_workers_files_are_pruned_after_a_week(tmp_path: Path) -> None:
    import fcntl

    from webqa.frontend.worker_server import PRUNE_AFTER, _prune

    old = time.time() - PRUNE_AFTER - 60
    for key in ("gone", "recent", "held", "me"):
        for suffix in (".lock", ".log"):
            (tmp_path / f"worker-{key}{suffix}").write_text("")
            if key != "recent":
                os.utime(tmp_path / f"worker-{key}{suffix}", (old, old))
    held = os.open(tmp_path / "worker-held.lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        _prune(tmp_path, keep=tmp_path / "worker-me.lock")
    finally:
        os.close(held)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f"worker-{k}{s}" for k in ("held", "me", "recent") for s in (".lock", ".log")]


# ---- with the module's worker -----------------------------------------------------------


def test_a_second_ask_reuses_the_worker_and_prints_what_in_process_prints(
    shared_home: Path, zim: Path
) -> None:
    first = ask(shared_home, zim)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("› Search ") and "─ answer ─" in first.stdout
    assert re.search(rf"\n{MODEL} · \d+\.\d s\n$", first.stdout)
    [status] = statuses(shared_home)
    pid = status["pid"]
    assert status["current"] and status["models"][0].startswith(f"{MODEL} (")

    there = ask(shared_home, zim, "--json", "--verbose")
    here = ask(shared_home, zim, "--json", "--verbose", "--no-worker")
    assert there.returncode == here.returncode == 0, there.stderr + here.stderr
    assert [s["pid"] for s in statuses(shared_home)] == [pid]  # the same worker answered
    # the same answer, trajectories and hardware report
    result, result_here = (without_seconds(json.loads(d.stdout)) for d in (there, here))
    assert result == result_here
    assert result["hardware"]["precision"] == "float32"
    assert result["answer"] in first.stdout  # the text form shows the same answer
    # the commands, every prompt exactly as sent and the precision line, the same
    assert there.stderr == here.stderr
    assert "─ prompt (episode 0) ─" in there.stderr and f"model {MODEL}: " in there.stderr
    # the worker logged its episodes, as the process did
    logged = json.loads(cli(shared_home, "log", "--json").stdout)
    assert [e["answer"] for e in logged] == [result["answer"]] * 3


def test_the_run_folder_and_socket_are_this_users_only(shared_home: Path, zim: Path) -> None:
    ask(shared_home, zim, "--zim", str(zim.with_name("missing.zim")))  # a worker is up
    run = shared_home / "run"
    assert run.stat().st_mode & 0o777 == 0o700
    [sock] = run.glob("worker-*.sock")
    assert sock.stat().st_mode & 0o777 == 0o600
    assert sock.with_suffix(".log").stat().st_mode & 0o777 == 0o600


def test_an_error_in_the_worker_is_the_same_one_line(shared_home: Path, zim: Path) -> None:
    missing = str(zim.with_name("missing.zim"))
    there = cli(shared_home, "ask", QUESTION, "--zim", missing)
    here = cli(shared_home, "ask", QUESTION, "--zim", missing, "--no-worker")
    assert there.returncode == here.returncode == 1
    assert there.stderr == here.stderr
    [line] = there.stderr.strip().splitlines()
    assert line.startswith("webqa ask: ") and missing in line
    assert len(statuses(shared_home)) == 1


def raw_exchange(home: Path, payload: bytes) -> list[dict[str, Any]]:
    [sock_path] = (home / "run").glob("worker-*.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        with worker.address(sock_path) as where:
            sock.connect(where)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_oversize_and_malformed_requests_are_refused_in_one_line(
    shared_home: Path, zim: Path
) -> None:
    ask(shared_home, zim, "--zim", str(zim.with_name("missing.zim")))  # a worker is up
    [pid] = [s["pid"] for s in statuses(shared_home)]
    oversize = json.dumps(good_request(question="x" * 100_000)).encode() + b"\n"
    for payload, words in [
        (oversize, "over 65,536 bytes"),
        (b"not json\n", "not JSON"),
        (b"[" * 60_000 + b"\n", "not JSON"),
        (b'{"op": "ask", "v": 1}\n', "has no 'question'"),
        (json.dumps(good_request(n="3")).encode() + b"\n", "'n' is not a valid int"),
        (b'{"op": "exec"}\n', "unknown request op"),
    ]:
        [reply] = raw_exchange(shared_home, payload)
        assert reply["t"] == "error" and words in reply["message"], reply
        assert "\n" not in reply["message"]
    assert [s["pid"] for s in statuses(shared_home)] == [pid]  # still serving


def test_a_client_that_goes_away_abandons_its_question_not_the_worker(
    shared_home: Path, zim: Path
) -> None:
    ask(shared_home, zim, "--zim", str(zim.with_name("missing.zim")))  # a worker is up
    [pid] = [s["pid"] for s in statuses(shared_home)]
    args = build_parser().parse_args(["ask", QUESTION, "--zim", str(zim), "--model", MODEL])
    [sock_path] = (shared_home / "run").glob("worker-*.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        with worker.address(sock_path) as where:
            sock.connect(where)
        sock.sendall(worker.encode(worker.ask_request(args, QUESTION, 120.0)))
        with sock.makefile("rb") as stream:
            while (message := worker.read_message(stream, worker.MAX_MESSAGE)) is not None:
                if message["t"] == "event":  # under way: hang up (as Ctrl-C would)
                    break
    log = sock_path.with_suffix(".log")
    # (at its next event: at once if the model is loaded, after loading it if not)
    assert wait_for(lambda: "a question was abandoned" in log.read_text(), timeout=120)
    # what it had browsed is in the log, marked interrupted (issue 15)
    logged = reader.recent(100, path=shared_home / "webqa.sqlite3")
    assert any(r.error == "interrupted" and r.question == QUESTION for r in logged)
    done = ask(shared_home, zim, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["question"] == QUESTION
    assert [s["pid"] for s in statuses(shared_home)] == [pid]


def test_another_environment_or_data_directory_gets_another_worker(
    shared_home: Path, zim: Path, tmp_path: Path
) -> None:
    missing = str(zim.with_name("missing.zim"))
    cli(shared_home, "ask", QUESTION, "--zim", missing)
    [first] = statuses(shared_home)
    done = cli(shared_home, "ask", QUESTION, "--zim", missing, WEBQA_THREADS="1")
    assert done.returncode == 1
    rows = statuses(shared_home)
    assert len(rows) == 2 and len({r["pid"] for r in rows}) == 2
    assert [r["pid"] for r in rows if r["current"]] == [first["pid"]]  # this env's
    other = fresh_home(tmp_path)
    assert cli(other, "ask", QUESTION, "--zim", missing).returncode == 1
    [mine] = statuses(other)
    assert mine["pid"] not in {r["pid"] for r in rows}
    cli(shared_home, "worker", "stop", WEBQA_THREADS="1")
    assert cli(other, "worker", "stop").returncode == 0


# ---- workers of their own: killed, idle, stopped ------------------------------------------


def test_a_killed_workers_stale_socket_is_replaced(zim: Path, tmp_path: Path) -> None:
    home = fresh_home(tmp_path)
    missing = str(zim.with_name("missing.zim"))
    assert cli(home, "ask", QUESTION, "--zim", missing).returncode == 1
    [status] = statuses(home)
    os.kill(status["pid"], signal.SIGKILL)
    sock = Path(status["socket"])
    # stale: nobody listens (once the killed process's last thread has let its files go)
    assert wait_for(lambda: not alive(status["pid"]) and not listening(sock))
    assert sock.exists()
    done = cli(home, "ask", QUESTION, "--zim", missing)
    assert done.returncode == 1 and done.stderr.startswith("webqa ask: "), done.stderr
    assert "answering here" not in done.stderr  # a new worker answered
    [new] = statuses(home)
    assert new["pid"] != status["pid"] and new["socket"] == status["socket"]


def test_two_asks_racing_to_start_a_worker_leave_one(zim: Path, tmp_path: Path) -> None:
    home = fresh_home(tmp_path)
    command = [sys.executable, "-m", "webqa.cli", "ask", QUESTION, "--zim", str(zim) + ".no"]
    racers = [
        subprocess.Popen(command, env=env_for(home), cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [racer.communicate(timeout=120)[1] for racer in racers]
    assert [racer.returncode for racer in racers] == [1, 1]
    for text in errors:  # each answered by a worker: the missing ZIM's line, nothing else
        [line] = text.strip().splitlines()
        assert line.startswith("webqa ask: ") and ".zim.no" in line
    [status] = statuses(home)
    assert worker_processes(home) == [status["pid"]]  # the other start found it and left


def worker_processes(home: Path) -> list[int]:
    """The live processes serving a socket in ``home`` (from their command lines)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(os.fsencode(home / "run")) for a in args) and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def test_a_worker_that_cannot_start_says_so_and_the_question_is_answered_here(
    zim: Path, tmp_path: Path
) -> None:
    home = fresh_home(tmp_path)
    home.mkdir()
    (home / "run").write_text("not a folder")
    missing = str(zim.with_name("missing.zim"))
    done = cli(home, "ask", QUESTION, "--zim", missing)
    assert done.returncode == 1
    note, answer = done.stderr.strip().splitlines()
    assert note == f"webqa ask: {home / 'run'} is not a folder of yours; answering here"
    assert answer == cli(home, "ask", QUESTION, "--zim", missing, "--no-worker").stderr.strip()
    listed = cli(home, "worker", "status")
    assert listed.returncode == 1
    assert listed.stderr == f"webqa worker: {home / 'run'} is not a folder of yours\n"


def test_a_worker_exits_after_its_keep_alive(zim: Path, tmp_path: Path) -> None:
    home = fresh_home(tmp_path)
    missing = str(zim.with_name("missing.zim"))
    # long enough for `worker status` (a fresh process) to find it on a slow CPU: at 1 s
    # it had gone before that process had started, on a 2-core AVX2 machine
    assert cli(home, "ask", QUESTION, "--zim", missing, WEBQA_KEEP_ALIVE="6").returncode == 1
    [status] = statuses(home)
    assert status["keep_alive_s"] == 6
    assert wait_for(lambda: not alive(status["pid"]))
    assert not Path(status["socket"]).exists()


def test_worker_stop_stops_it(zim: Path, tmp_path: Path) -> None:
    home = fresh_home(tmp_path)
    assert cli(home, "worker", "stop").stdout.startswith("no model worker running")
    cli(home, "ask", QUESTION, "--zim", str(zim.with_name("missing.zim")))
    [status] = statuses(home)
    done = cli(home, "worker", "stop")
    assert done.returncode == 0 and done.stdout == f"stopped the model worker {status['pid']}\n"
    assert not alive(status["pid"]) and statuses(home) == []
    assert cli(home, "worker", "status").stdout.startswith("no model worker for ")
