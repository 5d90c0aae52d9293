"""`aggregator preview`: what an edited config would change, before it goes live.

Pure: the candidate config, the stored items (with the tags the live rules gave them) and
what each published feed holds now come in; the differences come out: items entering and
leaving each feed, tags items gain or lose, feeds created, emptied or removed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from aggregator.model import Config

if TYPE_CHECKING:  # what a pull makes (model/items.py): loaded when a pull runs
    from aggregator.model import Item
from aggregator.select import group, select
from aggregator.tagging import tagger_for

EXAMPLES = 5  # items listed per tag change
# Stored items re-tagged, newest first: a feed shows at most its max_items newest stories,
# and `preview` stays a few seconds and ~100 MB whatever the store holds (all 400,000
# items of a flooded store took 29 s and 1.1 GB).
READ_AT_MOST = 5000


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    source: str


@dataclass
class FeedChange:
    name: str
    status: str  # "created", "removed", "emptied", "changed", "unchanged"
    enter: list[Entry] = field(default_factory=list)
    leave: list[Entry] = field(default_factory=list)
    items_before: int = 0
    items_after: int = 0


@dataclass
class TagChange:
    tag: str
    gained: int = 0
    lost: int = 0
    examples_gained: list[str] = field(default_factory=list)
    examples_lost: list[str] = field(default_factory=list)


@dataclass
class Preview:
    feeds: list[FeedChange]
    tags: list[TagChange]
    items_read: int = 0  # the newest stored items, re-tagged with the candidate rules
    items_stored: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def preview(
    config: Config, items: list[Item], published: dict[str, list[Entry]], stored: int = 0
) -> Preview:
    """What `config` would publish from `items` (the newest of `stored`), against what is
    `published`."""
    tagger = tagger_for(config)
    sources = {s.name: s for s in config.sources}
    retagged: list[Item] = []
    tag_changes: dict[str, TagChange] = {}
    for item in items:
        src = sources.get(item.source)
        matches = tagger.tag_of(item, src)
        had, has = item.tag_names, frozenset(t.tag for t in matches)
        for tag in has - had:
            gain = tag_changes.setdefault(tag, TagChange(tag))
            gain.gained += 1
            if len(gain.examples_gained) < EXAMPLES:
                gain.examples_gained.append(item.title)
        for tag in had - has:
            loss = tag_changes.setdefault(tag, TagChange(tag))
            loss.lost += 1
            if len(loss.examples_lost) < EXAMPLES:
                loss.examples_lost.append(item.title)
        retagged.append(replace(item, tags=matches))
    stories = group(retagged)
    changes: list[FeedChange] = []
    for feed in config.feeds:
        chosen = select(stories, feed, sources, config.default_language)
        after = [Entry(s.id, s.item.title, s.item.source) for s in chosen]
        before = published.get(feed.name)
        if before is None:
            changes.append(FeedChange(feed.name, "created", enter=after, items_after=len(after)))
            continue
        old_ids, new_ids = {e.id for e in before}, {e.id for e in after}
        change = FeedChange(
            feed.name,
            "unchanged",
            enter=[e for e in after if e.id not in old_ids],
            leave=[e for e in before if e.id not in new_ids],
            items_before=len(before),
            items_after=len(after),
        )
        if before and not after:
            change.status = "emptied"
        elif change.enter or change.leave:
            change.status = "changed"
        changes.append(change)
    names = {f.name for f in config.feeds}
    for name, gone in sorted(published.items()):
        if name not in names:
            changes.append(FeedChange(name, "removed", leave=gone, items_before=len(gone)))
    by_tag = sorted(tag_changes.values(), key=lambda c: c.tag)
    return Preview(changes, by_tag, len(items), max(stored, len(items)))


def as_text(result: Preview, candidate: object = "config.toml", live: object = "") -> str:
    """The preview for a terminal; its summary names the config previewed (`candidate`)
    and, when it is another file, the live one it is compared with."""
    lines = []
    for f in result.feeds:
        head = f"{f.name}: {f.status}"
        if f.status != "unchanged":
            head += f" ({f.items_before} -> {f.items_after} items)"
        lines.append(head)
        lines += [f"  + {e.title} ({e.source})" for e in f.enter]
        lines += [f"  - {e.title} ({e.source})" for e in f.leave]
    if result.tags:
        lines.append("")
        lines.append("tags:")
        for t in result.tags:
            lines.append(f"  {t.tag}: +{t.gained} items, -{t.lost} items")
            lines += [f"    + {title}" for title in t.examples_gained]
            lines += [f"    - {title}" for title in t.examples_lost]
    counts = Counter(f.status for f in result.feeds)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines.append("")
    against = f", against what {live} published" if live and str(live) != str(candidate) else ""
    read = ""
    if result.items_stored > result.items_read:
        read = f" (from the newest {result.items_read} of {result.items_stored} stored items)"
    lines.append(f"{candidate}{against}: {len(result.feeds)} feeds: {summary}{read}")
    return "\n".join(lines)
