"""Pick and order the stories of one curated feed from the stored copies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aggregator.dedupe import stand_in_order
from aggregator.model import CuratedFeed, Item, Source


@dataclass(frozen=True)
class Story:
    """One article as published: the copy that stands for it, and the others."""

    id: str  # the story's stable id (uid of its first copy)
    item: Item  # the stand-in
    tags: tuple[str, ...]  # union of every copy's tags, sorted
    others: tuple[Item, ...] = ()

    @property
    def language(self) -> str:
        return self.item.language


def group(items: Iterable[Item]) -> dict[str, list[Item]]:
    """Copies grouped by story."""
    stories: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        stories[item.story or item.uid].append(item)
    return stories


def select(
    stories: Mapping[str, list[Item]],
    feed: CuratedFeed,
    sources: Mapping[str, Source],
    default_language: str,
) -> list[Story]:
    """The feed's stories, newest first, at most `max_items`.

    Only copies from configured sources (and the feed's `sources`/`languages`, when set) may
    stand for a story; its tags are the union over all its copies, since each outlet's text
    may reveal a different facet of the same story.
    """
    out: list[Story] = []
    for story_id, copies in stories.items():
        eligible = [
            c
            for c in copies
            if c.source in sources
            and (not feed.sources or c.source in feed.sources)
            and (not feed.languages or (c.language or default_language) in feed.languages)
        ]
        if not eligible:
            continue
        tags = frozenset(t for c in copies for t in c.tag_names)
        if feed.any_tags and not tags.intersection(feed.any_tags):
            continue
        if not tags.issuperset(feed.all_tags) or tags.intersection(feed.none_tags):
            continue
        best = min(eligible, key=lambda c: stand_in_order(c, sources))
        others = tuple(
            sorted(
                (c for c in copies if c is not best and c.source in sources),
                key=lambda c: stand_in_order(c, sources),
            )
        )
        out.append(Story(story_id, best, tuple(sorted(tags)), others))
    out.sort(key=lambda s: (s.item.published, s.id), reverse=True)
    return out[: feed.max_items]


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
