"""The model worker, client side: a warm `webqa ask` runs in a background process that
keeps its models and webs loaded, so it pays only for the episode (issue 10).

The first `webqa ask` starts the worker (``webqa.frontend.worker_server``) detached and
connects to it; later asks connect straight away. One worker serves one configuration:
its socket, ``<data dir>/run/worker-<key>.sock``, is named by a hash of what must match
for it to answer as this process would (``worker_key``: the code, the interpreter, the
data directory and the environment that changes behaviour). It exits after
``$WEBQA_KEEP_ALIVE`` seconds idle (default 300, as Ollama's OLLAMA_KEEP_ALIVE);
``WEBQA_KEEP_ALIVE=0`` or ``webqa ask --no-worker`` answers in-process, as does a system
without Unix sockets. Whatever goes wrong with the worker is one line and the question is
answered in-process instead: it is never lost.

Protocol: newline-delimited JSON objects over an AF_UNIX stream socket (the folder 0700,
the socket 0600: this user's only), each at most a bounded size. The client sends one
request, ``{"op": "ask", ...}`` (``ASK_FIELDS``), ``{"op": "status"}`` or
``{"op": "stop"}``; the worker answers with messages ``{"t": ...}``: "accepted", then
"queued" while another question runs, what `webqa ask` shows as it goes ("status",
"progress", "event", "hardware", "warning"), and last "result", "error" (the one line,
exit code and, with --debug, the traceback) or "unavailable" (the worker stopped: answer
here). This module imports nothing heavy: `webqa ask` through a worker stays light.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from webqa import paths
from webqa.errors import InputError, WebQAError, os_error_message
from webqa.models.server_decoding import MODES as SERVER_MODES
from webqa.values import BROWSING

PROTOCOL = 1
KEEP_ALIVE_VAR = "WEBQA_KEEP_ALIVE"
DEFAULT_KEEP_ALIVE = 300.0
MAX_KEEP_ALIVE = 7 * 24 * 3600.0
MAX_REQUEST = 64 * 1024  # bytes of one request line: a question is at most 2,000 chars
MAX_MESSAGE = 32 * 1024 * 1024  # bytes of one message from the worker (a --json result)
START_TIMEOUT = 180.0  # seconds for a new worker's socket to answer (it only imports)
SILENCE_TIMEOUT = 900.0  # seconds without a message from the worker before giving up
QUEUED_PING = 5.0  # seconds between "queued" messages to a waiting client
# the environment that changes what a worker would answer (the worker's own knobs,
# WEBQA_KEEP_ALIVE and WEBQA_DEBUG, do not: a request carries them)
ENV_PREFIXES = ("WEBQA_", "HF_", "TRANSFORMERS_", "TORCH", "OMP_", "MKL_", "ATEN_", "ONEDNN_")
ENV_NAMES = (
    "OPENAI_API_KEY",
    "BRAVE_API_KEY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "CUDA_VISIBLE_DEVICES",
)
PROXY_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
OWN_KNOBS = (KEEP_ALIVE_VAR, "WEBQA_DEBUG", paths.ENV_VAR)

# an ask request: each field and what it may hold (checked by ``check_request``)
STR, OPT_STR, INT, OPT_FLOAT, BOOL, FLOAT = "str", "str?", "int", "float?", "bool", "float"
ASK_FIELDS: dict[str, str] = {
    "question": STR,
    "n": INT,
    "model": OPT_STR,
    "api_base": OPT_STR,
    "dtype": OPT_STR,
    "browsing": OPT_STR,
    "server_decoding": OPT_STR,
    "reward_model": OPT_STR,
    "temperature": OPT_FLOAT,
    "max_actions": INT,
    "timeout": OPT_FLOAT,
    "seed": INT,
    "json": BOOL,
    "verbose": BOOL,
    "debug": BOOL,
    "web": BOOL,
    "searxng": OPT_STR,
    "engine": OPT_STR,
    "zim": OPT_STR,
    "allow_private": BOOL,
    "cwd": STR,
    "keep_alive": FLOAT,
}
CHOICES: dict[str, tuple[str, ...]] = {
    "dtype": ("auto", "bfloat16", "float32", "int8"),
    "browsing": BROWSING,
    "server_decoding": ("auto", *SERVER_MODES),
    "engine": ("duckduckgo", "searxng", "brave"),
}
MAX_FIELD_CHARS = 4096  # a path, URL or model name
MAX_INT = 2**63


class WorkerUnavailable(WebQAError):
    """The worker cannot answer this question (did not start, died, was stopped): the
    message says why, in one line; `webqa ask` answers in-process instead, and `webqa
    worker` says it as its error."""


class _Retry(Exception):
    """The worker closed the connection before it took the request (it was exiting)."""


Message = dict[str, object]


# ---- configuration ------------------------------------------------------------------


def keep_alive(environ: Mapping[str, str] | None = None) -> float:
    """``$WEBQA_KEEP_ALIVE`` in seconds: a number, or one with the unit s, m or h ("5m");
    default 300; 0 disables the worker. An InputError (one line) on anything else."""
    raw = (os.environ if environ is None else environ).get(KEEP_ALIVE_VAR, "").strip()
    if not raw:
        return DEFAULT_KEEP_ALIVE
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(raw[-1].lower())
    number = raw[:-1] if scale else raw
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_KEEP_ALIVE:  # also NaN
        raise InputError(
            f"{KEEP_ALIVE_VAR} must be seconds from 0 to {MAX_KEEP_ALIVE:.0f} "
            f'(or with a unit: "5m", "1h"), not {raw!r}'
        )
    return seconds


def supported() -> bool:
    """Whether this system can run a worker (Unix sockets and file locks)."""
    return os.name == "posix" and hasattr(socket, "AF_UNIX")


def wanted(args: argparse.Namespace) -> bool:
    """Whether this `webqa ask` goes through a worker (a bad WEBQA_KEEP_ALIVE fails here)."""
    seconds = keep_alive()
    return not getattr(args, "no_worker", False) and seconds > 0 and supported()


def package_dir() -> Path:
    import webqa

    return Path(webqa.__file__).resolve().parent


def code_fingerprint(root: Path | None = None) -> str:
    """A cheap stamp of the installed webqa code: every file's name, size and mtime
    (about a millisecond), so that an edit or reinstall gets a fresh worker."""
    root = root or package_dir()
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            try:
                info = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            rel = os.path.relpath(os.path.join(folder, name), root)
            digest.update(f"{rel}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _site_stamp() -> str:
    """The site-packages folders' mtimes: an install or removal there changes them."""
    stamps = []
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")):
            try:
                stamps.append(f"{entry}:{os.stat(entry).st_mtime_ns}")
            except OSError:
                pass
    return ";".join(stamps)


