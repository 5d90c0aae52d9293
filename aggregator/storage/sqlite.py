"""The only SQL: schema and migrations, items and stories, source state, tombstones.

SQLite in WAL mode with synchronous=NORMAL: a commit survives the process being killed at
any moment (the WAL is written before COMMIT returns); a power cut may lose the last few
pulls, which the next pass fetches again since their sources still list them. FULL would
fsync at every commit: 6 ms per pulled source here, most of the main process's store time.
A reader (`status`) never blocks the writer. Each source's pull is one transaction, so a
crash leaves either all of a pull or none of it. Pruned items leave tombstones (their
keys), so an old item still listed by its feed never comes back as new.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.errors import StoreError
from aggregator.model import (
    Candidate,
    CopyMeta,
    Intent,
    Item,
    Kind,
    Known,
    Lookups,
    PullOutcome,
    SourceRecord,
    SourceState,
    TagMatch,
)
from aggregator.text.sanitize import html_to_text

if TYPE_CHECKING:  # numpy, imported on first use: a cron run with nothing due never needs it
    from aggregator.storage.keyindex import KeyIndex

MIGRATIONS: list[str] = [
    # 1: first release
    """
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sources(
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL DEFAULT '',
        etag TEXT NOT NULL DEFAULT '',
        last_modified TEXT NOT NULL DEFAULT '',
        feed_title TEXT NOT NULL DEFAULT '',
        feed_link TEXT NOT NULL DEFAULT '',
        body_hash TEXT NOT NULL DEFAULT '',
        last_pull REAL,
        last_ok REAL,
        last_status INTEGER,
        last_error_kind TEXT NOT NULL DEFAULT '',
        last_error TEXT NOT NULL DEFAULT '',
        last_new INTEGER NOT NULL DEFAULT 0,
        last_items INTEGER NOT NULL DEFAULT 0,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_pull REAL
    );
    CREATE TABLE items(
        uid TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        story TEXT NOT NULL,
        link TEXT NOT NULL,
        canonical TEXT NOT NULL,
        title TEXT NOT NULL,
        summary_html TEXT NOT NULL,
        summary_text TEXT NOT NULL,
        content_html TEXT NOT NULL,
        content_text TEXT NOT NULL,
        authors TEXT NOT NULL,
        categories TEXT NOT NULL,
        language TEXT NOT NULL,
        published REAL NOT NULL,
        updated REAL NOT NULL,
        first_seen REAL NOT NULL,
        content_hash TEXT NOT NULL,
        tags TEXT NOT NULL,
        UNIQUE(source, key)
    );
    CREATE INDEX items_canonical ON items(canonical) WHERE canonical != '';
    CREATE INDEX items_story ON items(story);
    CREATE INDEX items_published ON items(published);
    CREATE TABLE tombstones(key TEXT PRIMARY KEY, pruned REAL NOT NULL);
    """,
    # 2: the daemon's failure policy (why the next pull is when it is; gone; moved)
    """
    ALTER TABLE sources ADD COLUMN next_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE sources ADD COLUMN gone_print TEXT NOT NULL DEFAULT '';
    ALTER TABLE sources ADD COLUMN redirect_url TEXT NOT NULL DEFAULT '';
    ALTER TABLE sources ADD COLUMN redirect_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sources ADD COLUMN redirect_print TEXT NOT NULL DEFAULT '';
    """,
    # 3: story clusters: near-duplicate index keys, and why a copy joined its story
    """
    ALTER TABLE items ADD COLUMN similarity REAL;
    ALTER TABLE items ADD COLUMN matched TEXT NOT NULL DEFAULT '';
    ALTER TABLE items ADD COLUMN match_reason TEXT NOT NULL DEFAULT '';
    CREATE TABLE near_keys(key INTEGER NOT NULL, item INTEGER NOT NULL, seen REAL NOT NULL);
    CREATE INDEX near_keys_key ON near_keys(key);
    """,
    # 4: the key index covers the lookup (the window is checked on the items found)
    """
    DROP INDEX near_keys_key;
    CREATE INDEX near_keys_key ON near_keys(key, item);
    """,
    # 5: each copy's similarity fingerprint, serialized (compared without its text); the
    # texts last, so that reading the other columns never walks a row's overflow pages
    """
    CREATE TABLE items_new(
        uid TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        story TEXT NOT NULL,
        link TEXT NOT NULL,
        canonical TEXT NOT NULL,
        title TEXT NOT NULL,
        authors TEXT NOT NULL,
        categories TEXT NOT NULL,
        language TEXT NOT NULL,
        published REAL NOT NULL,
        updated REAL NOT NULL,
        first_seen REAL NOT NULL,
        content_hash TEXT NOT NULL,
        tags TEXT NOT NULL,
        similarity REAL,
        matched TEXT NOT NULL DEFAULT '',
        match_reason TEXT NOT NULL DEFAULT '',
        near_print TEXT NOT NULL DEFAULT '',
        summary_html TEXT NOT NULL,
        summary_text TEXT NOT NULL,
        content_html TEXT NOT NULL,
        content_text TEXT NOT NULL,
        UNIQUE(source, key)
    );
    INSERT INTO items_new(rowid, uid, source, key, story, link, canonical, title, authors,
        categories, language, published, updated, first_seen, content_hash, tags, similarity,
        matched, match_reason, summary_html, summary_text, content_html, content_text)
      SELECT rowid, uid, source, key, story, link, canonical, title, authors, categories,
        language, published, updated, first_seen, content_hash, tags, similarity, matched,
        match_reason, summary_html, summary_text, content_html, content_text FROM items;
    DROP TABLE items;
    ALTER TABLE items_new RENAME TO items;
    CREATE INDEX items_canonical ON items(canonical) WHERE canonical != '';
    CREATE INDEX items_story ON items(story);
    CREATE INDEX items_published ON items(published);
    """,
    # 6: the near-duplicate keys as one B-tree (key, item): no table beside the index
    """
    CREATE TABLE near_keys_new(
        key INTEGER NOT NULL, item INTEGER NOT NULL, PRIMARY KEY(key, item)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO near_keys_new(key, item) SELECT key, item FROM near_keys;
    DROP TABLE near_keys;
    ALTER TABLE near_keys_new RENAME TO near_keys;
    """,
    # 7: each copy's tag names as words: choosing what to publish reads no JSON
    """
    ALTER TABLE items ADD COLUMN tag_names TEXT NOT NULL DEFAULT '';
    UPDATE items SET tag_names = coalesce((
        SELECT group_concat(name, ' ') FROM (
            SELECT DISTINCT json_extract(value, '$[0]') AS name FROM json_each(items.tags)
        )), '');
    """,
    # 8: an item's near-duplicate keys as one row (8 hex digits a key), looked up in memory
    # (storage/keyindex.py): a B-tree of (key, item) took 23 random inserts an item
    """
    CREATE TABLE near_keys_new(item INTEGER PRIMARY KEY, keys TEXT NOT NULL);
    INSERT INTO near_keys_new(item, keys)
        SELECT item, group_concat(printf('%08x', key), '') FROM near_keys GROUP BY item;
    DROP TABLE near_keys;
    ALTER TABLE near_keys_new RENAME TO near_keys;
    """,
    # 9: operators' requests to a running daemon (`aggregator refresh`, `reset`)
    """
    CREATE TABLE requests(
        id INTEGER PRIMARY KEY,
        action TEXT NOT NULL,
        source TEXT NOT NULL,
        asked REAL NOT NULL
    );
    """,
]


def _ts(dt: datetime) -> float:
    return dt.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Store:
    def __init__(self, path: Path):
        self.path = path
        self._depth = 0  # transaction() units open
        self._batch: float | None = None  # seconds between commits inside batch()
        self._began = 0.0
        self._commit_cost = 0.0  # seconds the last COMMIT took
        self._near: KeyIndex | None = None  # the near-duplicate keys stored, loaded on use
        self.commit_seconds = 0.0  # in all, since opened
        try:
            self.db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA busy_timeout = 5000")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            # 64 MB of pages at most: room for the random-access indexes (near-duplicate
            # keys, uids, links) of about 100,000 items, past which each insert reads pages
            # back and a bulk pass stops growing linearly (bench/, N=2,000).
            self.db.execute("PRAGMA cache_size = -65536")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use database {path}: {exc}") from None

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

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} has schema {version}, newer than this version knows "
                f"({len(MIGRATIONS)}): upgrade aggregator"
            )
        for number in range(version, len(MIGRATIONS)):
            with self.transaction():
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    # ------------------------------------------------------------ meta

    def meta(self, key: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else ""

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

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

    # ------------------------------------------------------------ items

    def lookups(self, items: list[Item]) -> Lookups:
        """What the store knows under the keys of one document's items, in three queries
        instead of three per item."""
        if not items:
            return Lookups()
        by_key: dict[str, Known] = {}
        by_url: dict[str, Known] = {}
        source = items[0].source
        cols = "uid, source, key, canonical, content_hash, story"
        for chunk in _chunks([i.key for i in items]):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {cols} FROM items WHERE source = ? AND key IN ({marks})"
            for row in self.db.execute(sql, (source, *chunk)):
                by_key[row[2]] = Known(*row)
        for chunk in _chunks(sorted({i.canonical for i in items if i.canonical})):
            marks = ",".join("?" * len(chunk))
            sql = (
                f"SELECT {cols} FROM items WHERE canonical IN ({marks}) AND canonical != '' "
                "ORDER BY first_seen DESC, uid DESC"
            )
            for row in self.db.execute(sql, chunk):  # the earliest copy is written last
                by_url[row[3]] = Known(*row)
        tombs = [_key_tomb(source, i.key) for i in items]
        tombs += [_url_tomb(i.canonical) for i in items if i.canonical]
        found: set[str] = set()
        for chunk in _chunks(tombs):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key FROM tombstones WHERE key IN ({marks})"
            found.update(r[0] for r in self.db.execute(sql, chunk))
        keys = frozenset((source, i.key) for i in items if _key_tomb(source, i.key) in found)
        urls = frozenset(i.canonical for i in items if _url_tomb(i.canonical) in found)
        return Lookups(by_key, by_url, keys, urls - {""})

    def content_hashes(self, source: str, limit: int = 1000) -> list[str]:
        """The content hashes of the source's `limit` last stored items (a feed lists its
        newest: which of its items are stored unchanged)."""
        sql = "SELECT content_hash FROM items WHERE source = ? ORDER BY rowid DESC LIMIT ?"
        return [r[0] for r in self.db.execute(sql, (source, limit))]

    def insert_item(self, item: Item, now: datetime, near_print: str = "") -> int:
        """Store a new copy; returns its rowid (what the near-duplicate index refers to).

        `near_print` is its similarity fingerprint, serialized: a stored copy is compared
        with the copies that follow without reading and tokenizing its text again."""
        cursor = self.db.execute(
            """INSERT INTO items(uid, source, key, story, link, canonical, title, summary_html,
                 summary_text, content_html, content_text, authors, categories, language,
                 published, updated, first_seen, content_hash, tags, tag_names, similarity,
                 matched, match_reason, near_print)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (
                item.uid,
                item.source,
                item.key,
                item.story,
                *self._fields(item),
                _ts(now),
                item.content_hash,
                *_tag_columns(item.tags),
                item.similarity,
                item.matched,
                item.match_reason,
                near_print,
            ),
        )
        return int(cursor.lastrowid or 0)

    def update_item(self, uid: str, item: Item) -> None:
        """Replace the content of the stored copy `uid`, keeping its id, story and first-seen."""
        self.db.execute(
            """UPDATE items SET link = ?, canonical = ?, title = ?, summary_html = ?,
                 summary_text = ?, content_html = ?, content_text = ?, authors = ?,
                 categories = ?, language = ?, published = ?, updated = ?,
                 content_hash = ?, tags = ?, tag_names = ?, near_print = ''
               WHERE uid = ?""",
            (*self._fields(item), item.content_hash, *_tag_columns(item.tags), uid),
        )

    @staticmethod
    def _fields(item: Item) -> tuple:
        return (
            item.link,
            item.canonical,
            item.title,
            item.summary_html,
            item.summary_text,  # "" from the parse workers: the text of the HTML, derived
            item.content_html,  # when read (a third less to write and store per item)
            item.content_text,
            _json_strings(item.authors),
            _json_strings(item.categories),
            item.language,
            _ts(item.published),
            _ts(item.updated),
        )

    def set_tags(self, uid: str, tags: Iterable[TagMatch]) -> None:
        self.db.execute(
            "UPDATE items SET tags = ?, tag_names = ? WHERE uid = ?", (*_tag_columns(tags), uid)
        )

    def items_page(
        self, after: int, limit: int, sources: Iterable[str] | None = None
    ) -> list[tuple[int, Item]]:
        """(rowid, item) of up to `limit` stored copies past rowid `after` (of `sources`):
        re-tagging walks the store a page at a time, never all of it in memory."""
        where: list[str] = ["rowid > ?"]
        args: list[object] = [after]
        if sources is not None:
            names = list(sources)
            where.append(f"source IN ({','.join('?' * len(names))})" if names else "0")
            args += names
        sql = f"SELECT rowid, * FROM items WHERE {' AND '.join(where)} ORDER BY rowid LIMIT ?"
        return [(r[0], _item(r)) for r in self.db.execute(sql, [*args, limit])]

    def items(
        self,
        since: datetime | None = None,
        sources: Iterable[str] | None = None,
        newest: int | None = None,
    ) -> list[Item]:
        """Every stored copy (published after `since`, of `sources`; only the `newest` so
        many), oldest first."""
        where: list[str] = []
        args: list[object] = []
        if since is not None:
            where.append("published >= ?")
            args.append(_ts(since))
        if sources is not None:
            names = list(sources)
            where.append(f"source IN ({','.join('?' * len(names))})" if names else "0")
            args += names
        sql = "SELECT * FROM items" + (" WHERE " + " AND ".join(where) if where else "")
        if newest is not None:
            rows = self.db.execute(
                sql + " ORDER BY published DESC, uid DESC LIMIT ?", [*args, newest]
            )
            return [_item(r) for r in rows][::-1]
        return [_item(r) for r in self.db.execute(sql + " ORDER BY published, uid", args)]

    def copies(self) -> list[CopyMeta]:
        """Every stored copy, as much as choosing what to publish reads, oldest first."""
        rows = self.db.execute(
            "SELECT uid, story, source, language, published, tag_names FROM items "
            "ORDER BY published, uid"
        )
        tag_sets: dict[str, frozenset[str]] = {}  # most copies share a few tag sets
        out = []
        for uid, story, source, language, published, names in rows:
            tags = tag_sets.get(names)
            if tags is None:
                tags = tag_sets[names] = frozenset(names.split())
            out.append(CopyMeta(uid, story or uid, source, language, _dt(published), tags))
        return out

    def items_by_uid(self, uids: list[str]) -> dict[str, Item]:
        """Complete items (texts included), by uid."""
        out: dict[str, Item] = {}
        for start in range(0, len(uids), 500):
            chunk = uids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.db.execute(f"SELECT * FROM items WHERE uid IN ({marks})", chunk):
                out[r["uid"]] = _item(r)
        return out

    def story_items(self, story: str) -> list[Item]:
        rows = self.db.execute("SELECT * FROM items WHERE story = ? ORDER BY first_seen", (story,))
        return [_item(r) for r in rows]

    def items_by_link(self, canonical: str, link: str) -> list[Item]:
        rows = self.db.execute(
            "SELECT * FROM items WHERE (canonical = ? AND canonical != '') OR link = ? "
            "ORDER BY first_seen",
            (canonical, link),
        )
        return [_item(r) for r in rows]

    # ------------------------------------------------------------ near-duplicate index

    def add_near_keys(self, rows: Iterable[tuple[int, Sequence[int]]]) -> None:
        """Index keys of new items, as (item rowid, its keys): one row an item."""
        rows = list(rows)
        self.db.executemany(
            "INSERT OR REPLACE INTO near_keys(item, keys) VALUES (?, ?)",
            [(item, _encode(keys)) for item, keys in rows],
        )
        if self._near is not None:
            self._near.add(rows)

    def write(self, intents: Iterable[Intent], now: datetime) -> None:
        """Write one document's story decisions: new copies with their near-duplicate keys,
        updated copies in place; unchanged, skipped: nothing."""
        rows = []
        for intent in intents:
            if intent.kind in (Kind.NEW, Kind.DUPLICATE):
                rowid = self.insert_item(intent.item, now, intent.near.print)
                rows.append((rowid, intent.near.keys))
            elif intent.kind is Kind.UPDATED:
                self.update_item(intent.target, intent.item)
        self.add_near_keys(rows)

    def near_candidates_many(
        self, key_lists: Sequence[Sequence[int]], since: datetime, limit: int
    ) -> list[list[Candidate]]:
        """`near_candidates` of each list of keys, the index searched once for them all."""
        if not key_lists:
            return []
        shared = self.near_shared([list(keys) for keys in key_lists])
        return [
            self.near_candidates(list(keys), since, limit, found)
            for keys, found in zip(key_lists, shared, strict=True)
        ]

    def near_shared(self, key_lists: list[list[int]]) -> list[list[int]]:
        """For each list of index keys, the rowid of each stored item holding one of them,
        once per key: a document's new items searched at once (see `near_candidates`)."""
        return self._near_index().items_sharing_many(key_lists)

    def near_candidates(
        self, keys: list[int], since: datetime, limit: int, shared: list[int] | None = None
    ) -> list[Candidate]:
        """The `limit` stored items sharing the most index keys with `keys` (at least one),
        first seen since `since`; `shared` is what `near_shared` found for them, if known.

        Light items with their serialized fingerprints ("" when unknown: the check then
        reads the texts, loaded only for those). Keys of items before the window are
        pruned hourly, so the window is checked on the items found.
        """
        found = self._near_index().items_sharing(keys) if shared is None else shared
        if not found:
            return []  # most new items: the filter says no, nothing more
        # a large store holds many items sharing a key or two by chance, and only the
        # `limit` sharing most (the newest first among equals) come out
        counts = Counter(found)
        best = sorted(counts, key=lambda item: (counts[item], item), reverse=True)[:limit]
        marks = ",".join("?" * len(best))
        rows = self.db.execute(
            f"SELECT {_CANDIDATE} FROM items WHERE rowid IN ({marks}) AND first_seen >= ? "
            "ORDER BY uid",
            (*best, _ts(since)),
        )
        out = []
        for row in rows:
            if not row["near_print"]:
                row = self.db.execute(f"SELECT {_NEAR} FROM items WHERE uid = ?", (row["uid"],))
                row = row.fetchone()
            out.append(Candidate(_light_item(row)[1], row["near_print"]))
        return out

    def near_texts(self, since: datetime) -> Iterator[tuple[int, Item]]:
        """(rowid, light item) of the items first seen since `since`, oldest first."""
        rows = self.db.execute(
            f"SELECT {_NEAR} FROM items WHERE first_seen >= ? ORDER BY first_seen, rowid",
            (_ts(since),),
        )
        # Sorted by SQLite before the first row comes out (no index on first_seen), so the
        # rebuild may write to these rows while reading them, without holding them all.
        return (_light_item(row) for row in rows)

    def clear_near_keys(self) -> None:
        self.db.execute("DELETE FROM near_keys")
        self._near = None

    def _near_index(self) -> KeyIndex:
        if self._near is None:
            from aggregator.storage.keyindex import KeyIndex

            self._near = KeyIndex(self.db.execute("SELECT item, keys FROM near_keys"))
        return self._near

    def set_near_print(self, rowid: int, near_print: str) -> None:
        self.db.execute("UPDATE items SET near_print = ? WHERE rowid = ?", (near_print, rowid))

    def prune_near_keys(self, before: datetime) -> None:
        """Drop the keys of items first seen before `before`, at most once an hour.

        Item rowids grow with time, so those are the rows under the first rowid of the
        window (found by bisection on rowids, no index on time); the keys held in memory
        are sorted into one run again, hence the hour (keys a little older cost nothing:
        candidates are checked against the window)."""
        last = self.meta("near_keys_pruned")
        if last and _ts(before) - float(last) < 3600:
            return
        first = self._first_rowid_seen_since(before)
        if first is None:
            self.db.execute("DELETE FROM near_keys")
            from aggregator.storage.keyindex import KeyIndex

            self._near = KeyIndex()
        else:
            self.db.execute("DELETE FROM near_keys WHERE item < ?", (first,))
            if self._near is not None:
                self._near.drop_before(first)
        self.set_meta("near_keys_pruned", repr(_ts(before)))

    def _first_rowid_seen_since(self, since: datetime) -> int | None:
        cut = _ts(since)

        def first_from(rowid: int) -> tuple[int, float]:
            return self.db.execute(
                "SELECT rowid, first_seen FROM items WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                (rowid,),
            ).fetchone()

        low, high = self.db.execute("SELECT min(rowid), max(rowid) FROM items").fetchone()
        if high is None or first_from(high)[1] < cut:
            return None
        while low < high:  # the first row from `high` on is in the window
            middle = (low + high) // 2
            rowid, seen = first_from(middle)
            if seen >= cut:
                high = middle
            else:
                low = rowid + 1
        return first_from(low)[0]

    def count_items(self) -> int:
        return self.db.execute("SELECT count(*) FROM items").fetchone()[0]

    def prune(self, cutoff: datetime, now: datetime) -> int:
        """Drop copies published before `cutoff`, leaving their keys as tombstones.

        Tombstones older than four times the retention go too: by then the item is too old
        to be taken in again anyway (normalize keeps its feed date).
        """
        old = self.db.execute(
            "SELECT source, key, canonical FROM items WHERE published < ?", (_ts(cutoff),)
        ).fetchall()
        if not old:
            return 0
        tombs = [(_key_tomb(s, k), _ts(now)) for s, k, _ in old]
        tombs += [(_url_tomb(c), _ts(now)) for _, _, c in old if c]
        self.db.executemany("INSERT OR REPLACE INTO tombstones(key, pruned) VALUES (?, ?)", tombs)
        # their index keys too, since SQLite may give a freed rowid to the next item (the
        # keys held in memory may keep them: a candidate found by them is compared first)
        self.db.execute(
            "DELETE FROM near_keys WHERE item IN (SELECT rowid FROM items WHERE published < ?)",
            (_ts(cutoff),),
        )
        self.db.execute("DELETE FROM items WHERE published < ?", (_ts(cutoff),))
        horizon = _ts(now) - 4 * (_ts(now) - _ts(cutoff))
        self.db.execute("DELETE FROM tombstones WHERE pruned < ?", (horizon,))
        return len(old)


