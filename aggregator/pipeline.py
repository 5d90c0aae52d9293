"""The only place that knows the order of the stages.

    pull_source:  (gone? skip) -> fetch -> (304 or same bytes: done) -> parse -> normalize
                  -> language -> tag -> dedupe -> store, then the next pull time from `schedule`
    run_pass:     every enabled source once, bounded and concurrently, then `refresh`
    refresh:      re-tag stored items when the rules changed, prune past retention, and
                  publish when anything changed (the daemon calls it, debounced)

A source that fails becomes a `PullOutcome` with its error; nothing one source does can stop
the others. CPU work (parse, normalize, tag) runs in worker processes so the event loop keeps
every other pull's deadline; all SQL stays on the loop's thread, one unit per pull.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from aggregator import schedule
from aggregator.dedupe import KEYS_VERSION
from aggregator.errors import FetchError, ParseError
from aggregator.faults import crash_point
from aggregator.language import settle
from aggregator.model import (
    Candidate,
    Config,
    Dedupe,
    Fetched,
    Intent,
    Item,
    Lookups,
    Near,
    ParsedFeed,
    PullOutcome,
    Source,
    SourceState,
    TagMatch,
)
from aggregator.normalize import feed_link, feed_title, lead_text
from aggregator.sanitize import html_to_text
from aggregator.schedule import Skipped, is_gone
from aggregator.storage import Storage
from aggregator.tagging import tagger_for
from aggregator.topics import load as topic_model

if TYPE_CHECKING:  # a cron run with nothing due imports none of them (numpy, feedgen, pebble)
    from aggregator.publish import Published
    from aggregator.workers import ParsePool, Prepared

log = logging.getLogger("aggregator.pull")
STAGES = ("fetch", "parse", "normalize", "language", "tag", "dedupe", "store", "publish")
Clock = Callable[[], datetime]


class Fetches(Protocol):
    """What a pull asks of the HTTP side (`fetch.Fetcher`; a fake one in tests)."""

    async def fetch(self, url: str, state: SourceState | None = None) -> Fetched: ...


_rng = random.Random()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PassResult:
    outcomes: tuple[PullOutcome, ...]
    published: tuple[Published, ...]
    retagged: int
    pruned: int
    elapsed: float
    publish_error: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # CPU time by stage
    skipped: tuple[Skipped, ...] = ()  # sources not due in this run, with when and why

    @property
    def all_failed(self) -> bool:
        return bool(self.outcomes) and not any(o.ok for o in self.outcomes)


def effective_url(source: Source, state: SourceState) -> str:
    """The config's URL, or where it moved after enough permanent redirects in a row."""
    if (
        state.redirect_url
        and state.redirect_count >= schedule.PERMANENT_REDIRECTS_TO_MOVE
        and state.redirect_print == schedule.source_print(source)
    ):
        return state.redirect_url
    return source.url


async def pull_source(
    source: Source, fetcher: Fetches, pool: ParsePool, store: Storage, config: Config, clock: Clock
) -> PullOutcome:
    """One pull of one source, recorded in the store (with its next pull) whatever happens.

    Whatever it raises, wherever (fetching, parsing, storing), becomes that source's
    recorded failure: `status` shows it, the source backs off, and the pass goes on (the
    pull's own storing unit is rolled back alone, see `Storage.batch`)."""
    try:
        return await _pull(source, fetcher, pool, store, config, clock)
    except Exception as exc:
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        log.error("%s: pull failed unexpectedly: %s", source.name, error)
        log.debug("%s: the failure's traceback", source.name, exc_info=True)
        outcome = PullOutcome(
            source.name, ok=False, status=None, error_kind="internal", error=error
        )
        return _finish(store, config, source, store.source_state(source.name), outcome, clock())


