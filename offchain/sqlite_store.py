"""The SQLite machinery the oracle's store (`offchain/oracle/store.py`) and the provider
worker's (`offchain/provider/store.py`) share: one connection per process opened in WAL mode
with the store's `synchronous` level, its schema created if missing, a `meta` key-value table
(chain cursors, the deployment binding), thread safety and transactions.

Thread safety: one connection (`check_same_thread=False`, autocommit) used by every thread of
the process; every statement runs under one re-entrant lock (`read`, `read_one`, `write`), so a
reader never sees a half-done transaction of another thread and a method that writes may call
one that reads. `transaction()` groups statements into one atomic commit (BEGIN IMMEDIATE ...
COMMIT, rolled back on an exception); nested, it joins the outer one.

Durability (docs/SECURITY.md, "Assumptions"): `synchronous="FULL"` (the oracle: its `signed`
table must not lose a commit, even to a power loss) or `"NORMAL"` (the worker: every commit
survives kill -9; a power loss may drop the last few, and the chain decides those).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

META_SCHEMA = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SqliteStore:
    """Base of a durable store: `path`, the connection, the lock, `meta`, transactions.

    Subclasses set `SCHEMA` (the `meta` table is added) and `SYNCHRONOUS`, or pass them in.
    """

    SCHEMA: str = ""
    SYNCHRONOUS: str = "FULL"

    def __init__(self, path: str | Path, *, schema: str | None = None, synchronous: str | None = None):
        sync = (synchronous or self.SYNCHRONOUS).upper()
        if sync not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {sync!r}")
        self.path = str(path)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() in the thread holding the lock
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync}")
            self._db.executescript(META_SCHEMA + "\n" + (self.SCHEMA if schema is None else schema))
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # statements -----------------------------------------------------------------------
    def read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def read_one(self, sql: str, args: Iterable[Any] = ()) -> tuple | None:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchone()

    def write(self, sql: str, args: Iterable[Any] = ()) -> int:
        """Runs one statement that changes the database; returns its row count."""
        with self._lock:
            return self._db.execute(sql, tuple(args)).rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements of the block (this thread's; others wait) commit together or not at all."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """The block's reads (this thread's; others wait) see one committed state, however
        another connection writes meanwhile (a deferred read transaction, WAL): for a reader that
        must not mix two of a writer's commits. Nested, it joins the outer one."""
        with self._lock:
            if self._depth:
                yield
                return
            self._db.execute("BEGIN DEFERRED")
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                if self._db.in_transaction:
                    self._db.execute("COMMIT")

    # meta (key -> text) -----------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.read_one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def set_metas(self, values: dict[str, str]) -> None:
        """Several meta keys in one commit (a cursor with what goes with it)."""
        with self.transaction():
            for key, value in values.items():
                self.set_meta(key, value)

    def pragma(self, name: str) -> Any:
        """The value of a read-only PRAGMA (e.g. "synchronous": 1 NORMAL, 2 FULL)."""
        if not name.replace("_", "").isalpha():
            raise ValueError(f"not a pragma name: {name!r}")
        row = self.read_one(f"PRAGMA {name}")
        return row[0] if row else None


__all__ = ["META_SCHEMA", "SqliteStore"]
