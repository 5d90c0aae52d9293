"""The writer's lock on PostgreSQL: one `run` (or daemon) per database, on any machine,
until sources are claimed with leases (issue #18). A session advisory lock, held on a
connection of its own: the server drops it when the process dies or its connection does."""

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