async def _pull(
    source: Source, fetcher: Fetches, pool: ParsePool, store: Storage, config: Config, clock: Clock
) -> PullOutcome:
    state = store.source_state(source.name)
    if is_gone(source, state):
        return PullOutcome(
            source.name,
            ok=False,
            status=410,
            error_kind="gone",
            error="HTTP 410 Gone: not pulled until its config entry changes",
        )
    url = effective_url(source, state)
    started = time.monotonic()
    crash_point(f"before-fetch:{source.name}")

    def failed(
        status: int | None, kind: str, error: str, retry: float | None = None
    ) -> PullOutcome:
        outcome = PullOutcome(
            source.name,
            ok=False,
            status=status,
            error_kind=kind,
            error=error,
            elapsed=time.monotonic() - started,
            url=url,
            retry_after=retry,
        )
        return _finish(store, config, source, state, outcome, clock())

    try:
        fetched = await fetcher.fetch(url, state)
    except FetchError as exc:
        retry = schedule.parse_retry_after(exc.retry_after, clock()) if exc.retry_after else None
        return failed(exc.status, exc.kind, str(exc), retry)
    _follow_moves(store, source, state, url, fetched)
    body_hash = "" if fetched.not_modified else hashlib.sha256(fetched.body).hexdigest()
    if fetched.not_modified or body_hash == state.body_hash:
        # 304, or a server without validators sending the same bytes: nothing to parse.
        outcome = PullOutcome(
            source.name,
            ok=True,
            status=fetched.status,
            not_modified=True,
            elapsed=time.monotonic() - started,
            url=url,
        )
        return _finish(store, config, source, state, outcome, clock(), fetched=fetched)
    now = clock()
    from aggregator.workers import content_print

    stored = frozenset(map(content_print, store.content_hashes(source.name)))
    try:
        prepared = await pool.prepare(
            fetched,
            source,
            config.tags,
            tuple(config.disclaimers.values()),
            now,
            stored,
            config.settings.topic_model,
            config.settings.max_document_items,
        )
    except ParseError as exc:
        return failed(fetched.status, exc.kind, str(exc))
    except Exception as exc:  # a parser bug on one hostile document must not end the pass
        log.debug("parsing %s failed", source.name, exc_info=True)
        message = " ".join(str(exc).split())[:300]
        return failed(fetched.status, "parse_error", f"{type(exc).__name__}: {message}")

    parsed = prepared.parsed
    counts = {"new": 0, "updated": 0, "duplicate": 0, "unchanged": 0, "skipped": 0}
    cutoff = now - timedelta(seconds=config.settings.retention)
    stored_at = time.process_time()
    with store.transaction():
        lookups = store.lookups(prepared.items)
        items, nears = _complete(prepared, lookups, source, config)
        intents = store_items(
            store, items, now=now, cutoff=cutoff, near=config.dedupe, nears=nears, lookups=lookups
        )
        for intent in intents:
            counts[intent.kind] += 1
        crash_point(f"mid-store:{source.name}")
        if counts["new"] or counts["updated"] or counts["duplicate"]:
            # in the same unit as the items: whatever a crash interrupts, the next refresh
            # sees that the files do not show the store yet
            mark_unpublished(store)
        seconds = {**prepared.seconds, "store": time.process_time() - stored_at}
        outcome = PullOutcome(
            source.name,
            ok=True,
            status=fetched.status,
            elapsed=time.monotonic() - started,
            warning=parsed.warning,
            url=url,
            seconds=seconds,
            new=counts["new"],
            updated=counts["updated"],
            duplicate=counts["duplicate"],
            unchanged=counts["unchanged"],
            skipped=counts["skipped"],
        )
        return _finish(
            store,
            config,
            source,
            state,
            outcome,
            now,
            fetched=fetched,
            parsed=parsed,
            body_hash=body_hash,
        )


def _follow_moves(
    store: Storage, source: Source, state: SourceState, url: str, fetched: Fetched
) -> None:
    """Count permanent redirects in a row to one target; a source that stops moving resets."""
    if fetched.moved_to:
        print_ = schedule.source_print(source)
        same = fetched.moved_to == state.redirect_url and state.redirect_print == print_
        count = state.redirect_count + 1 if same else 1
        with store.transaction():
            store.set_redirect(source.name, fetched.moved_to, count, print_)
        if count == schedule.PERMANENT_REDIRECTS_TO_MOVE:
            log.warning(
                "%s: moved permanently to %s: pulling it from now on (config.toml still says %s)",
                source.name,
                fetched.moved_to,
                source.url,
            )
    elif url == source.url and state.redirect_count:
        with store.transaction():
            store.set_redirect(source.name, "", 0, "")


