"""The on-disk cache: expiry, kinds, threads and processes sharing one file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import closing
from pathlib import Path

import pytest

from tests.web.server import FixtureServer
from webqa.web.cache import BUSY_TIMEOUT, EVICT_EVERY, Cache, CacheWarning
from webqa.web.fetch import Fetcher


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


def _rows(path: Path) -> list[tuple[str, int]]:
    """The keys and value sizes in the file, whatever the cache would serve."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT key, LENGTH(value) FROM entries ORDER BY key").fetchall()


def test_expired_entries_leave_the_file_on_opening_and_every_few_writes(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    clock = Clock()
    with Cache(path, clock=clock) as cache:
        for i in range(3):
            cache.put("page", f"old{i}", "x", ttl=10)
    clock.now += 10
    with Cache(path, clock=clock) as cache:  # opening deletes what has expired
        assert _rows(path) == []
        cache.put("page", "soon", "x", ttl=10)
        clock.now += 10
        for i in range(EVICT_EVERY - 2):
            cache.put("search", f"q{i:03}", "x", ttl=1000)
        assert ("soon", 1) in _rows(path)  # not yet: writes are counted
        cache.put("search", "last", "x", ttl=1000)
        assert ("soon", 1) not in _rows(path)
        assert len(_rows(path)) == EVICT_EVERY - 1


def test_no_entry_is_kept_longer_than_max_age(tmp_path: Path) -> None:
    clock = Clock()
    with Cache(tmp_path / "c.db", clock=clock, max_age=50) as cache:
        cache.put("page", "k", "v", ttl=10**9)
        clock.now += 49.9
        assert cache.get("page", "k") == "v"
        clock.now += 0.1
        assert cache.get("page", "k") is None


def test_the_values_never_take_more_than_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with Cache(path, max_bytes=10_000) as cache:
        cache.put("page", "keep", b"k" * 1000, ttl=10_000)  # expires last of all
        for i in range(40):
            cache.put("page", f"p{i:02}", b"x" * 1000, ttl=100 + i)
            sizes = dict(_rows(path))
            assert sum(sizes.values()) <= 10_000
            assert f"p{i:02}" in sizes and "keep" in sizes  # the newest write stays
        survivors = sorted(k for k in sizes if k != "keep")
        assert survivors == [f"p{i:02}" for i in range(40 - len(survivors), 40)]
        assert len(survivors) >= 8  # evicted to nine tenths, not to nothing
        assert cache.get("page", "p39") == b"x" * 1000
        assert cache.get("page", "p00") is None  # the soonest to expire went first


def test_a_cache_over_its_bound_is_cut_back_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with Cache(path) as cache:
        for i in range(20):
            cache.put("page", f"p{i:02}", b"x" * 1000, ttl=100 + i)
    with Cache(path, max_bytes=5_000):
        assert [k for k, _ in _rows(path)] == [f"p{i:02}" for i in range(16, 20)]


def test_uses_wal(tmp_path: Path) -> None:
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


# -- a broken cache never stops an answer (issue 11, case 14) --------------------------


def _corrupt_pages(path: Path) -> bytes:
    """A real cache file whose table pages are overwritten: the header still reads."""
    with Cache(path) as cache:
        for i in range(300):
            cache.put("page", f"http://a/{i}", "x" * 300, ttl=60)
    data = bytearray(path.read_bytes())
    for offset in range(2 * 4096, len(data), 4096):
        data[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    return bytes(data)


def _works(cache: Cache) -> None:
    cache.put("page", "http://new/", "fresh", ttl=60)
    assert cache.get("page", "http://new/") == "fresh"


def _set_aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.broken-*"))


def test_a_garbage_file_is_set_aside_once_and_a_new_cache_started(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    garbage = b"this is not a database\n" * 400
    path.write_bytes(garbage)
    with pytest.warns(CacheWarning) as warned, Cache(path) as cache:
        _works(cache)
    assert len(warned) == 1
    message = str(warned[0].message)
    [aside] = _set_aside(path)
    assert f"the fetch cache {path} is unreadable (file is not a database)" in message
    assert f"moved it to {aside}" in message
    assert aside.read_bytes() == garbage  # nothing lost
    with Cache(path) as again:  # the new one is healthy: no warning the second time
        assert again.get("page", "http://new/") == "fresh"


def test_corrupt_pages_found_while_reading_set_the_cache_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    corrupt = _corrupt_pages(path)
    with pytest.warns(CacheWarning, match="database disk image is malformed") as warned:
        with Cache(path) as cache:
            assert cache.get("page", "http://a/250") is None  # a miss, not an exception
            _works(cache)
            assert cache.get("page", "http://a/251") is None
    assert len(warned) == 1
    [aside] = _set_aside(path)
    assert aside.read_bytes() == corrupt


def test_a_directory_in_the_caches_place_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    (path / "inner").mkdir(parents=True)
    with pytest.warns(CacheWarning, match="is a directory") as warned, Cache(path) as cache:
        _works(cache)
    assert len(warned) == 1
    [aside] = _set_aside(path)
    assert (aside / "inner").is_dir()


def test_a_locked_cache_is_skipped_after_a_short_wait(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)  # an old-style (not WAL) file
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # another process holding it
    try:
        started = time.monotonic()
        with pytest.warns(CacheWarning, match="is locked") as warned, Cache(path) as cache:
            cache.put("page", "k", "v", ttl=60)  # no-ops: no more waiting, no exception
            assert cache.get("page", "k") is None
            assert len(cache) == 0
        assert time.monotonic() - started < BUSY_TIMEOUT + 2.0  # was 30 s, then a traceback
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(warned) == 1
    assert _set_aside(path) == []  # a lock is not damage: the file stays where it is
    with Cache(path) as cache:
        _works(cache)


def test_a_write_lock_held_while_running_turns_the_cache_off_once(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    with Cache(path) as cache:
        cache.put("page", "old", "kept", ttl=60)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.warns(CacheWarning, match="is locked") as warned:
                cache.put("page", "k", "v", ttl=60)
                cache.put("page", "k2", "v", ttl=60)  # off now: no second wait
                assert cache.get("page", "old") is None
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert len(warned) == 1


def test_a_read_only_cache_is_used_without_writing(tmp_path: Path) -> None:
    """Run as a user that cannot write the file (root drops to nobody in a fork)."""
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        path = folder / "cache.sqlite3"
        with Cache(path) as cache:
            cache.put("page", "old", "kept", ttl=60)
        path.chmod(0o444)
        folder.chmod(0o555)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: no pytest machinery, report through the pipe
            os.close(read)
            report = "ok"
            try:
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    with Cache(path) as cache:
                        cache.put("page", "k", "v", ttl=60)
                        cache.put("page", "k2", "v", ttl=60)
                        hit = cache.get("page", "k")
                messages = [str(w.message) for w in caught]
                if hit is not None or len(messages) != 1 or "read-only" not in messages[0]:
                    report = f"hit={hit!r} warnings={messages!r}"
            except BaseException as error:  # noqa: BLE001 (reported to the parent)
                report = f"{type(error).__name__}: {error}"
            os.write(write, report.encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            report = pipe.read().decode()
        os.waitpid(pid, 0)
        assert report == "ok"
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_a_broken_cache_never_stops_a_fetch(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(b"\x00garbage" * 1000)
    with FixtureServer() as server:
        server.page("/p", "<title>Fine</title><p>still answered</p>")
        with pytest.warns(CacheWarning), Cache(path) as cache:
            with Fetcher(allow_private=True, cache=cache, timeout=5) as fetcher:
                doc = fetcher.fetch(server.url("/p"))
                again = fetcher.fetch(server.url("/p"))
    assert "still answered" in doc.body and again.body == doc.body
    assert server.hits["/p"] == 1  # the new cache served the second fetch


def test_an_unusable_cache_folder_means_no_cache_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.warns(CacheWarning, match="running without it") as warned:
        with Cache(blocker / "cache.sqlite3") as cache:
            cache.put("page", "k", "v", ttl=60)
            assert cache.get("page", "k") is None
            assert cache.purge_expired() == 0
            cache.clear()
    assert len(warned) == 1
    assert blocker.read_text(encoding="utf-8") == "x"


def test_a_foreign_value_in_a_row_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    with Cache(path) as cache:
        cache.put("page", "k", "v", ttl=60)
    with sqlite3.connect(path) as db:  # rows written by something else
        db.execute("UPDATE entries SET value = ?, is_text = 1", (b"\xff\xfe",))
        db.execute(
            "INSERT INTO entries VALUES ('page', 'big', 1000000000000, 0, 1e300)"
        )  # bytes(10**12) would try to allocate a terabyte
    with Cache(path) as cache:
        assert cache.get("page", "k") is None
        assert cache.get("page", "big") is None
        assert cache.get_json("page", "k") is None


def test_get_json_decodes_and_forgets_what_does_not_decode(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        cache.put("search", "good", '{"a": [1]}', ttl=60)
        cache.put("search", "bad", '{"a": [1', ttl=60)
        cache.put("search", "deep", "[" * 100_000 + "]" * 100_000, ttl=60)
        assert cache.get_json("search", "good") == {"a": [1]}
        assert cache.get_json("search", "bad") is None
        assert cache.get_json("search", "deep") is None
        assert cache.get("search", "bad") is None  # forgotten
        assert cache.get_json("search", "absent") is None
