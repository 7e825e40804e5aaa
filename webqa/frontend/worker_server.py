"""The model worker process: keeps the policies, reward models, webs and MiniLM loaded
and answers `webqa ask` requests over its Unix socket (``webqa.frontend.worker`` is the
client, and says the protocol).

One question runs at a time, on the main thread (SQLite connections and the models stay
on one thread); a thread per connection reads and checks its request (untrusted: bounded
in size and time, every field validated, nothing evaluated) and keeps a waiting client
told it is queued. A client that goes away, or `webqa worker stop`, abandons its question
at the next event, and the worker stays usable. The worker holds an exclusive lock on
``worker-<key>.lock`` for its whole life, so two racing starts leave one worker and a
killed worker's stale socket is replaced by the next. It exits after the keep-alive
(the latest request's) passes with nothing to do.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webqa import api
from webqa.errors import error_line
from webqa.frontend import worker as proto
from webqa.frontend.ask import answer_messages, decoding_option
from webqa.models.base import Policy, RewardModel
from webqa.web.base import Web

KEPT = 2  # policies, reward models and webs kept loaded, each (the least recently used go)
MAX_CONNECTIONS = 16
REQUEST_TIMEOUT = 10.0  # seconds a connection has to send its request
SEND_TIMEOUT = 60.0  # seconds a message may wait on a client that does not read
LOG_LIMIT = 1024 * 1024  # bytes of the log (stderr) before it is emptied
PRUNE_AFTER = 7 * 24 * 3600.0  # seconds unused before a gone worker's lock and log go
STOP_GRACE = 30.0  # seconds a stop waits for the question in flight to give up


class Abandoned(BaseException):
    """The client went away or the worker is stopping: give up the question (raised from
    an event, so it leaves api.answer as an interrupt would: its episodes so far logged,
    marked interrupted)."""


@dataclass
class Job:
    """One ask request and its connection: the handler thread owns the connection until
    the main thread takes the job (to answer or refuse it), the main thread after."""

    conn: socket.socket
    args: argparse.Namespace
    worker: Worker
    lock: threading.Lock = field(default_factory=threading.Lock)
    taken: threading.Event = field(default_factory=threading.Event)
    gone: bool = False  # the client went away (or never will be answered)

    def take(self) -> bool:
        """The main thread's claim; False if the client has gone meanwhile."""
        with self.lock:
            if self.gone:
                return False
            self.taken.set()
            return True

    def send(self, message: proto.Message, *, last: bool = False) -> None:
        """Send ``message``; an Abandoned if the client has gone or, unless it is the
        ``last``, the worker is stopping."""
        if not last and self.taken.is_set() and self.worker.stopping.is_set():
            raise Abandoned("the worker is stopping")
        with self.lock:
            self._send(message)

    def ping(self) -> None:
        """Tell a waiting client it is queued (finding one that has gone)."""
        with self.lock:
            if not self.taken.is_set():
                self._send({"t": "queued"})

    def _send(self, message: proto.Message) -> None:
        if self.gone:
            raise Abandoned("the client has gone")
        try:
            self.conn.sendall(proto.encode(message))
        except (OSError, ValueError) as exc:  # a closed peer, a full buffer for 60 s
            self.gone = True
            raise Abandoned("the client has gone") from exc