def _finish(
    store: Storage,
    config: Config,
    source: Source,
    state: SourceState,
    outcome: PullOutcome,
    now: datetime,
    *,
    fetched: Fetched | None = None,
    parsed: ParsedFeed | None = None,
    body_hash: str | None = None,
) -> PullOutcome:
    """Record the pull and when the next one is due, in one transaction with the items."""
    failures = 0 if outcome.ok else state.consecutive_failures + 1
    nxt = schedule.after_pull(
        source,
        config.settings.interval,
        ok=outcome.ok,
        failures=failures,
        status=outcome.status,
        retry_after=outcome.retry_after,
        now=now,
        rng=_rng,
    )
    outcome = replace(outcome, next_pull=nxt.at, next_reason=nxt.reason)
    with store.transaction():
        store.record_pull(
            outcome,
            outcome.url or source.url,
            now,
            etag=fetched.etag if fetched else None,
            last_modified=fetched.last_modified if fetched else None,
            feed_title=feed_title(parsed) if parsed else None,
            feed_link=feed_link(parsed, fetched.url) if parsed and fetched else None,
            body_hash=body_hash,
        )
        store.set_next_pull(source.name, nxt.at, nxt.reason)
        if outcome.status == 410:
            store.set_gone(source.name, schedule.source_print(source))
        elif state.gone_print:
            store.set_gone(source.name, "")
    return outcome


def _complete(
    prepared: Prepared, lookups: Lookups, source: Source, config: Config
) -> tuple[list[Item], list[Near]]:
    """The items with their tags and fingerprints: those the worker left out because their
    content looked stored are done here when it is not stored under their key (a feed
    that changed an item's guid, say), so storing never sees an untagged item."""
    items, nears = list(prepared.items), []
    for n, (item, sent) in enumerate(zip(prepared.items, prepared.near, strict=True)):
        known = lookups.by_key.get(item.key)
        near = Near(sent[0], tuple(sent[1])) if sent is not None else None
        if near is None and (known is None or known.content_hash != item.content_hash):
            full = settle(
                replace(
                    item,
                    summary_text=html_to_text(item.summary_html),
                    content_text=html_to_text(item.content_html),
                ),
                source,
            )
            tags = tagger_for(config).tag(full, source.tags, leans=source.leans)
            items[n] = replace(item, language=full.language, tags=tags)
            near = near_of(full)
        nears.append(near or Near())
    return items, nears


def near_of(item: Item) -> Near:
    """An item's similarity fingerprint and index keys (dedupe/similarity.py)."""
    from aggregator.dedupe import similarity

    fp = similarity.fingerprint(item.title, lead_text(item))
    return Near(similarity.dumps(fp), tuple(similarity.index_keys(fp)))


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
    model = topic_model().version if config.settings.topic_model else ""
    rules_print = _fingerprint(config.tags, config.disclaimers, model)
    given = {s.name: [list(s.tags), list(s.leans)] for s in config.sources}
    before: dict[str, list] = json.loads(store.meta("source_tags") or "{}")
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
            fps = [similarity.fingerprint(item.title, lead_text(item)) for _, item in chunk]
            rowids = [rowid for rowid, _ in chunk]
            store.add_near_keys(zip(rowids, similarity.index_keys_many(fps), strict=True))
            for rowid, fp in zip(rowids, fps, strict=True):
                store.set_near_print(rowid, similarity.dumps(fp))
            count += len(chunk)
        store.set_meta("near_keys", KEYS_VERSION)
    if count:
        log.info("near-duplicate index rebuilt for %d items (new key version)", count)
    return count


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def mark_unpublished(store: Storage) -> None:
    """Note that the published files may not show the store: the next refresh publishes."""
    with store.transaction():
        store.set_meta("output", "")


