"""The only place that knows the order of the stages.

    pull_source:  fetch -> (304: done) -> parse -> normalize -> tag -> dedupe -> store
    run_pass:     pull every enabled source, bounded and concurrently; re-tag stored items
                  when the rules changed; prune past retention; publish when anything did.

A source that fails becomes a `PullOutcome` with its error; nothing one source does can stop
the others. CPU work (parse, normalize, tag) runs in a worker thread so the event loop keeps
every other pull's deadline; all SQL stays on the loop's thread, one transaction per pull.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from aggregator.dedupe import decide
from aggregator.errors import FetchError, ParseError
from aggregator.fetch import Fetcher
from aggregator.model import Config, Fetched, Item, ParsedFeed, PullOutcome, Source
from aggregator.normalize import feed_link, feed_title, normalize_feed
from aggregator.parse import parse
from aggregator.publish import Published, publish
from aggregator.store import Store
from aggregator.tagging import Tagger, compile_rules

log = logging.getLogger("aggregator.pull")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class PassResult:
    outcomes: tuple[PullOutcome, ...]
    published: tuple[Published, ...]
    retagged: int
    pruned: int
    elapsed: float

    @property
    def all_failed(self) -> bool:
        return bool(self.outcomes) and not any(o.ok for o in self.outcomes)


def _prepare(
    fetched: Fetched, source: Source, tagger: Tagger, now: datetime
) -> tuple[ParsedFeed, list[Item]]:
    """CPU-bound part of a pull, run off the event loop."""
    parsed = parse(fetched.body, fetched.url, fetched.content_type)
    items = normalize_feed(parsed, source, now)
    return parsed, [replace(i, tags=tagger.tag(i, source.tags)) for i in items]


async def pull_source(
    source: Source, fetcher: Fetcher, store: Store, tagger: Tagger, config: Config, clock: Clock
) -> PullOutcome:
    """One pull of one source, recorded in the store whatever happens."""
    state = store.source_state(source.name)
    started = time.monotonic()
    try:
        fetched = await fetcher.fetch(source.url, state)
    except FetchError as exc:
        return _failed(store, source, exc.kind, str(exc), exc.status, started, clock)
    body_hash = hashlib.sha256(fetched.body).hexdigest() if not fetched.not_modified else ""
    if fetched.not_modified or body_hash == state.body_hash:
        # 304, or a server without validators sending the same bytes: nothing to parse.
        outcome = PullOutcome(
            source.name,
            ok=True,
            status=fetched.status,
            not_modified=True,
            elapsed=time.monotonic() - started,
        )
        with store.transaction():
            store.record_pull(
                outcome, source.url, clock(), etag=fetched.etag, last_modified=fetched.last_modified
            )
        return outcome
    now = clock()
    try:
        parsed, items = await asyncio.to_thread(_prepare, fetched, source, tagger, now)
    except ParseError as exc:
        return _failed(store, source, exc.kind, str(exc), fetched.status, started, clock)
    except Exception as exc:  # a parser bug on one hostile document must not end the pass
        log.exception("parsing %s failed", source.name)
        return _failed(
            store, source, "parse_error", f"{type(exc).__name__}: {exc}", 200, started, clock
        )

    counts = {"new": 0, "updated": 0, "duplicate": 0, "unchanged": 0, "skipped": 0}
    changed: set[str] = set()
    cutoff = now - timedelta(seconds=config.settings.retention)
    with store.transaction():
        for item in items:
            kind = _store_item(store, item, cutoff, now)
            counts[kind] += 1
            if kind in ("new", "updated", "duplicate"):
                changed.add(item.uid)
        outcome = PullOutcome(
            source.name,
            ok=True,
            status=fetched.status,
            elapsed=time.monotonic() - started,
            warning=parsed.warning,
            changed_stories=frozenset(changed),
            **counts,
        )
        store.record_pull(
            outcome,
            source.url,
            now,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            feed_title=feed_title(parsed),
            feed_link=feed_link(parsed, fetched.url),
            body_hash=body_hash,
        )
    return outcome


def _store_item(store: Store, item: Item, cutoff: datetime, now: datetime) -> str:
    by_key = store.known_by_key(item.source, item.key)
    if by_key is None and (
        item.published < cutoff or store.is_tombstoned(item.source, item.key, item.canonical)
    ):
        return "skipped"
    by_url = None if by_key else store.known_by_url(item.canonical)
    decision = decide(item, by_key, by_url)
    if decision.kind == "updated" and decision.target is not None:
        store.update_item(decision.target.uid, item)
    elif decision.kind in ("new", "duplicate"):
        store.insert_item(replace(item, story=decision.story), now)
    return decision.kind


def _failed(
    store: Store,
    source: Source,
    kind: str,
    message: str,
    status: int | None,
    started: float,
    clock: Clock,
) -> PullOutcome:
    outcome = PullOutcome(
        source.name, ok=False, status=status, error_kind=kind, error=message,
        elapsed=time.monotonic() - started,
    )  # fmt: skip
    with store.transaction():
        store.record_pull(outcome, source.url, clock())
    return outcome


def retag(store: Store, config: Config, tagger: Tagger) -> int:
    """Apply the current rules to every stored item; returns how many changed tags."""
    sources = {s.name: s for s in config.sources}
    changed = 0
    with store.transaction():
        for stored in store.items():
            item = stored.item
            src = sources.get(item.source)
            tags = tagger.tag(item, src.tags if src else ())
            if tags != item.tags:
                store.set_tags(item.uid, tags)
                changed += 1
    return changed


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


async def run_pass(
    config: Config,
    store: Store,
    clock: Clock = utcnow,
    on_outcome: Callable[[PullOutcome], None] | None = None,
) -> PassResult:
    """Pull every enabled source once, then publish if anything changed."""
    started = time.monotonic()
    tagger = compile_rules(config.tags, tuple(config.disclaimers.values()))
    rules_print = _fingerprint(
        config.tags, config.disclaimers, [(s.name, s.tags) for s in config.sources]
    )
    retagged = 0
    if store.meta("rules") != rules_print:
        retagged = retag(store, config, tagger)
        store.set_meta("rules", rules_print)

    async def one(source: Source) -> PullOutcome:
        outcome = await pull_source(source, fetcher, store, tagger, config, clock)
        _log(outcome)
        if on_outcome:
            on_outcome(outcome)
        return outcome

    enabled = [s for s in config.sources if s.enabled]
    async with Fetcher(config.settings) as fetcher:
        outcomes = await asyncio.gather(*(one(s) for s in enabled))

    now = clock()
    with store.transaction():
        pruned = store.prune(now - timedelta(seconds=config.settings.retention), now)
    output_print = _fingerprint(config.settings.base_url, config.settings.hub, config.disclaimers,
                                config.default_language, config.sources, config.feeds)  # fmt: skip
    expected = [
        config.settings.output_dir / f"{f.name}.{suffix}"
        for f in config.feeds
        for suffix in ("rss", "atom", "json")
    ]
    needed = (
        retagged
        or pruned
        or any(o.changed for o in outcomes)
        or store.meta("output") != output_print
        or not all(p.exists() for p in expected)
    )
    published: list[Published] = []
    if needed:
        published = publish(store, config)
        store.set_meta("output", output_print)
    return PassResult(
        tuple(outcomes), tuple(published), retagged, pruned, time.monotonic() - started
    )


def _log(o: PullOutcome) -> None:
    fields = {
        "source": o.source,
        "status": o.status,
        "duration_ms": round(o.elapsed * 1000),
        "new": o.new,
        "updated": o.updated,
        "duplicate": o.duplicate,
        "unchanged": o.unchanged,
    }
    if o.ok:
        what = "not modified" if o.not_modified else (
            f"{o.new} new, {o.updated} updated, {o.duplicate} duplicate, {o.unchanged} unchanged"
        )  # fmt: skip
        log.info("%s: %s (HTTP %s, %d ms)", o.source, what, o.status, fields["duration_ms"],
                 extra={"fields": fields})  # fmt: skip
        if o.warning:
            log.warning("%s: %s", o.source, o.warning, extra={"fields": {"source": o.source}})
    else:
        fields |= {"error": o.error_kind, "message": o.error}
        log.warning("%s: failed: %s: %s", o.source, o.error_kind, o.error, extra={"fields": fields})