class Worker:
    def __init__(self, socket_path: Path, keep_alive: float) -> None:
        self.path = socket_path
        self.keep_alive = keep_alive
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.stopping = threading.Event()
        self.started = time.time()
        self.last_active = time.monotonic()
        self.current: Job | None = None
        self.connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.open_connections = 0  # being read or waiting (the worker is not idle then)
        self.counting = threading.Lock()
        self.policies: OrderedDict[tuple[object, ...], Policy] = OrderedDict()
        self.rewards: OrderedDict[tuple[object, ...], RewardModel] = OrderedDict()
        self.webs: OrderedDict[tuple[object, ...], Web] = OrderedDict()
        self.listener: socket.socket | None = None
        self.bound: tuple[int, int] | None = None  # the socket file's (device, inode)
        self.code = proto.code_fingerprint()

    # ---- life ----

    def serve(self) -> int:
        import fcntl

        lock_path = self.path.with_suffix(".lock")
        lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # another worker serves this configuration (or is starting)
        _empty_log()
        self._bind()
        print(
            f"webqa worker {os.getpid()} serving {self.path} (keep-alive {self.keep_alive:g} s)",
            file=sys.stderr,
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        threading.Thread(target=self._accept, name="accept", daemon=True).start()
        threading.Thread(target=self._retire_superseded, name="retire", daemon=True).start()
        try:
            self._loop()
        finally:
            self._close()
        return 0

    def _bind(self) -> None:
        self.path.unlink(missing_ok=True)  # a killed worker's (the lock says none lives)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            with proto.address(self.path) as where:
                listener.bind(where)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        info = os.stat(self.path)
        self.bound = (info.st_dev, info.st_ino)
        listener.listen(MAX_CONNECTIONS)
        listener.settimeout(0.5)
        self.listener = listener

    def stop(self) -> None:
        """Stop: the question in flight gives up at its next event; if it has not within
        ``STOP_GRACE`` seconds, the process ends anyway."""
        if not self.stopping.is_set():
            self.stopping.set()
            timer = threading.Timer(STOP_GRACE, self._exit_now)
            timer.daemon = True
            timer.start()

    def _exit_now(self) -> None:
        self._unlink()
        print(f"webqa worker {os.getpid()} ends: stopped mid-question", file=sys.stderr, flush=True)
        os._exit(0)

    def _unlink(self) -> None:
        """Remove the socket file, unless a newer worker has bound its own there since."""
        try:
            info = os.stat(self.path)
            if (info.st_dev, info.st_ino) == self.bound:
                self.path.unlink()
        except OSError:
            pass

    def _retire_superseded(self) -> None:
        """Stop this data directory's idle workers of the same webqa and interpreter but
        older code: no client will ask them again, yet each holds its models until its
        keep-alive passes (during development, one per edit)."""
        for other in sorted(self.path.parent.glob("worker-*.sock")):
            if other == self.path:
                continue
            status = proto.query(other, "status")
            if (
                status is not None
                and status.get("package_dir") == str(proto.package_dir())
                and status.get("executable") == sys.executable
                and status.get("code") != self.code
                and not status.get("busy")
            ):
                proto.query(other, "stop")
                print(f"webqa worker: stopped {status.get('pid')}, older code", file=sys.stderr)
        _prune(self.path.parent, keep=self.path.with_suffix(".lock"))

    def _loop(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=0.5)
            except queue.Empty:
                idle = time.monotonic() - self.last_active
                idle_now = self.current is None and self.open_connections == 0
                if self.stopping.is_set() or (idle_now and idle > self.keep_alive):
                    return
                continue
            if self.stopping.is_set():
                self._refuse(job, "the model worker was stopped")
                continue
            self._run(job)
            self.last_active = time.monotonic()

    def _close(self) -> None:
        self.stopping.set()
        self._unlink()
        if self.listener is not None:
            self.listener.close()
        while True:
            try:
                self._refuse(self.jobs.get_nowait(), "the model worker exited")
            except queue.Empty:
                break
        print(f"webqa worker {os.getpid()} exits", file=sys.stderr, flush=True)

    def _refuse(self, job: Job, why: str) -> None:
        """Tell a queued job's client to answer it itself."""
        if job.take():
            self._tell(job, why)
            job.conn.close()

    @staticmethod
    def _tell(job: Job, why: str) -> None:
        try:
            job.send({"t": "unavailable", "why": why}, last=True)
        except Abandoned:
            pass

    # ---- connections ----

    def _accept(self) -> None:
        assert self.listener is not None
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            if not _same_user(conn):
                conn.close()
                continue
            if not self.connections.acquire(blocking=False):
                _reply_and_close(conn, _error("the model worker has too many connections"))
                continue
            with self.counting:
                self.open_connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(REQUEST_TIMEOUT)
            try:
                request = proto.read_message(conn.makefile("rb"), proto.MAX_REQUEST)
            except ValueError as exc:
                _reply_and_close(conn, _error(f"refused {exc}"))
                return
            except OSError:
                conn.close()
                return
            if request is None:
                conn.close()
                return
            op = request.get("op")
            if op == "status":
                _reply_and_close(conn, self.status())
            elif op == "stop":
                self.stop()
                _reply_and_close(conn, {"t": "stopping", "pid": os.getpid()})
            elif op == "ask":
                self._ask(conn, request)
            else:
                _reply_and_close(conn, _error(f"refused an unknown request op {str(op)[:40]!r}"))
        finally:
            with self.counting:
                self.open_connections -= 1
            self.connections.release()

    def _ask(self, conn: socket.socket, request: proto.Message) -> None:
        try:
            args = proto.check_request(request)
        except ValueError as exc:
            _reply_and_close(conn, _error(f"refused the request: {exc}"))
            return
        conn.settimeout(SEND_TIMEOUT)
        self.last_active = time.monotonic()  # (a status query does not keep a worker alive)
        job = Job(conn, args, self)
        try:
            job.send({"t": "accepted"})
            if self.current is not None or not self.jobs.empty():
                job.send({"t": "queued"})
            self.jobs.put(job)
            while not job.taken.wait(proto.QUEUED_PING):
                job.ping()
        except Abandoned:
            pass
        with job.lock:
            if job.taken.is_set():
                return  # the main thread answers it, and closes the connection
            job.gone = True
        conn.close()

    # ---- answering ----

    def _run(self, job: Job) -> None:
        if not job.take():
            return  # its client went away while it waited
        args = job.args
        self.current = job
        self.keep_alive = float(args.keep_alive)
        try:
            os.chdir(args.cwd)  # relative paths (--zim, --model) mean what they mean there
        except OSError:
            pass
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _relay_warnings(job)
                final = self._answer(job)
            job.send(final, last=True)
        except Abandoned:
            print(f"webqa worker: a question was abandoned ({_now()})", file=sys.stderr, flush=True)
            if self.stopping.is_set():
                self._tell(job, "the model worker was stopped")
        finally:
            self.current = None
            job.conn.close()
            try:
                os.chdir(self.path.parent)
            except OSError:
                pass
            _bound_log()

    def _answer(self, job: Job) -> proto.Message:
        args = job.args
        try:
            web = self.web(args, lambda text: job.send({"t": "progress", "text": text}))
            policy = self.policy(args)
            reward = self.reward(args, policy) if args.n > 1 else None
            return answer_messages(args, web, job.send, policy=policy, reward=reward)
        except Abandoned:
            raise
        except Exception as exc:  # as the command line's top-level handler says it
            message, code = error_line(exc, debug=args.debug)
            tb = traceback.format_exc() if args.debug else None
            return {"t": "error", "message": message, "code": code, "traceback": tb}

    def policy(self, args: argparse.Namespace) -> Policy:
        """The policy `webqa ask` would load for ``args``, kept (``KEPT`` at most)."""
        dtype = None if args.api_base else (args.dtype or "auto")
        decoding = decoding_option(args)
        key = (_identity(args.model), args.api_base, dtype, decoding)
        if key in self.policies:
            self.policies.move_to_end(key)
            return self.policies[key]
        policy = api.load_policy(
            args.model, api_base=args.api_base, dtype=args.dtype, decoding=decoding
        )
        if any(p is policy for p in self.policies.values()):
            # api's cache, keyed by name, holds a relative path's model from another folder
            self._forget_policy(policy)
            policy = api.load_policy(
                args.model, api_base=args.api_base, dtype=args.dtype, decoding=decoding
            )
        self.policies[key] = policy
        while len(self.policies) > KEPT:
            self._forget_policy(next(iter(self.policies.values())))
        return policy

    def _forget_policy(self, policy: Policy) -> None:
        for key in [k for k, p in self.policies.items() if p is policy]:
            del self.policies[key]
        # api.load_policy keeps every policy it loads; a worker must let them go
        for key in [k for k, p in api._policies.items() if p is policy]:
            del api._policies[key]
        for key in [k for k in self.rewards if k[1] == id(policy)]:
            _close(self.rewards.pop(key))
        _close(policy)

    def reward(self, args: argparse.Namespace, policy: Policy) -> RewardModel:
        key = (_identity(args.reward_model), id(policy))
        if key not in self.rewards:
            self.rewards[key] = api.load_reward(args.reward_model, policy)
            while len(self.rewards) > KEPT:
                _close(self.rewards.popitem(last=False)[1])
        self.rewards.move_to_end(key)
        return self.rewards[key]

    def web(self, args: argparse.Namespace, progress: Callable[[str], None]) -> Web:
        """The web `webqa ask` would open for ``args``, kept while its file is unchanged."""
        if args.web or args.searxng or args.engine:
            key: tuple[object, ...] = ("live", args.engine, args.searxng, args.allow_private)
            opener: Callable[[], Web] = lambda: api.open_web(  # noqa: E731
                live=args.web,
                searxng=args.searxng,
                engine=args.engine,
                allow_private=args.allow_private,
            )
        else:
            if args.zim is not None:
                zim = Path(args.zim)
            else:  # the default corpus, (re)built here if missing or stale, as in-process
                from webqa.web.corpus import build_default_corpus

                zim = build_default_corpus(progress=progress)
            try:
                info = os.stat(zim)
            except OSError:
                return api.open_web(zim=zim)  # its own clear error
            key = ("zim", str(zim.resolve()), info.st_ino, info.st_size, info.st_mtime_ns)
            opener = lambda: api.open_web(zim=zim)  # noqa: E731
        if key not in self.webs:
            self.webs[key] = opener()
            while len(self.webs) > KEPT:
                _close(self.webs.popitem(last=False)[1])
        self.webs.move_to_end(key)
        return self.webs[key]

    def status(self) -> proto.Message:
        models = []
        for policy in self.policies.values():
            choice = getattr(policy, "hardware", None)
            precision = getattr(choice, "precision", None)
            models.append(f"{policy.name} ({precision})" if precision else policy.name)
        return {
            "t": "status",
            "pid": os.getpid(),
            "socket": str(self.path),
            "executable": sys.executable,
            "package_dir": str(proto.package_dir()),
            "code": self.code,
            "busy": self.current is not None,
            "queued": self.jobs.qsize(),
            "uptime_s": round(time.time() - self.started, 1),
            "idle_s": 0.0
            if self.current is not None
            else round(time.monotonic() - self.last_active, 1),
            "keep_alive_s": self.keep_alive,
            "rss_bytes": _resident_bytes(),
            "models": models,
            "webs": [web.name for web in self.webs.values()],
        }


def _prune(folder: Path, *, keep: Path) -> None:
    """Remove the lock, log and socket of workers gone for a week (one set per code
    version and environment ever used). Each lock is taken first, so no worker holds
    it, and none can start on it while it goes."""
    import fcntl

    cutoff = time.time() - PRUNE_AFTER
    for lock in folder.glob("worker-*.lock"):
        if lock == keep:
            continue
        files = [lock, lock.with_suffix(".log"), lock.with_suffix(".sock")]
        try:
            if max((f.stat().st_mtime for f in files if f.exists()), default=0) > cutoff:
                continue
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            for f in files:
                f.unlink(missing_ok=True)
        except OSError:
            pass  # held: a worker lives
        finally:
            os.close(fd)


def _error(message: str) -> proto.Message:
    return {"t": "error", "message": message, "code": 1, "traceback": None}


def _reply_and_close(conn: socket.socket, message: proto.Message) -> None:
    """Send one message, then close once the client has had it: the unread rest of its
    request is drained first (bounded), as closing on unread data may reset the
    connection before the client reads the reply."""
    try:
        conn.settimeout(2.0)
        conn.sendall(proto.encode(message))
        conn.shutdown(socket.SHUT_WR)
        drained = 0
        while drained < proto.MAX_MESSAGE:
            chunk = conn.recv(65536)
            if not chunk:
                break
            drained += len(chunk)
    except OSError:
        pass
    finally:
        conn.close()


def _same_user(conn: socket.socket) -> bool:
    """Whether the peer runs as this user (Linux's SO_PEERCRED; elsewhere the socket's
    0600 mode in a 0700 folder is the check)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", raw)
    return bool(uid == os.getuid())


def _identity(spec: str | None) -> object:
    """What ``spec`` (a model, reward model) names: a relative path that exists here is
    that file (its absolute path), anything else the text itself."""
    if spec is None:
        return None
    path = Path(spec).expanduser()
    try:
        if not path.is_absolute() and path.exists():
            return ("path", str(path.resolve()))
    except OSError:
        pass
    return spec


def _relay_warnings(job: Job) -> Callable[..., None]:
    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        try:
            job.send({"t": "warning", "text": str(message), "category": category.__name__})
        except Abandoned:
            pass

    return show


def _close(thing: object) -> None:
    close = getattr(thing, "close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:  # a cache being let go: the worker goes on
            print(f"webqa worker: closing {thing!r} failed: {exc}", file=sys.stderr)


def _empty_log() -> None:
    """Empty the log (this process's stderr, opened for appending) at the start."""
    try:
        os.ftruncate(2, 0)
    except OSError:
        pass


def _bound_log() -> None:
    try:
        if os.fstat(2).st_size > LOG_LIMIT:
            os.ftruncate(2, 0)
            print(f"(log emptied at {LOG_LIMIT:,} bytes, {_now()})", file=sys.stderr)
    except OSError:
        pass


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def main(argv: list[str]) -> int:
    """``worker_server SOCKET KEEP_ALIVE`` (started by ``webqa.frontend.worker.spawn``)."""
    if len(argv) != 2:
        print("usage: worker_server SOCKET KEEP_ALIVE_SECONDS", file=sys.stderr)
        return 2
    try:
        seconds = float(argv[1])
    except ValueError:
        print(f"worker_server: bad keep-alive {argv[1]!r}", file=sys.stderr)
        return 2
    try:
        return Worker(Path(argv[0]), seconds).serve()
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