def expected_files(config: Config) -> list:
    out = config.settings.output_dir
    files = [out / f"{f.name}.{suffix}" for f in config.feeds for suffix in ("rss", "atom", "json")]
    return [*files, out / "index.html", out / "sources.opml", out / "feeds.opml"]


@dataclass(frozen=True)
class Refreshed:
    retagged: int
    pruned: int
    published: tuple[Published, ...]
    error: str = ""  # publishing failed (disk full, read-only folder): the old files stay


def refresh(
    config: Config, store: Storage, changed: bool, clock: Clock = utcnow, retag: bool = True
) -> Refreshed:
    """After pulls (or a config change): re-tag, prune, and publish when anything changed.
    `retag` False: the caller re-tags itself (the daemon, off its event loop)."""
    store.commit_pending()  # what gets published is stored first, whatever a crash does next
    retagged = retag_if_rules_changed(config, store) if retag else 0
    now = clock()
    reindex_if_keys_changed(config, store, now)
    with store.transaction():
        pruned = store.prune(now - timedelta(seconds=config.settings.retention), now)
        store.prune_near_keys(now - timedelta(seconds=config.dedupe.window))
        if pruned:
            mark_unpublished(store)
    # index.html shows each source's health: a source that starts or stops failing republishes
    health = [
        (r.name, r.last_error_kind, r.last_pull is None, r.feed_title) for r in store.source_rows()
    ]
    output_print = _fingerprint(
        config.settings.base_url,
        config.settings.hub,
        config.settings.site_title,
        config.settings.public_source_health,
        config.disclaimers,
        config.default_language,
        config.sources,
        config.feeds,
        health,
    )
    needed = (
        changed
        or retagged
        or pruned
        or store.meta("output") != output_print
        or not all(p.exists() for p in expected_files(config))
    )
    published: tuple[Published, ...] = ()
    if needed:
        # The marker says "the files show the store" only once every file is in place: a
        # crash while writing them (or before) leaves it unset, and the next refresh
        # publishes whatever else changes or not.
        mark_unpublished(store)
        store.commit_pending()
        from aggregator.publish import publish

        try:
            published = tuple(publish(store, config))
        except OSError as exc:
            message = f"publishing to {config.settings.output_dir} failed: {exc}"
            log.error("%s; the previous files stay, retried later", message)
            return Refreshed(retagged, pruned, (), message)
        with store.transaction():
            store.set_meta("output", output_print)
        written = [p.name for r in published for p in r.written]
        if written:
            log.info("published %s", ", ".join(written), extra={"fields": {"written": written}})
    return Refreshed(retagged, pruned, published)


