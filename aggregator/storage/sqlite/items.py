"""Items, stories and the near-duplicate index: one document's view read, its intents
written, feeds' copies read, old items pruned to tombstones."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aggregator import model

if TYPE_CHECKING:  # numpy, imported on first use: a cron run with nothing due never needs it
    from aggregator.model import (
        Candidate,
        CopyMeta,
        CopyText,
        Intent,
        Item,
        Known,
        Lookups,
        TagMatch,
    )
    from aggregator.storage.keyindex import KeyIndex
from aggregator.storage.sqlite.rows import (
    _CANDIDATE,
    _NEAR,
    _chunks,
    _copy_text,
    _dt,
    _encode,
    _item,
    _json_strings,
    _key_tomb,
    _tag_columns,
    _ts,
    _url_tomb,
)


class Items:
    """The items half of `Store` (a mixin: `Store` holds the connection)."""

    db: sqlite3.Connection
    _near: KeyIndex | None

    def meta(self, key: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else ""

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def metas(self, prefix: str) -> dict[str, str]:
        """Every meta value whose key starts with `prefix` (the nodes' heartbeats)."""
        rows = self.db.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
                               (len(prefix), prefix))  # fmt: skip
        return {r[0]: r[1] for r in rows}

    def forget_meta(self, key: str) -> None:
        self.db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # ------------------------------------------------------------ items

    def lookups(self, items: list[Item]) -> Lookups:
        """What the store knows under the keys of one document's items, in three queries
        instead of three per item."""
        if not items:
            return model.Lookups()
        by_key: dict[str, Known] = {}
        by_url: dict[str, Known] = {}
        source = items[0].source
        cols = "uid, source, key, canonical, content_hash, story"
        for chunk in _chunks([i.key for i in items]):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {cols} FROM items WHERE source = ? AND key IN ({marks})"
            for row in self.db.execute(sql, (source, *chunk)):
                by_key[row[2]] = model.Known(*row)
        for chunk in _chunks(sorted({i.canonical for i in items if i.canonical})):
            marks = ",".join("?" * len(chunk))
            sql = (
                f"SELECT {cols} FROM items WHERE canonical IN ({marks}) AND canonical != '' "
                "ORDER BY first_seen DESC, uid DESC"
            )
            for row in self.db.execute(sql, chunk):  # the earliest copy is written last
                by_url[row[3]] = model.Known(*row)
        tombs = [_key_tomb(source, i.key) for i in items]
        tombs += [_url_tomb(i.canonical) for i in items if i.canonical]
        found: set[str] = set()
        for chunk in _chunks(tombs):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key FROM tombstones WHERE key IN ({marks})"
            found.update(r[0] for r in self.db.execute(sql, chunk))
        keys = frozenset((source, i.key) for i in items if _key_tomb(source, i.key) in found)
        urls = frozenset(i.canonical for i in items if _url_tomb(i.canonical) in found)
        return model.Lookups(by_key, by_url, keys, urls - {""})

    def content_hashes(self, source: str, limit: int = 1000) -> list[str]:
        """The content hashes of the source's `limit` last stored items (a feed lists its
        newest: which of its items are stored unchanged)."""
        sql = "SELECT content_hash FROM items WHERE source = ? ORDER BY rowid DESC LIMIT ?"
        return [r[0] for r in self.db.execute(sql, (source, limit))]

    def entry_prints(self, source: str, limit: int = 1000) -> dict[int, tuple[str, str, float]]:
        """The source's `limit` last stored copies by the print of the entry each was made
        from: print -> (key, content hash, published as epoch seconds)."""
        sql = (
            "SELECT entry_print, key, content_hash, published FROM items "
            "WHERE source = ? AND entry_print != 0 ORDER BY rowid DESC LIMIT ?"
        )
        return {r[0]: (r[1], r[2], r[3]) for r in self.db.execute(sql, (source, limit))}

    def insert_item(self, item: Item, now: datetime, near_print: str = "") -> int:
        """Store a new copy; returns its rowid (what the near-duplicate index refers to).

        `near_print` is its similarity fingerprint, serialized: a stored copy is compared
        with the copies that follow without reading and tokenizing its text again."""
        cursor = self.db.execute(
            """INSERT INTO items(uid, source, key, story, link, canonical, title, summary_html,
                 summary_text, content_html, content_text, authors, categories, language,
                 published, updated, first_seen, content_hash, tags, tag_names, similarity,
                 matched, match_reason, near_print, entry_print)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
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
                item.entry_print,
            ),
        )
        return int(cursor.lastrowid or 0)

    def update_item(self, uid: str, item: Item) -> None:
        """Replace the content of the stored copy `uid`, keeping its id, story and first-seen."""
        self.db.execute(
            """UPDATE items SET link = ?, canonical = ?, title = ?, summary_html = ?,
                 summary_text = ?, content_html = ?, content_text = ?, authors = ?,
                 categories = ?, language = ?, published = ?, updated = ?,
                 content_hash = ?, tags = ?, tag_names = ?, near_print = '', entry_print = ?
               WHERE uid = ?""",
            (
                *self._fields(item),
                item.content_hash,
                *_tag_columns(item.tags),
                item.entry_print,
                uid,
            ),
        )

    @staticmethod
    def _fields(item: Item) -> tuple[Any, ...]:
        return (
            item.link,
            item.canonical,
            item.title,
            item.summary_html,
            "",  # the texts: derived from the HTML when read (a third less to write and
            item.content_html,  # store per item); rows before schema 6 hold them
            "",
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

    def copies(self, newest: int | None = None) -> list[CopyMeta]:
        """Every stored copy (only the `newest` so many), as much as choosing what to
        publish reads, oldest first."""
        sql = "SELECT uid, story, source, language, published, tag_names FROM items "
        rows: Iterable[Any]
        if newest is None:
            rows = self.db.execute(sql + "ORDER BY published, uid")
        else:
            sql += "ORDER BY published DESC, uid DESC LIMIT ?"
            rows = self.db.execute(sql, (newest,)).fetchall()[::-1]
        tag_sets: dict[str, frozenset[str]] = {}  # most copies share a few tag sets
        out = []
        for uid, story, source, language, published, names in rows:
            tags = tag_sets.get(names)
            if tags is None:
                tags = tag_sets[names] = frozenset(names.split())
            out.append(model.CopyMeta(uid, story or uid, source, language, _dt(published), tags))
        return out

    def titles(self, newest: int) -> list[str]:
        """The titles of the `newest` stored copies (what `check` reads for its advice on
        keywords in capitals: no text to rebuild, a second became a few milliseconds)."""
        sql = "SELECT title FROM items ORDER BY published DESC, uid DESC LIMIT ?"
        return [title for (title,) in self.db.execute(sql, (newest,))]

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
            if intent.kind in (model.Kind.NEW, model.Kind.DUPLICATE):
                rowid = self.insert_item(intent.item, now, intent.near.print)
                rows.append((rowid, intent.near.keys))
            elif intent.kind is model.Kind.UPDATED:
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
            out.append(model.Candidate(_copy_text(row)[1], row["near_print"]))
        return out

    def near_texts(self, since: datetime) -> Iterator[tuple[int, CopyText]]:
        """(rowid, what it says) of the items first seen since `since`, oldest first."""
        rows = self.db.execute(
            f"SELECT {_NEAR} FROM items WHERE first_seen >= ? ORDER BY first_seen, rowid",
            (_ts(since),),
        )
        # Sorted by SQLite before the first row comes out (no index on first_seen), so the
        # rebuild may write to these rows while reading them, without holding them all.
        return (_copy_text(row) for row in rows)

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

        def first_from(rowid: int) -> tuple[int, float]:  # rowid <= max(rowid): a row
            row: tuple[int, float] = self.db.execute(
                "SELECT rowid, first_seen FROM items WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                (rowid,),
            ).fetchone()
            return row

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
        return int(self.db.execute("SELECT count(*) FROM items").fetchone()[0])

    def count_stories(self) -> int:
        """Stories with a copy in the store (the index on `story` answers it)."""
        return int(self.db.execute("SELECT count(DISTINCT story) FROM items").fetchone()[0])

    def prune(
        self, cutoff: datetime, now: datetime, sources: Sequence[tuple[str, datetime, int]] = ()
    ) -> int:
        """Drop copies published before `cutoff`, leaving their keys as tombstones; for each
        of `sources` (name, its own cutoff, how many of its newest to keep whatever their
        age), by its own rule instead.

        Tombstones older than four times the longest retention go too: by then the item
        is too old to be taken in again anyway (normalize keeps its feed date).
        """
        old = self._doomed(cutoff, sources)
        if not old:
            return 0
        tombs = [(_key_tomb(r[1], r[2]), _ts(now)) for r in old]
        tombs += [(_url_tomb(r[3]), _ts(now)) for r in old if r[3]]
        self.db.executemany("INSERT OR REPLACE INTO tombstones(key, pruned) VALUES (?, ?)", tombs)
        # their index keys too, since SQLite may give a freed rowid to the next item (the
        # keys held in memory may keep them: a candidate found by them is compared first)
        for chunk in _chunks([r[0] for r in old]):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM near_keys WHERE item IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM items WHERE rowid IN ({marks})", chunk)
        longest = max([now - cutoff, *(now - c for _, c, _ in sources)])
        horizon = _ts(now) - 4 * longest.total_seconds()
        self.db.execute("DELETE FROM tombstones WHERE pruned < ?", (horizon,))
        return len(old)

    def prunable(self, cutoff: datetime, sources: Sequence[tuple[str, datetime, int]] = ()) -> int:
        """How many copies `prune` would drop now (`status` says it)."""
        return len(self._doomed(cutoff, sources))

    def _doomed(
        self, cutoff: datetime, sources: Sequence[tuple[str, datetime, int]]
    ) -> list[tuple[int, str, str, str]]:
        """(rowid, source, key, canonical) of the copies past their retention."""
        cols = "SELECT rowid, source, key, canonical FROM items"
        own = [name for name, _, _ in sources]
        sql = f"{cols} WHERE published < ?"
        if own:
            sql += f" AND source NOT IN ({','.join('?' * len(own))})"
        rows = [tuple(r) for r in self.db.execute(sql, (_ts(cutoff), *own))]
        for name, its_cutoff, keep in sources:
            rows += [
                tuple(r)
                for r in self.db.execute(
                    f"{cols} WHERE source = ? AND published < ? AND rowid NOT IN "
                    "(SELECT rowid FROM items WHERE source = ? "
                    "ORDER BY published DESC, rowid DESC LIMIT ?)",
                    (name, _ts(its_cutoff), name, keep),
                )
            ]
        return rows

    def size_bytes(self) -> int:
        """The database's size on disk (its pages)."""
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        return int(pages) * int(self.db.execute("PRAGMA page_size").fetchone()[0])
