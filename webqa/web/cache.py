"""An on-disk cache of fetched pages and search results, in one SQLite file.

Entries are keyed by ``(kind, key)`` (e.g. ``("page", url)``, ``("search", query)``),
hold ``str`` or ``bytes`` and expire after their own TTL. The file uses WAL mode and a
busy timeout, so several processes can share it; one connection per ``Cache`` guarded
by a lock, so several threads can share a ``Cache``.

The cache is bounded in age and size. No entry is kept longer than ``max_age`` (a longer
TTL is cut to it), and expired entries are deleted when the cache is opened and every
``EVICT_EVERY`` writes. The values may take at most ``max_bytes``: once a write takes
them over (as far as this process can tell, and at every check), the entries that would
expire soonest are deleted until they are back under nine tenths of it. SQLite reuses the
pages freed, so the file stays about that size.

A cache only saves time, so a broken one never stops an answer. A file that is not a
cache (garbage, corrupt pages, a folder, another program's tables) is set aside, renamed
to ``<name>.broken-<time>`` so nothing is lost, and a new cache is started in its place.
A cache that cannot be used as it stands (locked by another process for longer than
``BUSY_TIMEOUT``, read-only, on a full disk, in a folder that cannot be made) is left
alone and this ``Cache`` runs without it: lookups miss, stores do nothing. Either way one
``CacheWarning`` says so, once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from webqa.paths import data_dir
from webqa.sqlitedb import SQLITE_BUSY, SQLITE_LOCKED, error_code, use_wal, write_transaction

PAGE_TTL = 24 * 3600.0  # seconds a fetched page stays fresh
SEARCH_TTL = 3600.0  # seconds a search result list stays fresh
BUSY_TIMEOUT = 2.0  # seconds to wait for another process's lock before going without
MAX_AGE = 7 * 24 * 3600.0  # seconds an entry may be kept, whatever TTL it was given
MAX_BYTES = 256 * 1024 * 1024  # bytes of values the cache may hold
EVICT_EVERY = 100  # writes between two deletions of expired entries

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    is_text INTEGER NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires);
"""

# SQLite's primary result codes that mean "this file is not a (healthy) cache"
_SQLITE_ERROR, _SQLITE_CORRUPT, _SQLITE_NOTADB = 1, 11, 26
_SQLITE_READONLY = 8  # and one that means "this file cannot be written"

T = TypeVar("T")


class CacheWarning(UserWarning):
    """The cache could not be used as it was; webqa carried on (the message says how)."""


