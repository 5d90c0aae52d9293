"""Pick and order the stories of one curated feed from the stored copies."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, Union

from aggregator.dedupe import stand_in_order

if TYPE_CHECKING:  # names only: `check` chooses from light copies with no pull's model loaded
    from aggregator.model import CopyMeta, CuratedFeed, Item, Source

Copy = Union["Item", "CopyMeta"]  # whole, or as much as choosing reads (the store's `copies()`)
C = TypeVar("C", "Item", "CopyMeta")


class Story(NamedTuple, Generic[C]):
    """One article as published: the copy that stands for it, and the others. A
    Story[CopyMeta] is chosen from the store's light copies; publishing reads the chosen
    ones whole into a Story[Item], which is what renderers take."""

    id: str  # the story's stable id (uid of its first copy)
    item: C  # the stand-in
    tags: tuple[str, ...]  # union of every copy's tags, sorted
    others: tuple[C, ...] = ()

    @property
    def language(self) -> str:
        return self.item.language


def group(items: Iterable[C]) -> dict[str, list[C]]:
    """Copies grouped by story."""
    stories: dict[str, list[C]] = defaultdict(list)
    for item in items:
        stories[item.story or item.uid].append(item)
    return stories


def story_tags(stories: Mapping[str, Sequence[Copy]]) -> dict[str, frozenset[str]]:
    """Each story's tags: the union over its copies, since each outlet's text may reveal a
    different facet of the same story. Computed once for every feed of a pass."""
    return {
        story_id: copies[0].tag_names
        if len(copies) == 1
        else frozenset().union(*(c.tag_names for c in copies))
        for story_id, copies in stories.items()
    }


def newest_first(stories: Mapping[str, Sequence[Copy]]) -> list[tuple[datetime, str]]:
    """(date of its newest copy, id) of every story, newest first: the order `select`
    reads them in, stopping once no story left can be newer than those it holds.
    Computed once for every feed of a pass."""
    return sorted(
        (
            (copies[0].published if len(copies) == 1 else max(c.published for c in copies), sid)
            for sid, copies in stories.items()
        ),
        reverse=True,
    )


def tags_fit(feed: CuratedFeed, tags: frozenset[str]) -> bool:
    """Whether a story with these tags belongs in the feed by its any/all/none tags."""
    if feed.any_tags and not tags.intersection(feed.any_tags):
        return False
    return tags.issuperset(feed.all_tags) and not tags.intersection(feed.none_tags)


def eligible(copy: Copy, feed: CuratedFeed, sources: Container[str], default_language: str) -> bool:
    """Whether a copy may stand for its story in the feed: from a configured source, and
    from the feed's `sources` and in its `languages` when it names them."""
    return (
        copy.source in sources
        and (not feed.sources or copy.source in feed.sources)
        and (not feed.languages or (copy.language or default_language) in feed.languages)
    )


def select(
    stories: Mapping[str, list[C]],
    feed: CuratedFeed,
    sources: Mapping[str, Source],
    default_language: str,
    tags_of: Mapping[str, frozenset[str]] | None = None,
    order: list[tuple[datetime, str]] | None = None,
) -> list[Story[C]]:
    """The feed's stories, newest first, at most `max_items`.

    Only copies from configured sources (and the feed's `sources`/`languages`, when set) may
    stand for a story; its tags are the union over all its copies (`tags_of`, when given).
    `order` is `newest_first(stories)`, when given.
    """
    if tags_of is None:
        tags_of = story_tags(stories)
    if order is None:
        order = newest_first(stories)

    def ranked(c: C) -> tuple[Any, ...]:
        return stand_in_order(c, sources)

    # the newest max_items (by their stand-in's date, then id) in a heap, oldest on top; a
    # stand-in is never newer than its story's newest copy, so the walk stops at the first
    # story whose newest copy is older than the heap's oldest, once the heap is full
    kept: list[tuple[datetime, str, C, list[C]]] = []
    limit = feed.max_items
    for newest, story_id in order if limit > 0 else ():
        if len(kept) == limit and (newest, story_id) < kept[0][:2]:
            break
        if not tags_fit(feed, tags_of[story_id]):
            continue
        copies = stories[story_id]
        if len(copies) == 1:  # most stories: one copy, no other to rank
            if not eligible(copies[0], feed, sources, default_language):
                continue
            best = copies[0]
        else:
            candidates = [c for c in copies if eligible(c, feed, sources, default_language)]
            if not candidates:
                continue
            best = min(candidates, key=ranked)
        entry = (best.published, story_id, best, copies)
        if len(kept) < limit:
            heapq.heappush(kept, entry)
        elif entry[:2] > kept[0][:2]:
            heapq.heapreplace(kept, entry)
    out = []
    for _, story_id, best, copies in sorted(kept, key=lambda f: f[:2], reverse=True):
        others = sorted((c for c in copies if c is not best and c.source in sources), key=ranked)
        out.append(Story(story_id, best, tuple(sorted(tags_of[story_id])), tuple(others)))
    return out


def why_stand_in(copies: list[Item], sources: Mapping[str, Source]) -> tuple[Item, str]:
    """The copy that stands for a story and the rule that chose it, for `explain`."""
    ranked = sorted(
        (c for c in copies if c.source in sources),
        key=lambda c: stand_in_order(c, sources),
    )
    if not ranked:
        return copies[0], "no copy comes from a configured source"
    best = ranked[0]
    if len(ranked) == 1:
        return best, "the only copy"
    second = ranked[1]
    a, b = sources[best.source], sources[second.source]
    if a.priority != b.priority:
        return best, f"highest source priority ({a.priority} over {b.priority})"
    if best.published != second.published:
        return best, "same priority; published first"
    return best, "same priority and date; its source is listed first in config.toml"
