"""The leader's lock on PostgreSQL: of the nodes pulling into one database (each the
sources it leases, leases.py), the one holding it re-tags, prunes and pings the hub, and
`refresh`/`reset` find a daemon to ask through it (`Lock` refuses while one holds it). A
session advisory lock, held on a connection of its own: the server drops it when the
process dies or its connection does."""

from __future__ import annotations

import zlib
from typing import Any

from aggregator.errors import LockedError
from aggregator.storage.postgres.store import connect, redact

WRITER = zlib.crc32(b"aggregator writer")  # pg_try_advisory_lock's key


class Lock:
    def __init__(self, url: str):
        self._conn: Any = connect(url)
        held = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER,)).fetchone()[0]
        if not held:
            self._conn.close()
            raise LockedError(
                f"database {redact(url)} is in use: another `aggregator run` holds its writer lock"
            )

    def release(self) -> None:
        self._conn.close()  # the session ends: its advisory lock goes with it

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Leadership:
    """Which node leads, among several on one database: the one holding the lock. The others
    pull, serve and publish too, and try for the lock every few seconds; when the leader
    dies its session ends, the server drops the lock, and one of them takes over."""

    def __init__(self, url: str):
        self.url = url
        self._conn: Any = None
        self.held = False

    def try_acquire(self) -> bool:
        if self._conn is None or self._conn.closed:  # first, or the server came back
            self._conn = connect(self.url)
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER,)).fetchone()
        self.held = bool(row[0])
        return self.held

    def still_held(self) -> bool:
        """The lock's session is alive (if the connection dropped, the server let the
        lock go and another node may be pulling now)."""
        import psycopg

        try:
            self._conn.execute("SELECT 1").fetchone()
        except psycopg.Error:
            self.held = False
        return self.held

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.held = False
