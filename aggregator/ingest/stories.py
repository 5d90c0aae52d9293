"""The dedupe and store stages of one pull: a document's items into their stories.

The view is read from storage, `dedupe.decide` decides (pure), storage writes the
intents, all inside the pull's transaction. The bench and the tests call `store_items`
on items they build, as a pull does on a document's.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aggregator import model
from aggregator.model import Config, Dedupe, Source
from aggregator.storage import Storage

if TYPE_CHECKING:
    from aggregator.ingest.workers import Prepared
    from aggregator.model import Candidate, Intent, Item, Lookups, Near


def complete(
    prepared: Prepared, lookups: Lookups, source: Source, config: Config
) -> tuple[list[Item], list[Near]]:
    """The items with their tags and fingerprints: those the worker left out because their
    content looked stored are done here when it is not stored under their key (a feed
    that changed an item's guid, say), so storing never sees an untagged item."""
    items, nears = list(prepared.items), []
    for n, (item, sent) in enumerate(zip(prepared.items, prepared.near, strict=True)):
        known = lookups.by_key.get(item.key)
        near = model.Near(sent[0], tuple(sent[1])) if sent is not None else None
        if near is None and (known is None or known.content_hash != item.content_hash):
            # rare (most items come tagged from the worker): loaded when one needs them
            from aggregator.language import settle
            from aggregator.tagging import tagger_for

            full = settle(item, source)
            tags = tagger_for(config).tag(full, source.tags, leans=source.leans)
            items[n] = replace(item, language=full.language, tags=tags)
            near = near_of(full)
        nears.append(near or model.Near())
    return items, nears


def near_of(item: Item) -> Near:
    """An item's similarity fingerprint and index keys (dedupe/similarity.py)."""
    from aggregator.dedupe import similarity
    from aggregator.normalize import lead_text

    fp = similarity.fingerprint(item.title, lead_text(item))
    return model.Near(similarity.dumps(fp), tuple(similarity.index_keys(fp)))


def store_items(
    store: Storage,
    items: list[Item],
    *,
    now: datetime,
    cutoff: datetime,
    near: Dedupe | None,
    nears: list[Near] | None = None,
    lookups: Lookups | None = None,
) -> list[Intent]:
    """One document's items into their stories, inside the caller's transaction: read the
    view, decide (pure, `dedupe.decide`), write the intents. `near` None: exact keys only.

    Items too old or pruned are skipped; an item stored under its key is updated or left;
    a new one joins the story of a copy with its link, or of another source's recent copy
    telling the same story (the `near` window and similarity), or starts its own."""
    from aggregator.dedupe import decide, similarity

    if lookups is None:
        lookups = store.lookups(items)
    if nears is None:
        nears = [near_of(item) for item in items]
    candidates: dict[str, list[Candidate]] = {}
    if near is not None:
        fresh = decide.may_be_new(items, lookups, cutoff)
        since = now - timedelta(seconds=near.window)
        found = store.near_candidates_many(
            [nears[n].keys for n in fresh], since, similarity.MAX_CANDIDATES
        )
        candidates = {items[n].key: copies for n, copies in zip(fresh, found, strict=True)}
    view = decide.View(lookups, candidates)
    intents = decide.decide_document(items, nears, view, cutoff=cutoff, near=near)
    store.write(intents, now)
    return intents