def _key_tomb(source: str, key: str) -> str:
    """The tombstone a pruned item leaves under its source and key."""
    return f"k:{source}\n{key}"


def _url_tomb(canonical: str) -> str:
    """The tombstone a pruned item leaves under its canonical link."""
    return f"u:{canonical}"


def _chunks(values: list, size: int = 500) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _tags_json(tags: Iterable[TagMatch]) -> str:
    """json.dumps([[tag, rule, matched], ...], ensure_ascii=False), written out: json.dumps
    builds an encoder on every call with a non-default option (three calls an item stored,
    a tenth of storing at 100,000 items)."""
    return "[" + ", ".join(map(_tag_json, tags)) + "]"


@functools.lru_cache(maxsize=4096)
def _tag_json(t: TagMatch) -> str:
    """One reason as JSON: a few dozen distinct reasons make most of a pass's thousands."""
    return f"[{_enc(t.tag)}, {_enc(t.rule)}, {_enc(t.matched)}]"


def _json_strings(values: Iterable[str]) -> str:
    """json.dumps(list(values), ensure_ascii=False), written out (see _tags_json)."""
    return "[" + ", ".join(map(_enc, values)) + "]"


_enc = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) quotes with


def _tag_columns(tags: Iterable[TagMatch]) -> tuple[str, str]:
    """The `tags` column (every reason, JSON) and `tag_names` (the names, for publishing)."""
    tags = tuple(tags)
    return _tags_json(tags), " ".join(dict.fromkeys(t.tag for t in tags))


