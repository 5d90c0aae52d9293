"""Identity of items and stories: decides new / updated / unchanged / duplicate.

Pure (`decide.py`): storage reads what it holds under a document's keys and the
near-duplicate candidates, `decide_document` says what to write, storage writes it. A story
is the set of copies of one article; its id is the uid of the first copy ever seen, so the
published id never changes when a better copy arrives later. `similarity.py` fingerprints
and compares texts; `stand_in_order` picks the copy a feed shows for a story.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.model import Source

if TYPE_CHECKING:  # what a pull makes (model/items.py): loaded when a pull runs
    from aggregator.model import CopyMeta, Item

# The version of the near-duplicate keys (dedupe/similarity.py computes them); stored keys
# of another version are rebuilt. 1: blake2b of each band, 16x4 + 12x3; 2: 64-bit keys,
# 10x3 + 8x3; 3: 31 bits; 4: the current ones.
KEYS_VERSION = "4"


def stand_in_order(
    copy: Item | CopyMeta, sources: Mapping[str, Source]
) -> tuple[int, datetime, int, str]:
    """Sort key of the contract's rule: highest priority, then earliest, then config order.

    Deterministic (the uid breaks the last ties), so a stand-in never flips between passes.
    """
    src = sources.get(copy.source)
    priority = src.priority if src else 0
    order = src.order if src else 1 << 30
    return (-priority, copy.published, order, copy.uid)
