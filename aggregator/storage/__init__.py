"""Where items, stories and sources' state are kept, behind one port.

    port.py     `Storage`, the Protocol every backend implements
    keyindex.py the near-duplicate keys of stored items, searched in memory (numpy)
    sqlite/     the embedded backend (WAL, migrations, the writer's lock file)
    postgres/   the shared backend: the same queries on PostgreSQL (psycopg 3)

Storage keeps what dedupe decides and never decides: nothing here imports dedupe.

Callers type against `Storage` and open a store with `open_store`; what a backend must do
is written down as `tests/test_storage_contract.py`, which runs against each of them.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import cast

from aggregator.model import is_database_url
from aggregator.storage.port import Leasing, Storage

__all__ = [
    "Leasing",
    "Storage",
    "backup",
    "database_exists",
    "describe",
    "driver_errors",
    "is_url",
    "leasing",
    "open_store",
    "restore",
    "writer_lock",
]

Database = Path | str  # a SQLite file, or a postgresql:// URI


is_url = is_database_url  # a PostgreSQL connection URI, not a SQLite file


def open_store(database: Database) -> Storage:
    """The store at `database`: a SQLite file, or a PostgreSQL database (created, or
    migrated, on first use)."""
    if is_url(database):
        from aggregator.storage.postgres import Store as PgStore

        return PgStore(str(database))
    from aggregator.storage.sqlite import Store

    return Store(Path(database))


def leasing(store: Storage) -> Leasing | None:
    """The store's leases when several nodes may pull into it (PostgreSQL); None when one
    process writes (SQLite, its lock file)."""
    return cast(Leasing, store) if hasattr(store, "claim") else None


def writer_lock(database: Database) -> AbstractContextManager[object]:
    """One writer per database: a lock file beside a SQLite file, an advisory lock on
    PostgreSQL. Raises LockedError when another process holds it."""
    if is_url(database):
        from aggregator.storage.postgres import Lock as PgLock

        return PgLock(str(database))
    from aggregator.storage.sqlite import Lock

    return Lock(Path(database))


def backup(database: Database, path: Path) -> str:
    """A consistent copy of the store at `path`, taken while a daemon writes (SQLite's
    online backup, checked; PostgreSQL's pg_dump). Returns what it holds, said briefly."""
    if is_url(database):
        from aggregator.storage.postgres.backup import backup as pg_backup

        pg_backup(str(database), path)
        return "pg_dump custom format"
    from aggregator.storage.sqlite.backup import backup as sqlite_backup

    items, sources = sqlite_backup(Path(database), path)
    return f"{items:,} items, {sources:,} sources; integrity check ok"


def restore(database: Database, path: Path) -> str:
    """The store's content replaced by the backup at `path`: the caller holds the writer's
    lock (no daemon runs). Returns what it did, said briefly."""
    if is_url(database):
        from aggregator.storage.postgres.backup import restore as pg_restore

        pg_restore(str(database), path)
        return "restored with pg_restore"
    from aggregator.storage.sqlite.backup import restore as sqlite_restore

    items, sources, kept = sqlite_restore(Path(database), path)
    where = f"; the replaced store is kept as {kept}" if kept else ""
    return f"{items:,} items, {sources:,} sources{where}"


def database_exists(database: Database) -> bool:
    """Whether there may be something to read: a SQLite file that exists; a PostgreSQL
    database always (the server says, when it is opened)."""
    return is_url(database) or Path(database).exists()


def describe(database: Database) -> str:
    """The database as messages name it (a URI without its password)."""
    if is_url(database):
        from aggregator.storage.postgres import redact

        return redact(str(database))
    return str(database)


def driver_errors() -> tuple[type[Exception], ...]:
    """The database drivers' own error classes, which the commands report in one line
    (psycopg's once it is loaded: a SQLite install never imports it)."""
    import sqlite3

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    if "psycopg" in sys.modules:
        errors += (sys.modules["psycopg"].Error,)
    return errors
