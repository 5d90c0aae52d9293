"""Backups of a SQLite store: consistent copies taken while a daemon writes (SQLite's online
backup API reads a snapshot, page by page), checked before they are trusted, and restored
in place with the replaced store kept beside it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

from aggregator.errors import StoreError
from aggregator.storage.sqlite.schema import MIGRATIONS


def _pages(src: sqlite3.Connection, dst: sqlite3.Connection) -> None:
    # 1,024 pages a step: a writer waits at most one step's time for its lock
    src.backup(dst, pages=1024, sleep=0.005)


def backup(database: Path, path: Path) -> tuple[int, int]:
    """A consistent copy of `database` at `path` (replaced only once the copy is whole and
    passes `PRAGMA integrity_check`). Returns (items, sources) in the copy."""
    if not database.exists():
        raise StoreError(f"database {database} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        src = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(tmp)
            try:
                _pages(src, dst)
                dst.execute("PRAGMA journal_mode = DELETE")  # one file, whatever the source's
                counts = _check(dst, tmp)
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(tmp, path)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot back up {database} to {path}: {exc}") from None
    except OSError as exc:
        raise StoreError(f"cannot back up {database} to {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return counts


def restore(database: Path, path: Path) -> tuple[int, int, Path | None]:
    """Replace `database`'s content with the backup at `path`, which must be a whole store
    of a schema this version knows; the replaced store is kept as
    `<database>.replaced-<time>`. The caller holds the writer's lock. Returns (items,
    sources, where the replaced store went)."""
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read backup {path}: {exc}") from None
    try:
        try:
            counts = _check(src, path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not an aggregator backup: {exc}") from None
        kept = None
        if database.exists():  # kept as it is, unchecked: it may be why we restore
            kept = database.with_name(f"{database.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                for suffix in ("", "-wal", "-shm"):
                    part = database.with_name(database.name + suffix)
                    if part.exists():
                        shutil.copy2(part, kept.with_name(kept.name + suffix))
            except OSError as exc:
                raise StoreError(f"cannot keep {database} as {kept}: {exc.strerror}") from None
        try:
            dst = sqlite3.connect(database)
            try:
                _pages(src, dst)
            finally:
                dst.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot restore {path} into {database}: {exc}") from None
    finally:
        src.close()
    return (*counts, kept)


def before_migration(database: Path, version: int) -> Path:
    """The copy taken before migrating a store from schema `version`."""
    kept = database.with_name(f"{database.name}.schema-{version}.bak")
    backup(database, kept)
    return kept


def _check(db: sqlite3.Connection, where: Path) -> tuple[int, int]:
    """(items, sources) of a copy that passes integrity_check and is a store of a schema
    this version knows; StoreError naming `where` otherwise."""
    problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise StoreError(f"{where} fails its integrity check: {'; '.join(problems[:3])}")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if not 0 < version <= len(MIGRATIONS):
        raise StoreError(
            f"{where} is not a store this version knows (schema {version}; "
            f"this version knows 1 to {len(MIGRATIONS)})"
        )
    items = db.execute("SELECT count(*) FROM items").fetchone()[0]
    sources = db.execute("SELECT count(*) FROM sources").fetchone()[0]
    return int(items), int(sources)
