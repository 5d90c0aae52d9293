"""Sources claimed with leases, and one story decision at a time, on a store that several
nodes pull into (issue #18): the PostgreSQL store's side of `storage.port.Leasing`.

A lease is a row of `leases` while a node pulls a source. Claiming locks the source's row
with `SELECT … FOR UPDATE SKIP LOCKED` (a node writing that source back right now is
skipped, never waited for) and writes the lease in the same transaction, so two nodes
never both claim one source. The lease is renewed by its node while its pulls last
(`renew`, from the daemon's node loop); a pull checks it inside each unit it writes
(`hold`, locking the row until that unit commits), so a node that outlived its lease and
lost the source to another writes nothing. A killed node's leases run out, and the next
node whose schedule comes to those sources claims them.

A host's fetches in flight are counted over every node (`fetch_slot`): the count and the
mark are taken under an advisory lock of that host, so two nodes never both take the last
slot.
"""

from __future__ import annotations

import os
import secrets
import zlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aggregator.errors import LeaseLost
from aggregator.model import Busy, Lease, LeaseRow
from aggregator.storage.sqlite.rows import _dt, _ts

HOSTS = zlib.crc32(b"aggregator host") & 0x7FFFFFFF  # first key of a host's advisory lock
WRITING = timedelta(seconds=2)  # ask again after a node writing the source back
# a source's schedule and lease, its row locked unless another node holds the lock
_CLAIMED = (
    "SELECT s.next_pull, l.node, l.until FROM sources s LEFT JOIN leases l "
    "ON l.source = s.name WHERE s.name = ? FOR UPDATE OF s SKIP LOCKED"
)


def node_name() -> str:
    """This process as leases and `status` name it: host, pid, and a random part (a pid
    used again after a restart is another node)."""
    return f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(2)}"


class Leases:
    """The leasing half of the PostgreSQL store (mixed into `Store`, on its connection)."""

    db: Any  # the store's: a `store.Connection` (SQLite's `Items` name it their way)
    node: str

    if TYPE_CHECKING:  # the store's (SQLite's units of work)

        def transaction(self) -> AbstractContextManager[None]: ...

    def claim(
        self,
        source: str,
        now: datetime,
        seconds: float,
        due: bool = True,
        host: str = "",
        per_host: int = 0,
    ) -> Lease | Busy:
        with self.transaction():
            row = self.db.execute(_CLAIMED, (source,)).fetchone()
            if row is None:  # never pulled (no row yet), or another node is writing it back
                self.db.execute("INSERT OR IGNORE INTO sources(name) VALUES (?)", (source,))
                row = self.db.execute(_CLAIMED, (source,)).fetchone()
            if row is None:
                return Busy(source, now + WRITING, "being stored by another node", True)
            if row["until"] is not None and row["until"] > _ts(now):
                return Busy(source, _dt(row["until"]), f"being pulled by {row['node']}", True)
            if due and row["next_pull"] is not None and row["next_pull"] > _ts(now) + 1:
                return Busy(source, _dt(row["next_pull"]), "pulled by another node")
            token = secrets.token_hex(8)
            fetching = bool(host) and self._slots_free(host, per_host, now, source)
            self.db.execute(
                "INSERT OR REPLACE INTO leases(source, node, token, since, until, host, fetching)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (source, self.node, token, _ts(now), _ts(now) + seconds, host, int(fetching)),
            )
        return Lease(source, token, self.node, fetching)

    def _slots_free(self, host: str, per_host: int, now: datetime, source: str) -> bool:
        """Whether fewer than `per_host` fetches from `host` are in flight on every node,
        counted under the host's advisory lock (held until the unit marking one ends)."""
        key = zlib.crc32(host.encode()) & 0x7FFFFFFF
        self.db.execute(f"SELECT pg_advisory_xact_lock({HOSTS}, {key})")
        busy = self.db.execute(
            "SELECT count(*) FROM leases WHERE host = ? AND fetching = 1 AND until > ? "
            "AND source != ?",
            (host, _ts(now), source),
        ).fetchone()[0]
        return int(busy) < per_host

    def renew(self, now: datetime, seconds: float, tokens: Sequence[str]) -> int:
        """Push back the end of this node's leases of the pulls under way (`tokens`; a
        lease whose release failed is not among them, and runs out); how many held."""
        if not tokens:
            return 0
        marks = ",".join("?" * len(tokens))
        with self.transaction():
            cursor = self.db.execute(
                f"UPDATE leases SET until = ? WHERE node = ? AND token IN ({marks})",
                (_ts(now) + seconds, self.node, *tokens),
            )
        return int(cursor.rowcount)

    def hold(self, lease: Lease, end: bool = False) -> None:
        """Inside a unit a pull writes: go on only if `lease` still holds its source (the
        row stays locked until the unit ends, so no node claims it meanwhile); `end` lets
        it go with the unit, which records the pull."""
        # the source's row is what `claim` locks first: no node claims it until this unit ends
        row = self.db.execute(
            "SELECT l.token FROM sources s LEFT JOIN leases l ON l.source = s.name "
            "WHERE s.name = ? FOR UPDATE OF s",
            (lease.source,),
        ).fetchone()
        if row is None or row["token"] != lease.token:
            raise LeaseLost(
                f"{lease.source}: this node outlived its lease and another node took the "
                "source over; this pull's result is dropped"
            )
        if end:
            self.db.execute("DELETE FROM leases WHERE source = ?", (lease.source,))

    def release(self, lease: Lease) -> None:
        """Let a lease go without writing (a pull cancelled, or one that lost its lease)."""
        with self.transaction():
            self.db.execute(
                "DELETE FROM leases WHERE source = ? AND token = ?", (lease.source, lease.token)
            )

    def fetch_slot(self, lease: Lease, host: str, per_host: int, now: datetime) -> bool:
        """Mark this pull as fetching from `host` if fewer than `per_host` fetches from it
        are in flight on every node; False: wait and ask again."""
        with self.transaction():
            if not self._slots_free(host, per_host, now, lease.source):
                return False
            self.db.execute(
                "UPDATE leases SET host = ?, fetching = 1 WHERE source = ? AND token = ?",
                (host, lease.source, lease.token),
            )
        return True

    def end_fetch(self, lease: Lease) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE leases SET fetching = 0 WHERE source = ? AND token = ?",
                (lease.source, lease.token),
            )

    def leases(self) -> list[LeaseRow]:
        rows = self.db.execute("SELECT * FROM leases ORDER BY source").fetchall()
        return [
            LeaseRow(r["source"], r["node"], _dt(r["since"]), _dt(r["until"]), bool(r["fetching"]))
            for r in rows
        ]
