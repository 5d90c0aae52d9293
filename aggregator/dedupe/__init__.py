"""Identity of items and stories: decides new / updated / unchanged / duplicate.

Pure: the pipeline looks up what the store already holds under the item's keys (same
source and key; same canonical link from any source) and passes it in. A story is the set
of copies of one article; its id is the uid of the first copy ever seen, so the published
id never changes when a better copy arrives later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aggregator.model import CopyMeta, Item, Known, Source

# The version of the near-duplicate keys (dedupe/similarity.py computes them); stored keys
# of another version are rebuilt. 1: blake2b of each band, 16x4 + 12x3; 2: 64-bit keys,
# 10x3 + 8x3; 3: 31 bits; 4: the current ones.
KEYS_VERSION = "4"


@dataclass(frozen=True)
class Decision:
    kind: str  # "new", "updated", "unchanged" or "duplicate"
    story: str  # the story the item belongs to
    target: Known | None = None  # the stored copy to update, for "updated"/"unchanged"


def decide(item: Item, by_key: Known | None, by_url: Known | None) -> Decision:
    """What storing `item` means, given the copies found under its two keys."""
    same = by_key or (by_url if by_url is not None and by_url.source == item.source else None)
    if same is not None:
        kind = "unchanged" if same.content_hash == item.content_hash else "updated"
        return Decision(kind, same.story, same)
    if by_url is not None:
        return Decision("duplicate", by_url.story)
    return Decision("new", item.uid)


def stand_in_order(copy: Item | CopyMeta, sources: Mapping[str, Source]) -> tuple:
    """Sort key of the contract's rule: highest priority, then earliest, then config order.

    Deterministic (the uid breaks the last ties), so a stand-in never flips between passes.
    """
    src = sources.get(copy.source)
    priority = src.priority if src else 0
    order = src.order if src else 1 << 30
    return (-priority, copy.published, order, copy.uid)
