"""What every SQLite file webqa keeps (the log, the fetch cache) needs on opening."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # SQLite's primary result codes for "someone has it"


def error_code(error: BaseException) -> int | None:
    """SQLite's primary result code behind ``error``; None if it has none."""
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch ``conn``'s file to WAL, so readers and one writer go side by side. Switching
    needs the file to itself and SQLite's busy timeout does not cover it, so a new file
    opened by several threads or processes at once retries here for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if error_code(error) not in (SQLITE_BUSY, SQLITE_LOCKED):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A transaction that holds the write lock from its start (``BEGIN IMMEDIATE``, so
    what it reads cannot change under it): committed when the block ends, rolled back
    if it raises. ``conn`` must be in autocommit mode (``isolation_level=None``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the failure already ended the transaction, or the connection
        raise
    conn.execute("COMMIT")
