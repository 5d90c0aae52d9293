"""`db upgrade` and `db copy SRC DST`: the database's schema, and moving a store between
SQLite and PostgreSQL; `backup PATH` and `restore PATH`."""

from __future__ import annotations

import argparse
from pathlib import Path

from aggregator.cli.common import EXIT_OK
from aggregator.config.load import load
from aggregator.errors import StoreError
from aggregator.model import database_at
from aggregator.storage import (
    backup,
    database_exists,
    describe,
    open_store,
    restore,
    writer_lock,
)


def cmd_db_upgrade(args: argparse.Namespace, path: Path) -> int:
    """Migrate the config's database to the newest schema now, rather than on first use
    (several nodes: once, under the migration lock; see storage/postgres/store.py)."""
    config = load(path)
    database = config.settings.database
    with writer_lock(database):
        store = open_store(database)
        try:
            version = store.schema_version()
        finally:
            store.close()
    print(f"database {describe(database)}: schema {version}, the newest this version knows")
    return EXIT_OK


def cmd_db_copy(args: argparse.Namespace, path: Path) -> int:
    """Every item, story, tombstone and source state of SRC into DST (new or empty)."""
    from aggregator.storage.copy import copy

    src, dst = database_at(Path.cwd(), args.src), database_at(Path.cwd(), args.dst)
    if not database_exists(src):
        raise StoreError(f"database {src} does not exist")
    with writer_lock(src), writer_lock(dst):  # no daemon writes to either meanwhile
        source, target = open_store(src), open_store(dst)
        try:
            counts = copy(source, target)  # type: ignore[arg-type]
        finally:
            source.close()
            target.close()
    print(
        f"copied {counts['items']:,} items, {counts['sources']:,} sources' state and "
        f"{counts['tombstones']:,} tombstones from {describe(src)} to {describe(dst)}"
    )
    return EXIT_OK


def cmd_backup(args: argparse.Namespace, path: Path) -> int:
    """A consistent copy of the config's database at PATH, while a daemon runs or not."""
    config = load(path)
    database, target = config.settings.database, Path(args.path)
    if not database_exists(database):
        raise StoreError(f"database {describe(database)} does not exist: nothing to back up")
    held = backup(database, target)
    size = target.stat().st_size / 1e6
    print(f"backed up {describe(database)} to {target} ({size:.1f} MB: {held})")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, path: Path) -> int:
    """The config's database replaced by the backup at PATH; refused while a daemon (or a
    `run --once`) holds the database."""
    config = load(path)
    database, source = config.settings.database, Path(args.path)
    if not source.is_file():
        raise StoreError(f"backup {source} does not exist")
    with writer_lock(database):
        did = restore(database, source)
        store = open_store(database)  # migrated now if the backup is of an older schema
        try:  # what each node's files showed was the replaced store: publish again
            with store.transaction():
                for key in store.metas("output:"):
                    store.forget_meta(key)
        finally:
            store.close()
    print(f"restored {describe(database)} from {source} ({did}); `run --once` publishes it")
    return EXIT_OK
