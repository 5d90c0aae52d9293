"""The SQLite store: the connection, units of work and grouped commits, meta, sources'
state and operators' requests; items come from the `Items` half (items.py)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.errors import StoreError
from aggregator.model import SourceRecord, SourceState

if TYPE_CHECKING:  # numpy, imported on first use: a cron run with nothing due never needs it
    from aggregator.model import PullOutcome
    from aggregator.storage.keyindex import KeyIndex
from aggregator.storage.sqlite.items import Items
from aggregator.storage.sqlite.rows import (
    _record,
    _state,
    _ts,
)
from aggregator.storage.sqlite.schema import MIGRATIONS


class Store(Items):
    def __init__(self, path: Path):
        self.path = path
        self._start()
        try:
            self.db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA busy_timeout = 5000")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            # 4 MB of pages at most. 64 MB was meant for the random-access indexes of
            # 100,000 items, but it filled with the pages of rows written once and never
            # read again: 38 MB more of a full pass at N=200. At N=2,000 the full pass
            # took the same time with 16 MB (52.3 s against 52.8 s) and with 4 MB (41.5 s
            # against 43.6 s for 16 MB, alternating), which is 10-13 MB less PSS at N=200
            # (bench/, #20); the pages it drops are read back from the OS's cache.
            self.db.execute("PRAGMA cache_size = -4096")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use database {path}: {exc}") from None

    def _start(self) -> None:
        """The units-of-work state, before any connection (the PostgreSQL store's too)."""
        self._depth = 0  # transaction() units open
        self._batch: float | None = None  # seconds between commits inside batch()
        self._began = 0.0
        self._commit_cost = 0.0  # seconds the last COMMIT took
        self._near: KeyIndex | None = None  # the near-duplicate keys stored, loaded on use
        self.commit_seconds = 0.0  # in all, since opened

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit: all of it is stored or none. A nested unit is a savepoint of
        the one around it; inside `batch()` every unit is a savepoint of the batch's open
        transaction and may wait for the batch's next commit.

        A unit that fails is rolled back alone, inside a batch too: one source's pull that
        raises while storing never takes other pulls' units with it. (A savepoint cost a
        sixth of storing a bulk pass when the near-duplicate keys were a row each; with
        one row an item it costs nothing measurable: full pass 3.77-4.03 s without,
        3.84-3.98 s with, store CPU 1.19-1.31 s either way.)"""
        outermost = self._depth == 0
        if outermost and not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self._began = time.monotonic()
        savepoint = None if outermost and self._batch is None else f"unit{self._depth}"
        if savepoint:
            self.db.execute(f"SAVEPOINT {savepoint}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            self._near = None  # it may hold keys of items rolled back: read again
            if savepoint:
                self.db.execute(f"ROLLBACK TO {savepoint}")
                self.db.execute(f"RELEASE {savepoint}")
            elif self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self._depth -= 1
        if savepoint:
            self.db.execute(f"RELEASE {savepoint}")
            if outermost and self._commit_due():
                self._commit()
        else:
            self._commit()

    def _commit(self) -> None:
        started = time.monotonic()
        self.db.execute("COMMIT")
        self._commit_cost = time.monotonic() - started
        self.commit_seconds += self._commit_cost

    def _commit_due(self) -> bool:
        # A commit writes every page its rows dirtied; with random keys that is most of
        # each index, so it costs more as the store grows. Spacing commits at least 20x
        # their own cost keeps them under ~5% of a bulk pass at any size.
        open_for = time.monotonic() - self._began
        return open_for >= max(self._batch or 0.0, 20 * self._commit_cost)

    @contextmanager
    def batch(self, seconds: float = 1.0) -> Iterator[None]:
        """Units inside are committed together: when a unit ends `seconds` (or 20 times the
        last commit's cost, if more) after the open transaction began, at `commit_pending`,
        and at the end.

        For bulk passes: each commit rewrites every index page its rows touched, and the
        near-duplicate keys are random, so 200 commits of 50 items rewrote most of that
        index 200 times. A crash loses the units since the last commit, never half of one:
        the pulls they record are made again, their validators were not stored either. A
        unit that fails is rolled back alone (each is a savepoint, see `transaction`).
        """
        self._batch = seconds
        try:
            yield
        finally:
            self._batch = None
            self.commit_pending()

    @property
    def in_transaction(self) -> bool:
        """Writes are waiting for a commit (the daemon reports pulls once they are not)."""
        return self.db.in_transaction

    def commit_pending(self) -> None:
        """Commit the units a batch holds, if no unit is running (before publishing: files
        never show what a crash could take back; and on a timer in the daemon)."""
        if self.db.in_transaction and self._depth == 0:
            self._commit()

    def schema_version(self) -> int:
        """The schema this database is at (migrations run when it was opened)."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def after_copy(self) -> None:
        """What `storage.copy` leaves to the backend: nothing (SQLite numbers new rows past
        the largest rowid)."""

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} has schema {version}, newer than this version knows "
                f"({len(MIGRATIONS)}): upgrade aggregator"
            )
        if 0 < version < len(MIGRATIONS):  # a copy first: a migration rewrites tables
            from aggregator.storage.sqlite.backup import before_migration

            before_migration(self.path, version)
        for number in range(version, len(MIGRATIONS)):
            with self.transaction():
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    # ------------------------------------------------------------ sources

    def source_state(self, name: str) -> SourceState:
        row = self.db.execute("SELECT * FROM sources WHERE name = ?", (name,)).fetchone()
        return _state(row) if row is not None else SourceState(name=name)

    def source_states(self) -> dict[str, SourceState]:
        """Every stored source's state, in one query."""
        return {r["name"]: _state(r) for r in self.db.execute("SELECT * FROM sources")}

    def record_pull(
        self,
        outcome: PullOutcome,
        url: str,
        now: datetime,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        feed_title: str | None = None,
        feed_link: str | None = None,
        body_hash: str | None = None,
    ) -> None:
        """Remember a pull's result; validators and titles are kept when not given."""
        self.db.execute(
            "INSERT OR IGNORE INTO sources(name, url) VALUES (?, ?)", (outcome.source, url)
        )
        self.db.execute(
            """UPDATE sources SET url = ?, last_pull = ?, last_status = ?,
                 last_error_kind = ?, last_error = ?,
                 last_ok = CASE WHEN ? THEN ? ELSE last_ok END,
                 last_new = ?, last_items = CASE WHEN ? THEN ? ELSE last_items END,
                 consecutive_failures = CASE WHEN ? THEN 0 ELSE consecutive_failures + 1 END,
                 etag = coalesce(?, etag), last_modified = coalesce(?, last_modified),
                 feed_title = coalesce(?, feed_title), feed_link = coalesce(?, feed_link),
                 body_hash = coalesce(?, body_hash)
               WHERE name = ?""",
            (
                url,
                _ts(now),
                outcome.status,
                outcome.error_kind,
                outcome.error or outcome.warning,  # an ok pull's warning shows in status
                outcome.ok,
                _ts(now),
                outcome.new,
                outcome.ok and not outcome.not_modified,
                outcome.new + outcome.updated + outcome.duplicate + outcome.unchanged,
                outcome.ok,
                etag,
                last_modified,
                feed_title,
                feed_link,
                body_hash,
                outcome.source,
            ),
        )

    def _ensure_source(self, name: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO sources(name) VALUES (?)", (name,))

    def set_next_pull(self, name: str, at: datetime | None, reason: str) -> None:
        self._ensure_source(name)
        self.db.execute(
            "UPDATE sources SET next_pull = ?, next_reason = ? WHERE name = ?",
            (_ts(at) if at else None, reason, name),
        )

    def set_gone(self, name: str, print_: str) -> None:
        """Mark the source gone for this config entry (`print_`), or not gone with ""."""
        self._ensure_source(name)
        self.db.execute("UPDATE sources SET gone_print = ? WHERE name = ?", (print_, name))

    def set_redirect(self, name: str, url: str, count: int, print_: str) -> None:
        self._ensure_source(name)
        self.db.execute(
            "UPDATE sources SET redirect_url = ?, redirect_count = ?, redirect_print = ? "
            "WHERE name = ?",
            (url, count, print_, name),
        )

    def reset_source(self, name: str) -> None:
        """Forget a source's failures and its 410: its next pull is a first one again."""
        self.db.execute(
            "UPDATE sources SET consecutive_failures = 0, gone_print = '', next_pull = NULL, "
            "next_reason = 'reset' WHERE name = ?",
            (name,),
        )

    # ------------------------------------------------------------ requests to the daemon

    def ask(self, action: str, source: str, asked: float) -> int:
        """Leave a request for the running daemon (it takes them within a second)."""
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO requests(action, source, asked) VALUES (?, ?, ?)",
                (action, source, asked),
            )
        return int(cur.lastrowid or 0)

    def pending(self, request: int) -> bool:
        row = self.db.execute("SELECT 1 FROM requests WHERE id = ?", (request,)).fetchone()
        return row is not None

    def take_requests(self) -> list[tuple[str, str]]:
        """The requests waiting, oldest first, removed as they are taken: (action, source)."""
        rows = self.db.execute("SELECT id, action, source FROM requests ORDER BY id").fetchall()
        if rows:
            self.db.execute("DELETE FROM requests WHERE id <= ?", (rows[-1]["id"],))
        return [(r["action"], r["source"]) for r in rows]

    def source_rows(self) -> list[SourceRecord]:
        """Every source the store knows, by name, with its last pull's outcome."""
        return [_record(r) for r in self.db.execute("SELECT * FROM sources ORDER BY name")]
