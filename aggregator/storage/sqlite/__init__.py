"""The embedded backend: one SQLite file, the only SQL of the program.

SQLite in WAL mode with synchronous=NORMAL: a commit survives the process being killed at
any moment (the WAL is written before COMMIT returns); a power cut may lose the last few
pulls, which the next pass fetches again since their sources still list them. FULL would
fsync at every commit: 6 ms per pulled source here, most of the main process's store time.
A reader (`status`) never blocks the writer. Each source's pull is one transaction, so a
crash leaves either all of a pull or none of it. Pruned items leave tombstones (their
keys), so an old item still listed by its feed never comes back as new.

    store.py   the connection, units of work and grouped commits, meta, sources, requests
    items.py   items, stories, the near-duplicate index, pruning with tombstones
    schema.py  the migrations, numbered by SQLite's user_version
    rows.py    rows <-> the package's values (epoch seconds, JSON columns, light items)
    lock.py    the writer's lock file
"""

from aggregator.errors import StoreError
from aggregator.storage.sqlite.lock import Lock
from aggregator.storage.sqlite.schema import MIGRATIONS
from aggregator.storage.sqlite.store import Store

__all__ = ["MIGRATIONS", "Lock", "Store", "StoreError"]
