"""Where items, stories and sources' state are kept, behind one port.

    port.py     `Storage`, the Protocol every backend implements
    keyindex.py the near-duplicate keys of stored items, searched in memory (numpy)
    sqlite/     the embedded backend (WAL, migrations, the writer's lock file)

Storage keeps what dedupe decides and never decides: nothing here imports dedupe.

Callers type against `Storage` and open a store with `open_store`; what a backend must do
is written down as `tests/test_storage_contract.py`, which runs against each of them.
"""

from __future__ import annotations

from pathlib import Path

from aggregator.storage.port import Storage

__all__ = ["DRIVER_ERRORS", "Storage", "open_store"]


def open_store(database: Path) -> Storage:
    """The store at `database` (a SQLite file; created, or migrated, on first use)."""
    from aggregator.storage.sqlite import Store

    return Store(database)


def driver_errors() -> tuple[type[Exception], ...]:
    """The database drivers' own error classes, which the commands report in one line."""
    import sqlite3

    return (sqlite3.Error,)


DRIVER_ERRORS = driver_errors()
