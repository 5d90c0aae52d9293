"""The shared backend: PostgreSQL, for several machines on one store (issue #18).

Chosen by a libpq URI in `[aggregator] database` ("postgresql://user@host/dbname"); the
password comes from the environment or ~/.pgpass as libpq reads them, never from the file.

    store.py   SQLite's store and queries on a psycopg 3 connection, in PostgreSQL's dialect
    schema.py  the migrations, run once under an advisory lock
    leases.py  sources claimed with leases, a host's fetch slots over every node
    lock.py    the leader's lock (an advisory lock): one node re-tags, prunes, pings
"""

from aggregator.storage.postgres.lock import Leadership, Lock
from aggregator.storage.postgres.schema import MIGRATIONS
from aggregator.storage.postgres.store import Store, redact

__all__ = ["MIGRATIONS", "Leadership", "Lock", "Store", "redact"]
