"""Story decisions as a pure function: a document's items and a view -> intents.

No store here: the view is built by hand, as a backend would read it, and the intents are
checked for what they say (the writer is in tests/test_storage_contract.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import escape

from aggregator.dedupe.decide import View, decide_document, may_be_new
from aggregator.ingest.stories import near_of
from aggregator.model import (
    Candidate,
    CopyText,
    Dedupe,
    Intent,
    Item,
    Kind,
    Known,
    Lookups,
    Near,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)
POLICY = Dedupe(window=72 * 3600, similarity=0.8)
LEAD = (
    "Nvidia said on Wednesday it would invest up to 5 billion dollars in a new data centre "
    "campus in northern France, its largest commitment in Europe so far, as demand for "
    "chips to train artificial intelligence models keeps outpacing supply."
)


def item(source: str, key: str, title: str = "", text: str = "", **kw: object) -> Item:
    base = Item(
        source=source, key=key, uid=f"uid-{source}-{key}", link=f"https://{source}.example/{key}",
        canonical=f"https://{source}.example/{key}", title=title or f"Title {key}",
        summary_html=escape(text or f"Nothing alike {source} {key}"), content_html="",
        published=NOW, updated=NOW, content_hash=f"hash-{key}",
        story=f"uid-{source}-{key}",
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def known(i: Item, story: str = "") -> Known:
    return Known(i.uid, i.source, i.key, i.canonical, i.content_hash, story or i.uid)


def decide(
    items: list[Item], lookups: Lookups | None = None, candidates: dict | None = None
) -> list[Intent]:
    nears = [near_of(i) for i in items]
    view = View(lookups or Lookups(), candidates or {})
    return decide_document(items, nears, view, cutoff=CUTOFF, near=POLICY)


def test_a_new_item_starts_its_own_story_with_its_keys() -> None:
    (intent,) = decide([item("a", "1", "Nvidia to invest $5bn in France", LEAD)])
    assert intent.kind is Kind.NEW and intent.item.story == "uid-a-1"
    assert intent.near.print and intent.near.keys  # written with it: the index finds it


def test_stored_items_are_updated_or_left_and_keep_their_story() -> None:
    stored = item("a", "1")
    lookups = Lookups(by_key={"1": known(stored, "story-x")})
    same, edited = stored, replace(stored, content_hash="hash-2")
    assert decide([same], lookups)[0].kind is Kind.UNCHANGED
    (intent,) = decide([edited], lookups)
    assert (intent.kind, intent.target) == (Kind.UPDATED, stored.uid)


def test_a_link_stored_by_another_source_makes_a_copy_of_its_story() -> None:
    theirs = item("wire", "9", canonical="https://news.example/x")
    mine = item("paper", "1", canonical="https://news.example/x")
    (intent,) = decide([mine], Lookups(by_url={"https://news.example/x": known(theirs, "s9")}))
    assert intent.kind is Kind.DUPLICATE
    assert (intent.item.story, intent.item.matched, intent.item.match_reason) == (
        "s9",
        theirs.uid,
        "same link",
    )


def test_a_feed_that_changed_guid_updates_its_own_copy_by_link() -> None:
    old = item("a", "old-guid", canonical="https://a.example/x")
    new = item("a", "new-guid", canonical="https://a.example/x", content_hash="other")
    (intent,) = decide([new], Lookups(by_url={"https://a.example/x": known(old)}))
    assert (intent.kind, intent.target) == (Kind.UPDATED, old.uid)


def test_items_of_one_document_see_the_ones_before_them() -> None:
    first = item("a", "1", canonical="https://a.example/x")
    again = replace(first, content_hash="changed")  # the same guid listed twice
    by_link = item("a", "2", canonical="https://a.example/x")  # another guid, same link
    intents = decide([first, again, by_link])
    assert [i.kind for i in intents] == [Kind.NEW, Kind.UPDATED, Kind.UPDATED]
    assert intents[1].target == intents[2].target == first.uid


def test_old_and_pruned_items_are_skipped_and_need_no_candidates() -> None:
    old = item("a", "1", published=CUTOFF - timedelta(days=1))
    pruned = item("a", "2")
    fresh = item("a", "3")
    lookups = Lookups(pruned_keys=frozenset({("a", "2")}))
    assert may_be_new([old, pruned, fresh], lookups, CUTOFF) == [2]
    kinds = [i.kind for i in decide([old, pruned, fresh], lookups)]
    assert kinds == [Kind.SKIPPED, Kind.SKIPPED, Kind.NEW]


def test_another_sources_copy_telling_the_same_story_joins_it() -> None:
    wire = item("wire", "1", "Nvidia to invest $5bn in France", LEAD)
    paper = item("paper", "2", "Nvidia plans $5 billion French AI campus", LEAD)
    candidate = Candidate(CopyText.of(wire), near_of(wire).print)
    (intent,) = decide([paper], candidates={"2": [candidate]})
    assert intent.kind is Kind.DUPLICATE and intent.item.story == wire.uid
    assert intent.item.matched == wire.uid and intent.item.similarity
    assert intent.item.match_reason  # why: shown by `explain`


def test_a_copy_from_the_same_source_is_another_story() -> None:
    """An outlet does not syndicate itself: two of its items telling the same news are two
    entries of its feed (a correction, a follow-up)."""
    wire = item("wire", "1", "Nvidia to invest $5bn in France", LEAD)
    again = item("wire", "2", "Nvidia plans $5 billion French AI campus", LEAD)
    (intent,) = decide([again], candidates={"2": [Candidate(CopyText.of(wire), "")]})
    assert intent.kind is Kind.NEW


def test_without_a_near_policy_only_exact_keys_count() -> None:
    wire = item("wire", "1", "Nvidia to invest $5bn in France", LEAD)
    paper = item("paper", "2", "Nvidia plans $5 billion French AI campus", LEAD)
    view = View(Lookups(), {"2": [Candidate(CopyText.of(wire), "")]})
    (intent,) = decide_document([paper], [Near()], view, cutoff=CUTOFF, near=None)
    assert intent.kind is Kind.NEW
