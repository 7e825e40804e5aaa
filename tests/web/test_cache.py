"""The on-disk cache: expiry, kinds, threads and processes sharing one file."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from webqa.web.cache import Cache


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_default_path_is_in_the_data_dir(webqa_home: Path) -> None:
    with Cache() as cache:
        assert cache.path == webqa_home / "cache.sqlite3"
        assert cache.path.exists()


def test_put_get_text_and_bytes(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        cache.put("page", "http://a/", "héllo", ttl=60)
        cache.put("blob", "k", b"\x00\xff", ttl=60)
        assert cache.get("page", "http://a/") == "héllo"
        assert cache.get("blob", "k") == b"\x00\xff"
        assert cache.get("page", "http://b/") is None
        assert cache.get("search", "http://a/") is None  # kinds are separate


def test_overwrite_and_delete(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        cache.put("page", "k", "one", ttl=60)
        cache.put("page", "k", "two", ttl=60)
        assert cache.get("page", "k") == "two"
        assert len(cache) == 1
        cache.delete("page", "k")
        assert cache.get("page", "k") is None


def test_entries_expire_and_purge(tmp_path: Path) -> None:
    clock = Clock()
    with Cache(tmp_path / "c.db", clock=clock) as cache:
        cache.put("page", "short", "s", ttl=10)
        cache.put("page", "long", "l", ttl=100)
        clock.now += 9.9
        assert cache.get("page", "short") == "s"
        clock.now += 0.1
        assert cache.get("page", "short") is None
        assert cache.get("page", "long") == "l"
        assert len(cache) == 2
        assert cache.purge_expired() == 1
        assert len(cache) == 1
        cache.clear()
        assert len(cache) == 0


def test_uses_wal(tmp_path: Path) -> None:
    import sqlite3

    Cache(tmp_path / "c.db").close()
    with sqlite3.connect(tmp_path / "c.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_threads_share_one_cache(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.db")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                cache.put("page", f"{n}-{i}", f"value {n} {i}", ttl=60)
                assert cache.get("page", f"{n}-{i}") == f"value {n} {i}"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) == 400
    cache.close()


WRITER = """
import sys
from webqa.web.cache import Cache
cache = Cache(sys.argv[1])
for i in range(200):
    cache.put("page", f"{sys.argv[2]}-{i}", "x" * 100, ttl=60)
    cache.get("page", f"{sys.argv[2]}-{i // 2}")
"""


def test_processes_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    Cache(path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, path, str(n)], stderr=subprocess.PIPE)
        for n in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    with Cache(path) as cache:
        assert len(cache) == 600
        assert cache.get("page", "2-199") == "x" * 100