async def run_pass(
    config: Config,
    store: Storage,
    clock: Clock = utcnow,
    on_outcome: Callable[[PullOutcome], None] | None = None,
    everything: bool = False,
    only: frozenset[str] | None = None,
    plan: schedule.Plan | None = None,
    fetcher: Fetches | None = None,
) -> PassResult:
    """Pull every enabled source that is due (`everything`: every enabled source; `only`:
    of these; `plan`: the sources the caller already found due), then refresh (publish if
    anything changed). `fetcher`: what pulls go through (by default a `fetch.Fetcher` on
    the config's settings, opened for the pass)."""
    retag_if_rules_changed(config, store)  # before the pull: new items are tagged already
    reindex_if_keys_changed(config, store, clock())  # and compared with the same keys
    enabled, skipped = plan or due_sources(config, store, clock(), everything)
    if only is not None:
        enabled = [s for s in enabled if s.name in only]
        skipped = [k for k in skipped if k.name in only]
    if enabled:  # a cron run with nothing due imports no HTTP client and no parse workers
        from aggregator.fetch import Fetcher
        from aggregator.workers import ParsePool
    started = time.monotonic()  # after the imports, which are the process's, not the pass's
    cpu_started = time.process_time()
    pool = ParsePool(timeout=config.settings.parse_timeout) if enabled else None

    # Pulls past the fetch limit would only hold their bodies waiting for a parse worker.
    in_flight = asyncio.Semaphore(config.settings.concurrency)

    async def one(client: Fetches, source: Source) -> PullOutcome:
        assert pool is not None  # a pull only when some source is due
        async with in_flight:
            outcome = await pull_source(source, client, pool, store, config, clock)
        log_outcome(outcome)
        if on_outcome:
            on_outcome(outcome)
        return outcome

    async def pull_all(client: Fetches) -> list[PullOutcome]:
        with store.batch():
            return list(await asyncio.gather(*(one(client, s) for s in enabled)))

    outcomes: list[PullOutcome] = []
    try:
        if enabled and fetcher is not None:
            outcomes = await pull_all(fetcher)
        elif enabled:
            async with Fetcher(config.settings) as client:
                outcomes = await pull_all(client)
        if pool is not None:
            pool.stop()
        pulled_cpu = time.process_time() - cpu_started
        publish_started = time.process_time()
        done = refresh(config, store, any(o.changed for o in outcomes), clock)
    finally:
        if pool is not None:
            pool.close()
    seconds = {stage: 0.0 for stage in STAGES}
    for o in outcomes:
        for stage, value in o.seconds.items():
            seconds[stage] += value
    seconds["publish"] = time.process_time() - publish_started
    # what the main process spent outside storing: HTTP, the event loop, scheduling work
    seconds["fetch"] = max(0.0, pulled_cpu - seconds["store"])
    log.info(
        "pass done in %.2fs: %s",
        time.monotonic() - started,
        ", ".join(f"{k} {v:.2f}s" for k, v in seconds.items()),
        extra={
            "fields": {
                "event": "pass",
                "wall": time.monotonic() - started,
                "cpu": {k: round(v, 4) for k, v in seconds.items()},
                "commit_wall": round(store.commit_seconds, 4),
                "items": sum(o.new + o.updated + o.duplicate + o.unchanged for o in outcomes),
            }
        },
    )
    written = [p for r in done.published for p in r.written]
    if config.settings.hub and written:  # the pass is done: the pings only delay the exit
        from aggregator import websub

        urls = websub.changed_feed_urls(config.settings.base_url, written)
        if urls:
            await websub.ping(
                config.settings.hub,
                urls,
                config.settings.user_agent,
                config.settings.allow_private_networks,
            )
    return PassResult(
        tuple(outcomes),
        done.published,
        done.retagged,
        done.pruned,
        time.monotonic() - started,
        done.error,
        seconds,
        tuple(skipped),
    )


def due_sources(
    config: Config, store: Storage, now: datetime, everything: bool
) -> tuple[list[Source], list[Skipped]]:
    """schedule.due_sources on the states stored (one query)."""
    return schedule.due_sources(
        config.sources, config.settings.interval, store.source_states(), now, everything
    )


def log_outcome(o: PullOutcome) -> None:
    fields = {
        "source": o.source,
        "status": o.status,
        "duration_ms": round(o.elapsed * 1000),
        "new": o.new,
        "updated": o.updated,
        "duplicate": o.duplicate,
        "unchanged": o.unchanged,
        "too_old": o.skipped,
        "not_modified": o.not_modified,
        "next_pull": o.next_pull.isoformat() if o.next_pull else None,
        "next_reason": o.next_reason or None,
    }
    if o.ok:
        what = f"{o.new} new, {o.updated} updated, {o.duplicate} duplicate, {o.unchanged} same"
        if o.skipped:  # a feed of old items stored nothing: say why
            what += f", {o.skipped} older than retention (not stored)"
        if o.not_modified:
            what = "not modified"
        log.info(
            "%s: %s (HTTP %s, %d ms)",
            o.source,
            what,
            o.status,
            fields["duration_ms"],
            extra={"fields": fields},
        )
        if o.warning:
            log.warning("%s: %s", o.source, o.warning, extra={"fields": {"source": o.source}})
    else:
        # not "message": that key is the log line itself in a JSON log
        fields |= {"error": o.error_kind, "error_message": o.error}
        log.warning(
            "%s: failed: %s: %s (next: %s)",
            o.source,
            o.error_kind,
            o.error,
            o.next_reason or "-",
            extra={"fields": fields},
        )
