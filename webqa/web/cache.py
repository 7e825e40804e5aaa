"""An on-disk cache of fetched pages and search results, in one SQLite file.

Entries are keyed by ``(kind, key)`` (e.g. ``("page", url)``, ``("search", query)``),
hold ``str`` or ``bytes`` and expire after their own TTL. The file uses WAL mode and a
busy timeout, so several processes can share it; one connection per ``Cache`` guarded
by a lock, so several threads can share a ``Cache``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from webqa.paths import data_dir

PAGE_TTL = 24 * 3600.0  # seconds a fetched page stays fresh
SEARCH_TTL = 3600.0  # seconds a search result list stays fresh

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


class Cache:
    """A thread-safe, process-safe key-value cache with per-entry expiry.

    ``path`` defaults to ``data_dir()/cache.sqlite3``; ``clock`` (seconds since the
    epoch) is there for tests.
    """

    def __init__(
        self, path: str | Path | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path) if path is not None else data_dir() / "cache.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def get(self, kind: str, key: str) -> str | bytes | None:
        """The stored value, or None if absent or expired."""
        with self._lock:
            row = self._db.execute(
                "SELECT value, is_text FROM entries WHERE kind = ? AND key = ? AND expires > ?",
                (kind, key, self._clock()),
            ).fetchone()
        if row is None:
            return None
        value, is_text = row
        return bytes(value).decode("utf-8") if is_text else bytes(value)

    def put(self, kind: str, key: str, value: str | bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any earlier entry."""
        is_text = isinstance(value, str)
        blob = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO entries (kind, key, value, is_text, expires)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind, key, blob, int(is_text), self._clock() + ttl),
            )

    def delete(self, kind: str, key: str) -> None:
        """Forget one entry (no error if it is absent)."""
        with self._lock:
            self._db.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key))

    def purge_expired(self) -> int:
        """Delete every expired entry; returns how many were deleted."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM entries WHERE expires <= ?", (self._clock(),))
        return cursor.rowcount

    def clear(self) -> None:
        """Delete every entry."""
        with self._lock:
            self._db.execute("DELETE FROM entries")

    def __len__(self) -> int:
        """How many entries are stored, expired ones included until purged."""
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
