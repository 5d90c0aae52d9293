"""Stored items kept in step with the config: re-tagged when the rules or a source's
tags change, re-indexed when this version computes other near-duplicate keys.

A page at a time (never the whole store in memory); the rules' print is stored once the
re-tag is done, so a crash midway redoes it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aggregator.dedupe import KEYS_VERSION
from aggregator.ingest.pull import mark_unpublished
from aggregator.model import Config

if TYPE_CHECKING:  # what a pull makes (model/items.py): loaded when a pull runs
    from aggregator.model import Item, TagMatch
from aggregator.storage import Storage
from aggregator.topics import file_print

log = logging.getLogger("aggregator.pull")


RETAG_PAGE = 500  # items read, tagged and written at a time when the rules change


@dataclass(frozen=True)
class RetagPlan:
    """What a config change asks to re-tag: `only` these sources' items, or all (None)."""

    only: tuple[str, ...] | None
    rules_print: str  # stored once the re-tag is done, so a crash midway redoes it
    given: str


def retag_plan(config: Config, store: Storage) -> RetagPlan | None:
    """Which stored items the tag rules may change: every item when the rules (or the
    disclaimers they skip, or the topic model) changed; only a source's items when its
    own `tags` or `leans` changed; None when nothing that tags changed. Adding or removing
    a source, or editing its title or interval, re-tags nothing (it cost 3.6 s at 100,000
    items)."""
    model = file_print() if config.settings.topic_model else ""
    rules_print = fingerprint(config.tags, config.disclaimers, model)
    given = {s.name: [list(s.tags), list(s.leans)] for s in config.sources}
    before: dict[str, list[list[str]]] = json.loads(store.meta("source_tags") or "{}")
    given_json = json.dumps(given, sort_keys=True)
    if store.meta("rules") != rules_print:
        return RetagPlan(None, rules_print, given_json)
    only = tuple(
        sorted(
            name
            for name in given.keys() | before.keys()
            if given.get(name, [[], []]) != before.get(name, [[], []])
        )
    )
    return RetagPlan(only, rules_print, given_json) if only else None


class Retagger:
    """One re-tag, a page at a time: `page()` reads, `tag()` computes (pure: the daemon
    runs it in a thread, off its event loop), `write()` stores what changed; `finish()`
    records the rules as applied and says what happened, rules' problems included
    (a pattern that backtracks is the rule's fault, said as the rule's)."""

    def __init__(self, config: Config, store: Storage, plan: RetagPlan):
        self.config, self.store, self.plan = config, store, plan
        self.sources = {s.name: s for s in config.sources}
        from aggregator.tagging import tagger_for  # a re-tag is rare: its rules load then

        self.tagger = tagger_for(config)
        self.after = 0
        self.changed = 0
        self.problems: list[str] = []

    def page(self) -> list[Item]:
        rows = self.store.items_page(self.after, RETAG_PAGE, self.plan.only)
        if rows:
            self.after = rows[-1][0]
        return [item for _, item in rows]

    def tag(self, items: list[Item]) -> list[tuple[str, tuple[TagMatch, ...]]]:
        """(uid, new tags) of the items whose tags change."""
        out = []
        gave_up: set[str] = set()  # a backtracking pattern costs its time limit once a page
        for item in items:
            src = self.sources.get(item.source)
            tags = self.tagger.tag_of(item, src, self.problems, gave_up)
            if tags != item.tags:
                out.append((item.uid, tags))
        return out

    def write(self, changes: list[tuple[str, tuple[TagMatch, ...]]]) -> None:
        if not changes:
            return
        with self.store.transaction():
            for uid, tags in changes:
                self.store.set_tags(uid, tags)
            mark_unpublished(self.store)
        self.changed += len(changes)

    def finish(self) -> int:
        with self.store.transaction():
            self.store.set_meta("rules", self.plan.rules_print)
            self.store.set_meta("source_tags", self.plan.given)
        for problem in dict.fromkeys(self.problems):
            log.warning("re-tagging stored items: %s", problem)
        if self.changed:
            only = self.plan.only
            what = "tag rules changed" if only is None else f"tags of {', '.join(only)} changed"
            log.info("%s: %d stored items re-tagged", what, self.changed)
        return self.changed


def retag_if_rules_changed(config: Config, store: Storage) -> int:
    """Re-apply the tag rules to the stored items they may change (see `retag_plan`);
    returns how many changed tags. The daemon does the same off its event loop."""
    plan = retag_plan(config, store)
    if plan is None:
        return 0
    retagger = Retagger(config, store, plan)
    while items := retagger.page():
        retagger.write(retagger.tag(items))
    return retagger.finish()


def reindex_if_keys_changed(config: Config, store: Storage, now: datetime) -> int:
    """Rebuild the near-duplicate index when this version computes other keys than the
    stored ones (items of the window only: older ones are no longer compared)."""
    if store.meta("near_keys") == KEYS_VERSION:
        return 0
    from aggregator.dedupe import similarity

    count = 0
    with store.transaction():
        store.clear_near_keys()
        texts = store.near_texts(now - timedelta(seconds=config.dedupe.window))
        while chunk := list(itertools.islice(texts, 500)):  # keyed together, as in workers
            fps = [similarity.fingerprint(copy.title, copy.lead) for _, copy in chunk]
            rowids = [rowid for rowid, _ in chunk]
            store.add_near_keys(zip(rowids, similarity.index_keys_many(fps), strict=True))
            for rowid, fp in zip(rowids, fps, strict=True):
                store.set_near_print(rowid, similarity.dumps(fp))
            count += len(chunk)
        store.set_meta("near_keys", KEYS_VERSION)
    if count:
        log.info("near-duplicate index rebuilt for %d items (new key version)", count)
    return count


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()