_NEAR = (
    "rowid, uid, source, story, title, summary_html, summary_text, content_html, content_text, "
    "content_hash, first_seen, near_print"
)
# candidates: their texts are read only when no fingerprint was stored
_CANDIDATE = (
    "rowid, uid, source, story, title, '' AS summary_html, '' AS summary_text, "
    "'' AS content_html, '' AS content_text, '' AS content_hash, first_seen, near_print"
)


def _light_item(row: sqlite3.Row) -> tuple[int, Item]:
    seen = _dt(row["first_seen"])
    return row["rowid"], Item(
        source=row["source"],
        key="",
        uid=row["uid"],
        link="",
        canonical="",
        title=row["title"],
        summary_html="",
        summary_text=_text(row, "summary"),
        content_html="",
        content_text=_text(row, "content"),
        published=seen,
        updated=seen,
        content_hash=row["content_hash"],
        story=row["story"],
    )


def _text(row: sqlite3.Row, field: str) -> str:
    """A stored text, or (rows written since schema 6) the text of the stored HTML."""
    return row[f"{field}_text"] or html_to_text(row[f"{field}_html"])


def _item(row: sqlite3.Row) -> Item:
    """The Item a row holds; a row that cannot be read (garbled by hand, a disk error)
    is a StoreError naming the item and the column, not a bare JSON or type error."""
    try:
        return _read_item(row)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        column = next(
            (c for c in ("authors", "categories", "tags") if not _json_ok(row, c)),
            "published/updated" if isinstance(exc, (OverflowError, TypeError)) else "?",
        )
        uid = row["uid"] if "uid" in row.keys() else "?"  # noqa: SIM118 - a Row iterates values
        raise StoreError(
            f"a stored item cannot be read (uid {uid}, column {column}: "
            f"{type(exc).__name__}: {exc}): the row is damaged; `sqlite3 DATABASE "
            f"'PRAGMA integrity_check'` checks the file, and deleting the row (or restoring a "
            "backup) repairs it"
        ) from None


