"""The store on real SQLite files: migrations, identity, pruning with tombstones, the lock."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.errors import LockedError
from aggregator.ingest.stories import store_items
from aggregator.model import Item
from aggregator.storage.sqlite import MIGRATIONS, Lock, Store, StoreError

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def item(key: str, published: datetime, source: str = "s", canonical: str = "") -> Item:
    return Item(
        source=source,
        key=key,
        uid=f"uid-{source}-{key}",
        link=canonical,
        canonical=canonical,
        title=key,
        summary_html="",
        content_html="",
        published=published,
        updated=published,
        content_hash=key,
    )


def test_schema_version_and_reopen(tmp_path):
    store = Store(tmp_path / "a.db")
    version = store.db.execute("PRAGMA user_version").fetchone()[0]
    assert version == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    Store(tmp_path / "a.db").close()  # migrating twice is a no-op


def test_newer_or_corrupt_database_is_a_clear_error(tmp_path):
    path = tmp_path / "new.db"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(StoreError, match="newer than this version"):
        Store(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot use database"):
        Store(junk)


def put(store: Store, one: Item, cutoff: datetime, now: datetime) -> str:
    """Store one item alone, exact keys only; what storing it meant."""
    return store_items(store, [one], now=now, cutoff=cutoff, near=None)[0].kind


def test_prune_leaves_tombstones_so_old_items_never_return(tmp_path):
    store = Store(tmp_path / "a.db")
    cutoff = NOW - timedelta(days=30)
    with store.transaction():
        assert put(store, item("old", NOW - timedelta(days=20)), cutoff, NOW) == "new"
        assert put(store, item("fresh", NOW), cutoff, NOW) == "new"
    later = NOW + timedelta(days=15)
    with store.transaction():
        assert store.prune(later - timedelta(days=30), later) == 1
    assert [i.key for i in store.items()] == ["fresh"]
    # its near-duplicate keys go with it: SQLite may give its rowid to the next item
    assert [r[0] for r in store.db.execute("SELECT item FROM near_keys")] == [2]
    with store.transaction():  # the feed still lists it: skipped, not new
        kind = put(store, item("old", NOW - timedelta(days=20)), cutoff, later)
    assert kind == "skipped"
    with store.transaction():  # items older than the retention are not taken in at all
        kind = put(store, item("ancient", NOW - timedelta(days=60)), cutoff, NOW)
    assert kind == "skipped" and store.count_items() == 1


def test_same_canonical_link_from_another_source_joins_the_story(tmp_path):
    store = Store(tmp_path / "a.db")
    cutoff = NOW - timedelta(days=30)
    url = "https://x.example/story"
    with store.transaction():
        assert put(store, item("a", NOW, "one", url), cutoff, NOW) == "new"
        assert put(store, item("b", NOW, "two", url), cutoff, NOW) == "duplicate"
        assert put(store, item("a", NOW, "one", url), cutoff, NOW) == "unchanged"
    stories = {i.story for i in store.items()}
    assert stories == {"uid-one-a"}


def test_one_writer_per_database(tmp_path):
    db = tmp_path / "a.db"
    with Lock(db), pytest.raises(LockedError, match=r"a\.db\.lock"):
        Lock(db)
    Lock(db).release()  # free again once released


def test_a_database_of_schema_4_keeps_its_items_and_rowids(tmp_path):
    """Migration 5 rebuilds the items table (texts last): rows, rowids and the key index
    that refers to them survive."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path, isolation_level=None)
    for number in range(4):
        for statement in MIGRATIONS[number].split(";"):
            if statement.strip():
                con.execute(statement)
    con.execute("PRAGMA user_version = 4")
    con.execute(
        """INSERT INTO items(rowid, uid, source, key, story, link, canonical, title,
             summary_html, summary_text, content_html, content_text, authors, categories,
             language, published, updated, first_seen, content_hash, tags)
           VALUES (42, 'u1', 's', 'k', 'u1', 'https://x.example/1', 'https://x.example/1',
             'Title', '<p>lead</p>', 'lead', '', '', '["A"]', '[]', 'en', 1.0, 1.0, 1.0, 'h',
             '[["ai", "keyword", "AI"], ["ai", "keyword", "IA"], ["crypto", "implied", "ai"]]')"""
    )
    con.execute("INSERT INTO near_keys(key, item, seen) VALUES (7, 42, 1.0)")
    con.close()
    store = Store(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    (old,) = store.items()
    assert (old.uid, old.title, old.summary_text, old.authors) == ("u1", "Title", "lead", ("A",))
    assert [t.tag for t in old.tags] == ["ai", "ai", "crypto"]
    (meta,) = store.copies()  # migration 7 wrote the tag names publishing reads
    assert (meta.uid, meta.story, meta.tag_names) == ("u1", "u1", {"ai", "crypto"})
    found = store.near_candidates([7], datetime.fromtimestamp(0, UTC), 16)
    assert [(c.uid, near_print) for c, near_print in found] == [("u1", "")]
    assert found[0][0].lead == "lead"  # no stored fingerprint: the text is read


def test_near_keys_of_items_before_the_window_are_pruned(tmp_path):
    store = Store(tmp_path / "a.db")
    with store.transaction():
        for n in range(10):  # one item an hour, in rowid order
            rowid = store.insert_item(item(f"k{n}", NOW), NOW + timedelta(hours=n))
            store.add_near_keys([(rowid, [n, 100 + n])])
    keys, since = [*range(10), *range(100, 110)], NOW - timedelta(days=1)
    assert len(store.near_candidates(keys, since, 16)) == 10  # the index is in memory
    with store.transaction():
        store.prune_near_keys(NOW + timedelta(hours=6, minutes=30))
    assert sorted(c.title for c, _ in store.near_candidates(keys, since, 16)) == ["k7", "k8", "k9"]
    with store.transaction():  # within the hour: not again
        store.prune_near_keys(NOW + timedelta(hours=7, minutes=10))
    assert store.db.execute("SELECT count(*) FROM near_keys").fetchone()[0] == 3
    with store.transaction():  # past every item
        store.prune_near_keys(NOW + timedelta(hours=20))
    assert store.db.execute("SELECT count(*) FROM near_keys").fetchone()[0] == 0


def test_key_lookups_see_keys_stored_before_and_after_the_first_lookup(tmp_path):
    """The keys held in memory (and the filter in front) never hide a stored key."""
    store = Store(tmp_path / "a.db")
    since = NOW - timedelta(days=1)
    with store.transaction():
        first = store.insert_item(item("a", NOW, source="x"), NOW)
        store.add_near_keys([(first, [5, 9])])
    assert store.near_candidates([7], since, 16) == []  # loads the set: 5 and 9
    assert [c.uid for c, _ in store.near_candidates([9, 7], since, 16)] == ["uid-x-a"]
    with store.transaction():
        second = store.insert_item(item("b", NOW, source="y"), NOW)
        store.add_near_keys([(second, [11])])
    assert [c.uid for c, _ in store.near_candidates([11], since, 16)] == ["uid-y-b"]
    reopened = Store(tmp_path / "a.db")
    assert len(reopened.near_candidates([5, 11], since, 16)) == 2
    with reopened.transaction():
        reopened.clear_near_keys()
    assert reopened.near_candidates([5, 11], since, 16) == []


def test_a_batch_commits_its_units_together_and_a_failing_unit_rolls_back_alone(tmp_path):
    """A unit is never half stored, and one that fails takes back only its own rows: the
    batch's other uncommitted units (other sources' pulls) stay and are committed."""
    store = Store(tmp_path / "a.db")
    other = sqlite3.connect(tmp_path / "a.db")  # what another process (status) sees
    since = NOW - timedelta(days=1)
    with store.batch(seconds=3600):
        with store.transaction():
            first = store.insert_item(item("a", NOW, source="x"), NOW)
            store.add_near_keys([(first, [5])])
        assert [c.uid for c, _ in store.near_candidates([5], since, 16)] == ["uid-x-a"]
        assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 0  # not yet
        with pytest.raises(RuntimeError), store.transaction():
            second = store.insert_item(item("b", NOW, source="y"), NOW)
            store.add_near_keys([(second, [6])])
            assert [c.uid for c, _ in store.near_candidates([6], since, 16)] == ["uid-y-b"]
            with store.transaction():  # a nested unit is a savepoint of its own
                store.set_meta("inner", "1")
            raise RuntimeError("a bug in the middle of a pull")
        assert [i.key for i in store.items()] == ["a"] and store.meta("inner") == ""
        # the failed unit's keys are forgotten in memory too, the first unit's kept
        assert [c.uid for c, _ in store.near_candidates([5, 6], since, 16)] == ["uid-x-a"]
        store.commit_pending()
        assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 1
        with store.transaction():
            store.insert_item(item("c", NOW), NOW)
            with pytest.raises(RuntimeError), store.transaction():
                store.set_meta("inner", "2")
                raise RuntimeError("a nested unit fails alone")
        assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 1
    keys = [r[0] for r in other.execute("SELECT key FROM items ORDER BY key")]
    assert keys == ["a", "c"] and store.meta("inner") == ""
    assert other.execute("SELECT count(*) FROM near_keys").fetchone()[0] == 1


def test_an_items_texts_are_derived_from_its_html_never_stored(tmp_path):
    import pickle
    from dataclasses import replace

    from aggregator.text.sanitize import clean_html

    html = clean_html("<p>L'IA &amp; la <b>crypto</b></p><ul><li>un</li><li>deux</li></ul>")
    full = replace(item("k", NOW), summary_html=html, content_html=html)
    assert full.summary_text == full.content_text == "L'IA & la crypto\nun\ndeux"
    assert b"deux\nun" not in pickle.dumps(full) and b"un\ndeux" not in pickle.dumps(full)
    store = Store(tmp_path / "a.db")
    with store.transaction():
        store.insert_item(full, NOW)
    (back,) = store.items()
    assert back == full and back.summary_text == full.summary_text
    row = store.db.execute("SELECT summary_text, content_text FROM items").fetchone()
    assert tuple(row) == ("", "")


def test_the_key_filter_never_forgets_a_key_and_rarely_says_maybe():
    from aggregator.storage.keyindex import KeyFilter

    rng = random.Random(7)
    stored = [rng.getrandbits(31) for _ in range(230_000)]  # 10,000 items' keys
    held = KeyFilter(len(stored), stored[:100_000])
    assert held.bits == 23  # 32 bits a key at least: 7.4 million
    held.add(iter(stored[100_000:]))
    assert held.maybe(stored).all()  # no false "no", ever
    items = [[rng.getrandbits(31) for _ in range(23)] for _ in range(5_000)]
    # full (the index makes a bigger one past this): 1.3% measured
    assert sum(held.maybe(keys).any() for keys in items) / len(items) < 0.02
    roomy = KeyFilter(4 * len(stored), stored)  # as the index makes them: 0.28%
    assert sum(roomy.maybe(keys).any() for keys in items) / len(items) < 0.006


def test_the_key_index_finds_what_a_plain_map_finds_across_its_runs():
    """Keys read back from their stored rows, added in many small batches (sorted into
    runs, runs merged) or both, some dropped: every (key, item) left found by each of its
    keys, once."""
    from collections import Counter

    from aggregator.storage.keyindex import KeyIndex, encode

    rng = random.Random(3)
    hot = list(range(50))  # keys many items share, as stock phrases do
    rows = [
        (item, [rng.choice(hot), *(rng.getrandbits(31) for _ in range(22)), 7])
        for item in range(1, 3_001)
    ]
    where: dict[int, set[int]] = {}

    def check(index: KeyIndex, stored: list) -> None:
        lists = [keys for _, keys in rng.sample(stored, min(50, len(stored)))]
        lists += [[5, 7, 7], [8], []]
        expected = [Counter(i for key in set(keys) for i in where.get(key, ())) for keys in lists]
        assert [Counter(index.items_sharing(keys)) for keys in lists] == expected
        assert [Counter(found) for found in index.items_sharing_many(lists)] == expected

    for item, keys in rows[:1_000]:
        for key in keys:
            where.setdefault(key, set()).add(item)
    grown, shapes = KeyIndex((item, encode(keys)) for item, keys in rows[:1_000]), set()
    for start in range(1_000, 3_000, 37):  # a document's worth at a time
        batch = rows[start : start + 37]
        grown.add(batch)
        for item, keys in batch:
            for key in keys:
                where.setdefault(key, set()).add(item)
        if start % 10 == 0:
            check(grown, rows[: start + 37])
            shapes.add(tuple(level for level, _ in grown._runs))
    assert (0,) in shapes and any(1 in levels and 0 in levels for levels in shapes)
    check(KeyIndex((item, encode(keys)) for item, keys in rows), rows)  # read back
    grown.drop_before(1_500)
    assert len(grown._runs) == 0
    where = {key: {i for i in items if i >= 1_500} for key, items in where.items()}
    check(grown, rows)
    grown.add(rows[:2])  # added again (the filter starts empty again)
    where[rows[0][1][1]].add(rows[0][0])
    assert Counter(grown.items_sharing(rows[0][1][1:2])) == Counter(where[rows[0][1][1]])
    assert encode([7, 5, 7, 2**31 - 1]) == "00000005000000077fffffff"
    huge = KeyIndex([(2**33 - 1, encode([9])), (5, encode([9, 4]))])  # rowids past 32 bits
    assert sorted(huge.items_sharing([9])) == [5, 2**33 - 1]
    with pytest.raises(ValueError, match="past 2"):
        huge.add([(2**33, [9])])