def worker_key(environ: Mapping[str, str] | None = None) -> str:
    """16 hex digits naming the worker that may answer for this process: a hash of the
    code (version, location, file stamps, site-packages), the interpreter, the data
    directory and the environment variables that change behaviour."""
    import webqa

    env = os.environ if environ is None else environ
    chosen = sorted(
        (name, value)
        for name, value in env.items()
        if name not in OWN_KNOBS
        and (name.startswith(ENV_PREFIXES) or name in ENV_NAMES or name.lower() in PROXY_NAMES)
    )
    parts = [
        f"protocol {PROTOCOL}",
        webqa.__version__,
        str(package_dir()),
        code_fingerprint(),
        _site_stamp(),
        sys.executable,
        str(paths.data_dir_path().resolve()),
        json.dumps(chosen),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Place:
    """A worker's files in ``<data dir>/run/``: its socket, lock and log."""

    run_dir: Path
    key: str

    @property
    def socket(self) -> Path:
        return self.run_dir / f"worker-{self.key}.sock"

    @property
    def lock(self) -> Path:
        return self.run_dir / f"worker-{self.key}.lock"

    @property
    def log(self) -> Path:
        return self.run_dir / f"worker-{self.key}.log"


def run_dir(*, create: bool = True) -> Path:
    """``<data dir>/run``, this user's only (0700); a WorkerUnavailable if it exists and
    is not a folder this user owns (a link, another user's)."""
    path = paths.data_dir_path().resolve() / "run"
    if create:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except FileExistsError:
            pass  # not a folder: said below
        except OSError as exc:
            raise WorkerUnavailable(f"cannot create {path}: {exc.strerror or exc}") from exc
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise WorkerUnavailable(f"{path} is not a folder of yours")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def place(key: str | None = None) -> Place:
    return Place(run_dir(), key or worker_key())


@contextmanager
def address(path: Path) -> Iterator[str]:
    """The address to bind or connect ``path`` by: the path itself, or, where it is too
    long for a Unix socket (about 100 bytes), the same file reached through an open
    descriptor of its folder (Linux); a WorkerUnavailable elsewhere."""
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    if not sys.platform.startswith("linux"):
        raise WorkerUnavailable(f"the socket path {path} is too long for this system")
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def connect(path: Path, *, timeout: float = 10.0) -> socket.socket | None:
    """A connection to the worker listening at ``path``; None where none listens (no
    socket, or a stale one left by a killed worker)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with address(path) as where:
            sock.connect(where)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
            return None
        raise WorkerUnavailable(f"cannot connect to {path}: {exc.strerror or exc}") from exc
    return sock


# ---- messages -------------------------------------------------------------------------


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def read_message(stream: object, limit: int) -> Message | None:
    """The next message from a binary ``stream`` (a socket's ``makefile("rb")``); None at
    the end; a ValueError if it is over ``limit`` bytes, not JSON or not an object."""
    line = stream.readline(limit + 1)  # type: ignore[attr-defined]
    if not line:
        return None
    if len(line) > limit:
        raise ValueError(f"a message over {limit:,} bytes")
    if not line.endswith(b"\n"):
        raise ValueError("a message cut short")
    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ValueError("a message that is not JSON") from exc
    if not isinstance(message, dict):
        raise ValueError("a message that is not a JSON object")
    return message


def check_request(request: object) -> argparse.Namespace:
    """An ask request (untrusted: from whatever connected) as the options `webqa ask`
    parses: every field present, of its type, bounded; a ValueError naming the first that
    is not."""
    if not isinstance(request, dict):
        raise ValueError("the request is not a JSON object")
    extra = sorted(set(request) - set(ASK_FIELDS) - {"op", "v"})
    if extra:
        raise ValueError(f"unknown request field {extra[0][:40]!r}")
    if request.get("v") != PROTOCOL:
        raise ValueError(f"protocol version {request.get('v')!r}; this worker speaks {PROTOCOL}")
    values: dict[str, object] = {}
    for name, kind in ASK_FIELDS.items():
        if name not in request:
            raise ValueError(f"the request has no {name!r}")
        value = request[name]
        ok = {
            STR: isinstance(value, str),
            OPT_STR: value is None or isinstance(value, str),
            INT: type(value) is int and -MAX_INT <= value < MAX_INT,
            BOOL: type(value) is bool,
            FLOAT: type(value) in (int, float),
            OPT_FLOAT: value is None or type(value) in (int, float),
        }[kind]
        if ok and isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            ok = False
        if ok and name in CHOICES and value is not None and value not in CHOICES[name]:
            ok = False
        if not ok:
            raise ValueError(f"the request's {name!r} is not a valid {kind.rstrip('?')}")
        values[name] = value
    keep = values["keep_alive"]
    assert isinstance(keep, int | float)
    if not 0 < keep <= MAX_KEEP_ALIVE:
        raise ValueError(f"the request's 'keep_alive' is out of range: {keep!r}")
    timeout = values["timeout"]
    assert timeout is None or isinstance(timeout, int | float)
    if timeout is not None and not 0 <= timeout <= MAX_INT:  # NaN fails too
        raise ValueError(f"the request's 'timeout' is out of range: {timeout!r}")
    cwd = values["cwd"]
    assert isinstance(cwd, str)
    if not os.path.isabs(cwd) or "\0" in cwd:
        raise ValueError("the request's 'cwd' is not an absolute path")
    return argparse.Namespace(**values)


def ask_request(args: argparse.Namespace, question: str, seconds: float) -> Message:
    """The request that asks a worker what ``args`` (`webqa ask`'s options) ask here."""
    request: Message = {"op": "ask", "v": PROTOCOL}
    for name in ASK_FIELDS:
        request[name] = getattr(args, name, None)
    request.update(
        question=question,
        debug=bool(getattr(args, "debug", False))
        or os.environ.get("WEBQA_DEBUG", "").strip() not in ("", "0"),
        cwd=os.getcwd(),
        keep_alive=seconds,
    )
    return request


# ---- asking ---------------------------------------------------------------------------


def ask(
    request: Message,
    on_message: Callable[[Message], None],
    on_status: Callable[[str], None],
) -> Message:
    """Send ``request`` to this configuration's worker, starting one if none listens, and
    relay its messages to ``on_message`` until the last: "result" or "error", returned.
    A WorkerUnavailable (one line, naming the log) if no worker can answer it."""
    try:
        where = place()
        for _attempt in range(3):
            deadline = time.monotonic() + START_TIMEOUT
            seconds = float(request["keep_alive"])  # type: ignore[arg-type]
            sock = _obtain(where, seconds, on_status, deadline)
            try:
                return _exchange(sock, request, on_message, on_status, where)
            except _Retry:
                continue
            finally:
                sock.close()
    except OSError as exc:  # the run folder, the log, the socket: not this question's fault
        raise WorkerUnavailable(f"the model worker failed: {os_error_message(exc)}") from exc
    raise WorkerUnavailable(f"the model worker keeps closing connections (see {where.log})")


def _obtain(
    where: Place, seconds: float, on_status: Callable[[str], None], deadline: float
) -> socket.socket:
    """A connection to the worker, started first (detached) if none listens."""
    sock = connect(where.socket)
    if sock is not None:
        return sock
    on_status("starting the model worker…")
    proc = spawn(where, seconds)
    held_since: float | None = None  # when another process was first seen holding the lock
    while time.monotonic() < deadline:
        time.sleep(0.05)
        sock = connect(where.socket)
        if sock is not None:
            return sock
        code = proc.poll()
        if code is None:
            continue
        if code != 0:
            raise WorkerUnavailable(
                f"the model worker did not start (exit code {code}; see {where.log})"
            )
        # it found another worker holding the lock: wait for that one's socket
        if not lock_held(where.lock):
            proc = spawn(where, seconds)  # that one has gone since: start again
            held_since = None
        elif held_since is None:
            held_since = time.monotonic()
        elif time.monotonic() - held_since > 15:
            raise WorkerUnavailable(
                f"another model worker holds {where.lock} but does not answer (see {where.log})"
            )
    raise WorkerUnavailable(
        f"the model worker did not start within {START_TIMEOUT:.0f} s (see {where.log})"
    )


BOOT = """\
import sys
root = sys.argv[1]
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
if root not in sys.path:
    sys.path.insert(0, root)
from webqa.frontend.worker_server import main
sys.exit(main(sys.argv[2:]))
"""


def spawn(where: Place, seconds: float) -> subprocess.Popen[bytes]:
    """Start a worker for ``where`` in its own session, its stderr appended to its log
    (which the worker truncates when it starts), with this process's environment and
    this process's webqa code; its working folder is the run folder."""
    env = dict(os.environ, **{paths.ENV_VAR: str(paths.data_dir_path().resolve())})
    fd = os.open(where.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                BOOT,
                str(package_dir().parent),
                str(where.socket),
                repr(seconds),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=fd,
            cwd=where.run_dir,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)


def lock_held(path: Path) -> bool:
    """Whether a live worker holds the lock file ``path`` (it does for its whole life)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # (closing releases a lock taken here)
    return False


def _exchange(
    sock: socket.socket,
    request: Message,
    on_message: Callable[[Message], None],
    on_status: Callable[[str], None],
    where: Place,
) -> Message:
    try:
        sock.settimeout(10.0)
        sock.sendall(encode(request))
        sock.settimeout(SILENCE_TIMEOUT)
        with sock.makefile("rb") as stream:  # (closed with the socket: the worker sees it go)
            return _relay(stream, on_message, on_status, where)
    except TimeoutError as exc:
        raise WorkerUnavailable(
            f"no word from the model worker in {SILENCE_TIMEOUT:.0f} s (see {where.log})"
        ) from exc
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise _Retry from exc  # before the worker took the request (after: _relay says)


def _relay(
    stream: Any,
    on_message: Callable[[Message], None],
    on_status: Callable[[str], None],
    where: Place,
) -> Message:
    accepted = False
    while True:
        try:
            message = read_message(stream, MAX_MESSAGE)
        except ValueError as exc:
            raise WorkerUnavailable(f"the model worker sent {exc} (see {where.log})") from exc
        except (ConnectionResetError, BrokenPipeError):
            message = None
        if message is None:
            if not accepted:
                raise _Retry
            raise WorkerUnavailable(
                f"the model worker stopped in the middle of the question (see {where.log})"
            )
        kind = message.get("t")
        if kind == "accepted":
            accepted = True
        elif kind == "queued":
            on_status("waiting for the worker…")
        elif kind in ("result", "error"):
            return message
        elif kind == "unavailable":
            raise WorkerUnavailable(f"{message.get('why', 'the model worker stopped')}")
        else:
            on_message(message)


# ---- `webqa worker status|stop` ---------------------------------------------------------


def query(path: Path, op: str, *, timeout: float = 5.0) -> Message | None:
    """One "status" or "stop" exchange with the worker at ``path``; None if none listens
    there (or it does not answer in ``timeout``)."""
    try:
        sock = connect(path, timeout=timeout)
    except WorkerUnavailable:
        return None
    if sock is None:
        return None
    try:
        with sock:
            sock.sendall(encode({"op": op, "v": PROTOCOL}))
            return read_message(sock.makefile("rb"), MAX_MESSAGE)
    except (OSError, ValueError):
        return None


def workers() -> list[tuple[Path, Message | None]]:
    """This data directory's worker sockets and each one's status (None: stale)."""
    folder = run_dir(create=False)
    if not folder.is_dir():
        return []
    return [(path, query(path, "status")) for path in sorted(folder.glob("worker-*.sock"))]


def run_worker(args: argparse.Namespace, out: Console, err: Console) -> int:
    """`webqa worker status` (each worker of this data directory: pid, age, idle time,
    keep-alive, memory, what it has loaded) and `webqa worker stop` (stop them all)."""
    if not supported():
        out.print("this system runs `webqa ask` in-process: no model worker")
        return 0
    current = worker_key()
    found = workers()
    if args.worker_command == "status":
        rows = []
        for path, status in found:
            row: dict[str, object] = {"socket": str(path), "stale": status is None}
            if status is not None:
                row.update({k: v for k, v in status.items() if k != "t"})
            row["current"] = path.name == f"worker-{current}.sock"
            rows.append(row)
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            out.print(f"no model worker for {paths.data_dir_path()}")
        for row in [] if args.json else rows:
            out.print(escape(describe(row)))
        return 0
    stopped = 0
    for path, status in found:
        if status is None:
            continue
        reply = query(path, "stop")
        pid = reply.get("pid") if reply else None
        if isinstance(pid, int) and _wait_gone(path, pid):
            out.print(f"stopped the model worker {pid}")
            stopped += 1
        else:
            where = escape(str(path))
            err.print(f"[yellow]webqa worker: the worker at {where} did not stop[/yellow]")
    if not stopped:
        out.print(f"no model worker running for {paths.data_dir_path()}")
    return 0


def _wait_gone(path: Path, pid: int, timeout: float = 30.0) -> bool:
    """Whether process ``pid`` (the worker at ``path``) ends within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        if not path.exists() and not lock_held(path.with_suffix(".lock")):
            return True
        time.sleep(0.1)
    return False


def describe(row: Mapping[str, object]) -> str:
    """One line about a worker for `webqa worker status`."""
    if row.get("stale"):
        return f"{row['socket']}: stale (no worker listens)"
    mark = " (this configuration)" if row.get("current") else ""
    memory = row.get("rss_bytes")
    size = f", {int(memory) / 1e9:.1f} GB resident" if isinstance(memory, int) else ""
    models = ", ".join(_strings(row.get("models"))) or "none"
    webs = ", ".join(_strings(row.get("webs"))) or "none"
    state = "answering" if row.get("busy") else "idle"
    return (
        f"worker {row.get('pid')}{mark}: {state}, up {_age(row.get('uptime_s'))}, idle "
        f"{_age(row.get('idle_s'))} of {_age(row.get('keep_alive_s'))} keep-alive{size}; "
        f"models: {models}; webs: {webs}"
    )


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _age(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
