"""What every storage backend must do, through the `Storage` port only.

The PostgreSQL backend runs it on a real server the fixture starts (tests/pg.py). Each
test opens a fresh store; nothing here reaches into a backend's tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.model import Intent, Item, Kind, Near, PullOutcome, SourceRecord, TagMatch
from aggregator.storage import Storage, open_store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _sqlite(tmp: Path) -> Storage:
    return open_store(tmp / "contract.db")


def _postgresql(database: str) -> Storage:
    return open_store(database)


# each backend's opener takes where its database is: a folder (SQLite), a URI (PostgreSQL)
BACKENDS: dict[str, Callable[[Any], Storage]] = {"sqlite": _sqlite, "postgresql": _postgresql}


@pytest.fixture(params=sorted(BACKENDS))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Storage]]:
    """Opens the backend's store (again, for persistence), closing each at the end."""
    opened: list[Storage] = []
    where: Any = tmp_path
    if request.param == "postgresql":  # a real server (tests/pg.py), a fresh database
        where = request.getfixturevalue("postgres").database()

    def open_() -> Storage:
        store = BACKENDS[request.param](where)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Callable[[], Storage]) -> Storage:
    return opener()


def item(key: str, minutes: int = 0, source: str = "s", **kw: object) -> Item:
    at = NOW - timedelta(minutes=minutes)
    base = Item(
        source=source,
        key=key,
        uid=f"uid-{source}-{key}",
        link=f"https://{source}.example/{key}",
        canonical=f"https://{source}.example/{key}",
        title=f"Title {key}",
        summary_html=f"<p>Summary {key}</p>",
        content_html="",
        published=at,
        updated=at,
        language="en",
        content_hash=f"hash-{key}",
        story=f"uid-{source}-{key}",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_an_item_stored_is_read_back_whole_and_by_each_way(store: Storage) -> None:
    tags = (TagMatch("crypto", "keyword", "bitcoin"),)
    a = item("a", 10, tags=tags, authors=("Ann",), categories=("Markets",))
    with store.transaction():
        store.insert_item(a, NOW)
    assert store.items() == [a]
    assert store.items_by_uid([a.uid]) == {a.uid: a}
    assert store.story_items(a.story) == [a]
    assert store.items_by_link(a.canonical, a.link) == [a]
    assert store.count_items() == 1
    (copy,) = store.copies()
    assert (copy.uid, copy.story, copy.source, copy.tag_names) == (a.uid, a.story, "s", {"crypto"})
    assert store.titles(5) == [a.title]
    found = store.lookups([a])
    assert found.by_key[a.key].uid == a.uid and found.by_url[a.canonical].uid == a.uid
    assert store.content_hashes("s") == ["hash-a"]


def test_the_newest_copies_and_titles_are_read_alone(store: Storage) -> None:
    """`check` reads only the newest copies, light, and their titles (issue #20)."""
    with store.transaction():
        for n in range(5):
            store.insert_item(item(f"k{n}", n, title=f"T{n}"), NOW)
    # k0 is the newest (published n minutes ago)
    assert [c.uid for c in store.copies(newest=2)] == ["uid-s-k1", "uid-s-k0"]  # oldest first
    assert [c.uid for c in store.copies()] == [f"uid-s-k{n}" for n in range(4, -1, -1)]
    assert store.titles(3) == ["T0", "T1", "T2"]  # newest first


def test_a_hostile_field_is_stored_and_found_again(store: Storage) -> None:
    """A NUL in a field never fails a pull's store step. normalize drops it from what
    items hold (XML cannot hold it either); a source's error text or a value that got past
    it is stored all the same (PostgreSQL's text cannot hold NUL: that backend drops it)."""
    a = item("one", authors=("Eve\x00",), categories=("x\x00y",))
    with store.transaction():
        store.insert_item(a, NOW)
    (got,) = store.items()
    assert got.uid == a.uid and got.authors[0].replace("\x00", "") == "Eve"
    with store.transaction():
        store.record_pull(PullOutcome(source="s\x00", ok=False, error="bad\x00byte"), "u", NOW)


def test_a_unit_that_fails_stores_nothing_and_one_that_ends_stores_all(store: Storage) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_item(item("a"), NOW)
        raise RuntimeError("a pull that fails halfway")
    assert store.count_items() == 0
    with store.transaction():
        store.insert_item(item("a"), NOW)
        store.insert_item(item("b"), NOW)
    assert store.count_items() == 2
    assert not store.in_transaction


def test_what_is_committed_survives_closing(opener: Callable[[], Storage]) -> None:
    first = opener()
    with first.transaction():
        first.insert_item(item("a"), NOW)
        first.set_meta("rules", "print")
    first.close()
    again = opener()
    assert [i.key for i in again.items()] == ["a"] and again.meta("rules") == "print"
    with again.transaction():
        again.set_meta("node:x", "1")
        again.set_meta("node:y", "2")
        again.set_meta("Node:z", "3")
    assert again.metas("node:") == {"node:x": "1", "node:y": "2"}


def test_updates_tags_and_pages(store: Storage) -> None:
    with store.transaction():
        for n in range(5):
            store.insert_item(item(f"k{n}", n), NOW)
    edited = item("k0", title="Edited title")
    tags = (TagMatch("ai", "keyword", "AI"),)
    with store.transaction():
        store.update_item(edited.uid, edited)
        store.set_tags(edited.uid, tags)
    got = store.items_by_uid([edited.uid])[edited.uid]
    assert (got.title, got.tags) == ("Edited title", tags)
    seen, after = [], 0
    while page := store.items_page(after, 2):
        after = page[-1][0]
        seen += [i.key for _, i in page]
    assert sorted(seen) == [f"k{n}" for n in range(5)]
    assert [i.key for i in store.items(newest=2)] == ["k1", "k0"]  # oldest first
    assert [i.key for i in store.items(since=NOW - timedelta(minutes=1))] == ["k1", "k0"]
    assert store.items(sources=["other"]) == []


def test_pruned_items_leave_tombstones(store: Storage) -> None:
    old, new = item("old", 60 * 24 * 40), item("new")
    with store.transaction():
        store.insert_item(old, NOW)
        store.insert_item(new, NOW)
    with store.transaction():
        assert store.prune(NOW - timedelta(days=30), NOW) == 1
    assert [i.key for i in store.items()] == ["new"]
    found = store.lookups([old])
    assert found.pruned(old.source, old.key, old.canonical)  # it never comes back as new
    assert not found.pruned("s", "never-seen", "")


def test_meta_keys_can_be_listed_by_prefix_and_forgotten(store: Storage) -> None:
    with store.transaction():
        store.set_meta("node:a", "1")
        store.set_meta("node:b", "2")
        store.set_meta("other", "3")
    assert store.metas("node:") == {"node:a": "1", "node:b": "2"}
    with store.transaction():
        store.forget_meta("node:a")
    assert store.metas("node:") == {"node:b": "2"} and store.meta("node:a") == ""


def test_a_source_keeps_its_own_retention_and_its_newest_items(store: Storage) -> None:
    """prune's per-source rules: "weekly" keeps its newest 2 however old, "long" keeps 60
    days, the others the global 30; prunable says the same count first."""
    day = 60 * 24
    kept = [item(f"w{d}", d * day, source="weekly") for d in (40, 50)]
    gone = [item("w60", 60 * day, source="weekly"), item("s40", 40 * day)]
    long = [item("l40", 40 * day, source="long")]
    with store.transaction():
        for it in [*kept, *gone, *long]:
            store.insert_item(it, NOW)
    rules = [("weekly", NOW - timedelta(days=30), 2), ("long", NOW - timedelta(days=60), 0)]
    assert store.prunable(NOW - timedelta(days=30), rules) == 2
    with store.transaction():
        assert store.prune(NOW - timedelta(days=30), NOW, rules) == 2
    assert sorted(i.key for i in store.items()) == ["l40", "w40", "w50"]
    assert store.lookups([gone[0]]).pruned("weekly", "w60", gone[0].canonical)
    assert store.size_bytes() > 0


def test_a_source_remembers_its_pulls_and_schedule(store: Storage) -> None:
    assert store.source_state("s").consecutive_failures == 0  # never pulled: defaults
    ok = PullOutcome("s", ok=True, status=200, new=3)
    with store.transaction():
        store.record_pull(ok, "https://s.example/feed", NOW, etag='"v1"', feed_title="S")
    failed = PullOutcome("s", ok=False, status=500, error_kind="http_500", error="boom")
    later = NOW + timedelta(minutes=15)
    with store.transaction():
        store.record_pull(failed, "https://s.example/feed", later)
        store.set_next_pull("s", later + timedelta(minutes=30), "backoff after 1 failure")
    state = store.source_state("s")
    assert (state.etag, state.feed_title, state.consecutive_failures) == ('"v1"', "S", 1)
    assert state.next_pull == later + timedelta(minutes=30)
    assert state.next_reason == "backoff after 1 failure"
    (record,) = store.source_rows()
    assert isinstance(record, SourceRecord)
    assert (record.last_ok, record.last_pull) == (NOW, later)
    assert (record.last_status, record.last_error_kind, record.last_error) == (
        500,
        "http_500",
        "boom",
    )
    assert store.source_states()["s"] == state
    with store.transaction():
        store.set_gone("s", "entry-print")
        store.set_redirect("s", "https://new.example/feed", 3, "entry-print")
    moved = store.source_state("s")
    assert (moved.gone_print, moved.redirect_url, moved.redirect_count) == (
        "entry-print",
        "https://new.example/feed",
        3,
    )
    with store.transaction():
        store.reset_source("s")
    reset = store.source_state("s")
    assert (reset.consecutive_failures, reset.gone_print, reset.next_pull) == (0, "", None)


def test_requests_reach_the_daemon_once(store: Storage) -> None:
    asked = store.ask("refresh", "s", NOW.timestamp())
    assert store.pending(asked)
    assert store.take_requests() == [("refresh", "s")]
    assert not store.pending(asked)
    assert store.take_requests() == []


def test_the_near_duplicate_index_finds_items_sharing_keys(store: Storage) -> None:
    a, b = item("a"), item("b")
    with store.transaction():
        ra = store.insert_item(a, NOW, near_print="print-a")
        rb = store.insert_item(b, NOW, near_print="print-b")
        store.add_near_keys([(ra, [1, 2, 3]), (rb, [3, 4])])
    since = NOW - timedelta(hours=1)
    found = store.near_candidates_many([[1], [3], [9], [1, 2, 3]], since, 5)
    assert [sorted(c.copy.uid for c in cs) for cs in found[:3]] == [[a.uid], [a.uid, b.uid], []]
    best = found[3][0]
    assert (best.copy.uid, best.near_print) == (a.uid, "print-a")  # the most keys first
    assert store.near_candidates_many([[1], [4]], NOW + timedelta(hours=1), 5) == [[], []]
    assert {rowid for rowid, _ in store.near_texts(since)} == {ra, rb}
    with store.transaction():
        store.clear_near_keys()
    assert store.near_candidates_many([[1, 3]], since, 5) == [[]]


def test_intents_are_written_as_decided(store: Storage) -> None:
    """New copies and copies joining a story are inserted with their keys, an update
    replaces its target, unchanged and skipped write nothing."""
    a, b = item("a"), item("b")
    first = [Intent(Kind.NEW, a, Near("print-a", (1, 2))), Intent(Kind.SKIPPED, b)]
    with store.transaction():
        store.write(first, NOW)
    assert [i.uid for i in store.items()] == [a.uid]
    copy = replace(item("c"), story=a.uid, similarity=0.9, matched=a.uid, match_reason="lead")
    edited = replace(a, title="Edited", content_hash="hash-a2")
    later = [
        Intent(Kind.DUPLICATE, copy, Near("print-c", (2,))),
        Intent(Kind.UPDATED, edited, target=a.uid),
        Intent(Kind.UNCHANGED, b),
    ]
    with store.transaction():
        store.write(later, NOW)
    got = store.items_by_uid([a.uid, copy.uid])
    assert got[a.uid].title == "Edited" and got[copy.uid] == copy
    assert sorted(i.uid for i in store.story_items(a.uid)) == sorted([a.uid, copy.uid])
    assert store.count_items() == 2
    assert store.count_stories() == 1  # two copies, one story
    found = store.near_candidates_many([[2]], NOW - timedelta(hours=1), 5)[0]
    assert sorted(c.copy.uid for c in found) == sorted([a.uid, copy.uid])