class Cache:
    """A thread-safe, process-safe key-value cache with per-entry expiry.

    ``path`` defaults to ``data_dir()/cache.sqlite3``; ``clock`` (seconds since the
    epoch) is there for tests; ``timeout`` is how long to wait for another process's lock;
    ``max_age`` (seconds) and ``max_bytes`` bound the entries (see the module).
    ``broken`` says why the cache is off (None while it works); ``set_aside`` is where a
    damaged file was moved.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = BUSY_TIMEOUT,
        max_age: float = MAX_AGE,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._clock = clock
        self._timeout = timeout
        self.max_age = max_age
        self.max_bytes = max_bytes
        self._writes = 0  # writes since the last eviction
        self._bytes = 0  # the values' size at the last eviction, plus what was written since
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.broken: str | None = None
        self.set_aside: Path | None = None
        if path is not None:
            self.path = Path(path)
        else:
            try:
                self.path = data_dir() / "cache.sqlite3"
            except OSError as error:
                self.path = Path("cache.sqlite3")
                self._go_without(self._reason(error))
                return
        with self._lock:
            try:
                self._db = self._open()
            except (sqlite3.Error, OSError) as error:
                self._recover(error)
        self._run(self._evict, None)

    # -- the entries ------------------------------------------------------------------

    def get(self, kind: str, key: str) -> str | bytes | None:
        """The stored value, or None if absent, expired or unreadable."""
        row = self._run(
            lambda db: db.execute(
                "SELECT value, is_text FROM entries WHERE kind = ? AND key = ? AND expires > ?",
                (kind, key, self._clock()),
            ).fetchone(),
            None,
        )
        if row is None:
            return None
        value, is_text = row
        if not isinstance(value, (bytes, str)):  # a row some other program wrote
            self.delete(kind, key)
            return None
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if not is_text:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.delete(kind, key)
            return None

    def get_json(self, kind: str, key: str) -> Any:
        """The stored text parsed as JSON, or None if absent, expired or not JSON (such an
        entry is forgotten, so the caller fetches afresh and stores a good one)."""
        text = self.get(kind, key)
        if not isinstance(text, str):
            return None
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            self.delete(kind, key)
            return None

    def put(self, kind: str, key: str, value: str | bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any earlier entry."""
        is_text = isinstance(value, str)
        try:
            blob = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        except UnicodeEncodeError:  # lone surrogates: not worth keeping
            return
        expires = self._clock() + min(ttl, self.max_age)

        def store(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO entries (kind, key, value, is_text, expires)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind, key, blob, int(is_text), expires),
            )
            self._writes += 1
            self._bytes += len(blob)
            if self._writes >= EVICT_EVERY or self._bytes > self.max_bytes:
                self._evict(db)

        self._run(store, None)

    def delete(self, kind: str, key: str) -> None:
        """Forget one entry (no error if it is absent)."""
        self._run(
            lambda db: db.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key)),
            None,
        )

    def purge_expired(self) -> int:
        """Delete every expired entry; returns how many were deleted."""
        return self._run(
            lambda db: (
                db.execute("DELETE FROM entries WHERE expires <= ?", (self._clock(),)).rowcount
            ),
            0,
        )

    def _evict(self, db: sqlite3.Connection) -> None:
        """Delete the expired entries, then, if the values take more than ``max_bytes``,
        those that would expire soonest until they take at most nine tenths of it. Only
        looks (no write lock, nothing written) when there is nothing to delete."""
        if not self._over_bounds(db):
            return
        with write_transaction(db):
            db.execute("DELETE FROM entries WHERE expires <= ?", (self._clock(),))
            total = self._size(db)
            if total > self.max_bytes:
                excess = total - self.max_bytes * 9 // 10
                doomed = []
                with closing(
                    db.execute("SELECT rowid, LENGTH(value) FROM entries ORDER BY expires, rowid")
                ) as rows:
                    for rowid, size in rows:
                        if excess <= 0:
                            break
                        doomed.append((rowid,))
                        excess -= size
                        total -= size
                db.executemany("DELETE FROM entries WHERE rowid = ?", doomed)
        self._writes, self._bytes = 0, total

    def _over_bounds(self, db: sqlite3.Connection) -> bool:
        """Whether an entry has expired or the values take more than ``max_bytes``; resets
        the write count and size estimate when neither."""
        expired = db.execute(
            "SELECT 1 FROM entries WHERE expires <= ? LIMIT 1", (self._clock(),)
        ).fetchone()
        total = self._size(db)
        if expired is None and total <= self.max_bytes:
            self._writes, self._bytes = 0, total
            return False
        return True

    @staticmethod
    def _size(db: sqlite3.Connection) -> int:
        """The bytes the values take (SQLite reads a value's length without the value)."""
        return int(db.execute("SELECT TOTAL(LENGTH(value)) FROM entries").fetchone()[0])

    def clear(self) -> None:
        """Delete every entry."""
        self._run(lambda db: db.execute("DELETE FROM entries"), None)

    def __len__(self) -> int:
        """How many entries are stored, expired ones included until purged."""
        return int(
            self._run(lambda db: db.execute("SELECT COUNT(*) FROM entries").fetchone()[0], 0)
        )

    def close(self) -> None:
        with self._lock:
            self._close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- keeping it usable ------------------------------------------------------------

    def _run(self, action: Callable[[sqlite3.Connection], T], default: T) -> T:
        """``action`` on the connection; on failure recover (see the module) and ``default``."""
        with self._lock:
            if self._db is None:
                return default
            try:
                return action(self._db)
            except sqlite3.Error as error:
                self._recover(error)
                return default

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path} is a directory")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            use_wal(db, self._timeout)
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("SELECT kind, key, value, is_text, expires FROM entries LIMIT 0")
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, error: BaseException) -> None:
        """Called with the lock held after ``error``: set a damaged file aside and start
        afresh (once per ``Cache``), else go without a cache."""
        self._close()
        why = self._reason(error)
        if not _damaged(error) or self.set_aside is not None:
            self._go_without(why)
            return
        moved = _move_aside(self.path)
        if moved is None:
            self._go_without(f"{why}, and it could not be moved aside")
            return
        self.set_aside = moved
        try:
            self._db = self._open()
        except (sqlite3.Error, OSError) as again:
            self._go_without(f"{why}; moved it to {moved}, then {self._reason(again)}")
            return
        warnings.warn(
            f"the fetch cache {self.path} is unreadable ({why}); "
            f"moved it to {moved} and started a new one",
            CacheWarning,
            stacklevel=2,
        )

    def _go_without(self, why: str) -> None:
        self._close()
        self.broken = why
        warnings.warn(
            f"the fetch cache {self.path} cannot be used: {why}; running without it",
            CacheWarning,
            stacklevel=2,
        )

    def _reason(self, error: BaseException) -> str:
        code = error_code(error)
        if code in (SQLITE_BUSY, SQLITE_LOCKED):
            return f"it is locked by another process (waited {self._timeout:g} s)"
        if code == _SQLITE_READONLY:
            return "it is read-only"
        if isinstance(error, IsADirectoryError):
            return "it is a directory"
        if isinstance(error, OSError) and error.strerror:
            return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
        return str(error) or type(error).__name__

    def _close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None


def _damaged(error: BaseException) -> bool:
    """Whether ``error`` says the file is not a healthy cache (rather than busy, read-only,
    out of space: conditions that pass and whose file must be left where it is)."""
    return isinstance(error, IsADirectoryError) or error_code(error) in (
        _SQLITE_ERROR,  # e.g. another program's table of the same name: not our cache
        _SQLITE_CORRUPT,
        _SQLITE_NOTADB,
    )


def _move_aside(path: Path) -> Path | None:
    """Rename ``path`` (and its WAL files) to ``<name>.broken-<time>``; None if it cannot."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.broken-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.broken-{stamp}-{number}")
    try:
        path.rename(target)
    except OSError:
        return None
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        try:
            side.rename(target.with_name(target.name + suffix))
        except OSError:
            pass  # absent, most often
    return target
