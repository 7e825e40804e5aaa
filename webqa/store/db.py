"""The log's database: where it lives, its schema and a connection to it.

The schema is an append-only list of migrations, applied in order and counted in
``PRAGMA user_version``. Every call opens its own connection (WAL, a busy timeout), so
threads and processes (shards of one batch) can log side by side. A log that cannot be
opened, or is from a newer webqa, is a ``StoreError`` naming its file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from webqa.errors import WebQAError, os_reason
from webqa.paths import data_dir
from webqa.sqlitedb import use_wal, write_transaction

DB_NAME = "webqa.sqlite3"

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        created REAL NOT NULL,           -- unix time the question was started
        question TEXT NOT NULL,
        qid TEXT,                        -- the question's id in its batch, if any
        batch TEXT,                      -- the batch's output file, if any
        model TEXT,
        web TEXT,
        n INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        temperature REAL NOT NULL,
        answer TEXT,                     -- the chosen answer (NULL when it failed)
        best INTEGER,
        seconds REAL NOT NULL,
        error TEXT                       -- why it failed (NULL when it did not)
    );
    CREATE INDEX runs_created ON runs (created);
    CREATE TABLE episodes (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        idx INTEGER NOT NULL,            -- candidate number within the run
        chosen INTEGER NOT NULL,         -- 1 for the answer best-of-n returned
        answer TEXT NOT NULL,
        score REAL,                      -- reward score (NULL when n = 1)
        end_reason TEXT NOT NULL,
        removed_citations INTEGER NOT NULL,
        invalid_actions INTEGER NOT NULL,
        seconds REAL NOT NULL
    );
    CREATE INDEX episodes_run ON episodes (run_id);
    CREATE TABLE steps (
        episode_id INTEGER NOT NULL REFERENCES episodes (id),
        idx INTEGER NOT NULL,
        command TEXT NOT NULL,
        valid INTEGER NOT NULL,
        message TEXT NOT NULL,
        prompt TEXT NOT NULL,            -- the observation the model answered to
        PRIMARY KEY (episode_id, idx)
    );
    CREATE TABLE quotes (
        episode_id INTEGER NOT NULL REFERENCES episodes (id),
        n INTEGER NOT NULL,
        title TEXT NOT NULL,
        url TEXT NOT NULL,
        extract TEXT NOT NULL,
        PRIMARY KEY (episode_id, n)
    );
    CREATE TABLE visits (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        idx INTEGER NOT NULL,
        kind TEXT NOT NULL,              -- "search" | "fetch"
        target TEXT NOT NULL,            -- the query or the URL
        ok INTEGER NOT NULL,
        error TEXT,
        PRIMARY KEY (run_id, idx)
    );
    """,
    # 2: people's comparisons of two answers (``webqa compare``), and which reward model
    # scored a run's candidates
    """
    CREATE TABLE comparisons (
        id INTEGER PRIMARY KEY,
        created REAL NOT NULL,           -- unix time it was judged (or imported)
        question TEXT NOT NULL,
        episode_0 INTEGER REFERENCES episodes (id),  -- NULL when imported
        episode_1 INTEGER REFERENCES episodes (id),
        quotes_0 TEXT NOT NULL,          -- JSON list of {"title", "url", "text"}
        answer_0 TEXT NOT NULL,
        quotes_1 TEXT NOT NULL,
        answer_1 TEXT NOT NULL,
        score_0 REAL NOT NULL CHECK (score_0 BETWEEN -1 AND 1),  -- 1: answer 0 better,
                                         -- -1: answer 1 better, 0: a tie
        note TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL             -- who judged: "person", "import", "bootstrap", ...
    );
    CREATE INDEX comparisons_episodes ON comparisons (episode_0, episode_1);
    ALTER TABLE runs ADD COLUMN reward_model TEXT;  -- NULL when n = 1
    """,
)


class StoreError(WebQAError):
    """The log database is unreadable, from a newer webqa, or lacks the asked-for row."""


BUSY_TIMEOUT = 30.0  # seconds a connection waits for another writer


def db_path() -> Path:
    """Where the log lives: ``webqa.sqlite3`` in the data directory."""
    return data_dir() / DB_NAME


def resolve(path: Path | None) -> Path:
    """``path``, else the default log; StoreError if the data directory cannot be made."""
    if path is not None:
        return path
    try:
        return db_path()
    except OSError as error:
        raise StoreError(f"the data directory for the log cannot be used: {error}") from error


def connect(
    path: Path | None = None, *, migrations: Sequence[str] = MIGRATIONS
) -> sqlite3.Connection:
    """A connection to the log, its schema brought up to date."""
    path = resolve(path)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        use_wal(conn, BUSY_TIMEOUT)
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, migrations)
    except BaseException as error:
        if conn is not None:
            conn.close()
        if isinstance(error, (sqlite3.Error, OSError)):
            raise StoreError(f"the log {path} is unreadable: {os_reason(error)}") from error
        raise
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Apply the migrations ``conn`` has not seen, in order, atomically; the new version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == len(migrations):
        return version
    with write_transaction(conn):  # another process may be migrating too: re-read
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(migrations):
            raise StoreError(
                f"the log has schema version {version}, newer than this webqa knows "
                f"({len(migrations)}); upgrade webqa"
            )
        for number in range(version, len(migrations)):
            for statement in _statements(migrations[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
    return len(migrations)


def _statements(script: str) -> list[str]:
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out