def _json_ok(row: sqlite3.Row, column: str) -> bool:
    try:
        json.loads(row[column])
    except (ValueError, TypeError, IndexError, KeyError):
        return False
    return True


def _read_item(row: sqlite3.Row) -> Item:
    return Item(
        source=row["source"],
        key=row["key"],
        uid=row["uid"],
        link=row["link"],
        canonical=row["canonical"],
        title=row["title"],
        summary_html=row["summary_html"],
        summary_text=_text(row, "summary"),
        content_html=row["content_html"],
        content_text=_text(row, "content"),
        published=_dt(row["published"]),
        updated=_dt(row["updated"]),
        authors=tuple(json.loads(row["authors"])),
        categories=tuple(json.loads(row["categories"])),
        language=row["language"],
        content_hash=row["content_hash"],
        tags=tuple(TagMatch(*t) for t in json.loads(row["tags"])),
        story=row["story"],
        similarity=row["similarity"],
        matched=row["matched"],
        match_reason=row["match_reason"],
    )


def _encode(keys: Iterable[int]) -> str:
    from aggregator.storage.keyindex import encode

    return encode(keys)


_TIMES = frozenset({"next_pull", "last_pull", "last_ok"})  # stored as epoch seconds


def _column(row: sqlite3.Row, name: str) -> Any:  # the type of the field of that name
    value = row[name]
    return _dt(value) if name in _TIMES and value is not None else value


def _record(row: sqlite3.Row) -> SourceRecord:
    """A `sources` row as the port's value: every field is the column of its name."""
    return SourceRecord(**{f.name: _column(row, f.name) for f in fields(SourceRecord)})


def _state(row: sqlite3.Row) -> SourceState:
    return SourceState(**{f.name: _column(row, f.name) for f in fields(SourceState)})


class Lock:
    """One writer per database: an exclusive lock on `<database>.lock`, held while open.

    The kernel drops the lock when the process dies, even by SIGKILL, so a crash never
    leaves a stale lock behind.
    """

    def __init__(self, database: Path):
        import fcntl
        import os

        self.path = database.with_name(database.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot use database {database}: its folder {self.path.parent} cannot be "
                f"created: {exc.strerror}"
            ) from None
        try:
            self._file = open(self.path, "a+")  # noqa: SIM115 - held for the lock's lifetime
        except OSError as exc:
            raise StoreError(
                f"cannot use database {database}: its lock file {self.path}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip()
            self._file.close()
            from aggregator.errors import LockedError

            who = f" by process {holder}" if holder.isdigit() else ""
            raise LockedError(
                f"database {database} is in use{who}: lock {self.path} is held "
                "(another `aggregator run` is running)"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        self._file.close()

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
