"""Story decisions for one document: its items and what storage holds -> what to write.

Pure. The runner reads a `View` from storage (the copies under the items' keys and links,
the tombstones, the near-duplicate candidates of the items that may be new), calls
`decide_document`, and storage writes the `Intent`s in the same transaction. Nothing here
reads a database or a clock, so one story per story is decided by one function a second
backend shares.

    stored under its source and key        -> updated (content changed) or unchanged
    stored under its link, same source     -> updated or unchanged (a feed that changed guid)
    stored under its link, another source  -> duplicate: a copy of that story
    gone since (pruned) or older than kept -> skipped
    another source's recent copy tells the same story (similarity) -> duplicate
    otherwise                              -> new: a story of its own, named by its uid
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from aggregator.model import Candidate, CopyText, Dedupe, Intent, Item, Kind, Known, Lookups, Near


@dataclass(frozen=True)
class Decision:
    """What an item is, given the copies stored under its two exact keys."""

    kind: Kind
    story: str  # the story the item belongs to
    target: Known | None = None  # the stored copy to update, for UPDATED / UNCHANGED


def decide(item: Item, by_key: Known | None, by_url: Known | None) -> Decision:
    """What storing `item` means, given the copies found under its two keys."""
    same = by_key or (by_url if by_url is not None and by_url.source == item.source else None)
    if same is not None:
        kind = Kind.UNCHANGED if same.content_hash == item.content_hash else Kind.UPDATED
        return Decision(kind, same.story, same)
    if by_url is not None:
        return Decision(Kind.DUPLICATE, by_url.story)
    return Decision(Kind.NEW, item.uid)


@dataclass(frozen=True)
class View:
    """What storage holds that one document's items are decided against."""

    lookups: Lookups  # copies under the items' keys and links, and what was pruned
    candidates: Mapping[str, Sequence[Candidate]]  # item key -> copies that may match


def may_be_new(items: Sequence[Item], lookups: Lookups, cutoff: datetime) -> list[int]:
    """Indexes of the items that may start or join a story: not stored under their key,
    not pruned, not older than kept. Only these need near-duplicate candidates."""
    return [
        n
        for n, item in enumerate(items)
        if item.key not in lookups.by_key and not _not_kept(item, lookups, cutoff)
    ]


def _not_kept(item: Item, lookups: Lookups, cutoff: datetime) -> bool:
    """Older than kept, or stored once and pruned: a new copy of it is skipped."""
    return item.published < cutoff or lookups.pruned(item.source, item.key, item.canonical)


def decide_document(
    items: Sequence[Item],
    nears: Sequence[Near],
    view: View,
    *,
    cutoff: datetime,
    near: Dedupe | None,
) -> list[Intent]:
    """One intent per item, in order. Items of the document see the ones before them: a
    second entry with the same guid or link updates the first instead of copying it."""
    by_key = dict(view.lookups.by_key)
    by_url = dict(view.lookups.by_url)
    intents = []
    for item, prints in zip(items, nears, strict=True):
        known = by_key.get(item.key)
        if known is None and _not_kept(item, view.lookups, cutoff):
            intents.append(Intent(Kind.SKIPPED, item))
            continue
        url_copy = None if known else by_url.get(item.canonical) if item.canonical else None
        decision = decide(item, known, url_copy)
        if decision.kind is Kind.UNCHANGED:
            intents.append(Intent(Kind.UNCHANGED, item))
            continue
        if decision.kind is Kind.UPDATED:
            target = decision.target.uid if decision.target else ""
            intents.append(Intent(Kind.UPDATED, item, target=target))
            continue
        kind = decision.kind
        if kind is Kind.DUPLICATE and url_copy is not None:
            item = replace(
                item,
                story=decision.story,
                similarity=1.0,
                matched=url_copy.uid,
                match_reason="same link",
            )
        else:
            match = best_match(item, prints, view.candidates.get(item.key, ()), near)
            if match is not None:
                copy, score, why = match
                item = replace(
                    item, story=copy.story, similarity=score, matched=copy.uid, match_reason=why
                )
                kind = Kind.DUPLICATE
            elif item.story != decision.story:
                item = replace(item, story=decision.story)
        intents.append(Intent(kind, item, prints))
        mine = Known(item.uid, item.source, item.key, item.canonical, item.content_hash, item.story)
        by_key[item.key] = mine
        if item.canonical:
            by_url.setdefault(item.canonical, mine)
    return intents


def best_match(
    item: Item, prints: Near, candidates: Sequence[Candidate], near: Dedupe | None
) -> tuple[CopyText, float, str] | None:
    """The candidate from another source that tells the same story best: (copy, score, why)."""
    if near is None or not candidates:
        return None
    from aggregator.dedupe import similarity  # numpy: loaded once a candidate exists
    from aggregator.normalize import lead_text

    best: tuple[CopyText, float, str] | None = None
    fp = None  # read from the item's print for the first candidate (most items have none)
    for candidate in candidates:
        copy = candidate.copy
        if copy.source == item.source:
            continue  # an outlet does not syndicate itself: two of its items are two stories
        if fp is None:
            fp = similarity.loads(prints.print) or similarity.fingerprint(
                item.title, lead_text(item)
            )
        known = similarity.loads(candidate.near_print) or similarity.fingerprint(
            copy.title, copy.lead
        )
        verdict = similarity.compare(fp, known, near.similarity)
        if verdict.same and (best is None or verdict.score > best[1]):
            best = (copy, verdict.score, verdict.why)
    return best
