"""`aggregator db copy SRC DST`: every row of one store into another, SQLite or PostgreSQL
either way. Both backends keep the same tables and columns (storage/postgres/schema.py), so
rows move as they are: items keep their rowids, which the near-duplicate keys refer to, and
pruned items' tombstones, sources' validators and schedules come along; nothing is pulled
again and no item comes back as new."""

from __future__ import annotations

import itertools

from aggregator.errors import StoreError
from aggregator.storage.sqlite.store import Store

# in this order; `items` with its rowid, which SQLite keeps out of `*`
TABLES = ("meta", "sources", "items", "tombstones", "near_keys", "requests")
CHUNK = 1000
_BACKEND_META = frozenset({"schema"})  # PostgreSQL's schema version: each keeps its own


def _columns(store: Store, table: str) -> list[str]:
    cursor = store.db.execute(f"SELECT * FROM {table} LIMIT 0")
    names = [d[0] for d in cursor.description]
    if table == "items" and "rowid" not in names:
        names.insert(0, "rowid")
    return names


def copy(src: Store, dst: Store) -> dict[str, int]:
    """Copy every row of `src` into `dst`, which must hold no source and no item: one
    transaction, so a copy that fails leaves `dst` as it was. Returns rows per table."""
    for table in ("items", "sources"):
        if dst.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
            raise StoreError(f"database {dst.path} already holds {table}: copy into a new one")
    counts: dict[str, int] = {}
    with dst.transaction():
        for table in TABLES:
            wanted = _columns(dst, table)
            have = set(_columns(src, table))
            columns = [c for c in wanted if c in have]
            listed = ", ".join(columns)
            verb = "INSERT OR REPLACE" if table == "meta" else "INSERT"
            insert = f"{verb} INTO {table}({listed}) VALUES ({', '.join('?' * len(columns))})"
            rows = (
                tuple(r)
                for r in src.db.execute(f"SELECT {listed} FROM {table}")
                if table != "meta" or r[0] not in _BACKEND_META
            )
            counts[table] = 0
            while chunk := list(itertools.islice(rows, CHUNK)):  # SQLite's rows: streamed
                dst.db.executemany(insert, chunk)
                counts[table] += len(chunk)
        dst.after_copy()
    return counts
