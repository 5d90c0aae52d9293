"""The order of the stages, for a pass and after it.

    pull_source:  (pull.py) (gone? skip) -> fetch -> (304 or same bytes: done) -> parse ->
                  normalize -> language -> tag (workers.py) -> dedupe -> store (stories.py),
                  then the next pull time from `schedule`
    run_pass:     every due source once, bounded and concurrently, then `refresh`
    refresh:      re-tag stored items when the rules changed (retag.py), prune past
                  retention, and publish when anything changed (the daemon calls it, debounced)

`run --once` calls `run_pass`; the daemon calls `pull_source` when a source is due and
`refresh` after; both only decide *when*. On a store several nodes share (PostgreSQL), a
pull first claims its source's lease (`Runner.pull`): a source another node is pulling,
or has just pulled, is left to it. A source that fails becomes a `PullOutcome` with
its error; nothing one source does can stop the others. CPU work (parse, normalize, tag)
runs in worker processes so the event loop keeps every other pull's deadline; all SQL
stays on the loop's thread, one unit per pull.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aggregator import model, schedule
from aggregator.errors import LeaseLost
from aggregator.ingest.pull import (
    Clock,
    Fetches,
    Held,
    log_outcome,
    mark_unpublished,
    pull_source,
    utcnow,
)
from aggregator.ingest.retag import fingerprint, reindex_if_keys_changed, retag_if_rules_changed
from aggregator.model import Config, Settings, Source, retention_at
from aggregator.schedule import Skipped
from aggregator.storage import Leasing, Storage, leasing

if TYPE_CHECKING:  # a cron run with nothing due imports none of them (numpy, feedgen, pebble)
    from aggregator.fetch import Fetcher
    from aggregator.model import Busy, PullOutcome
    from aggregator.publish import Published

log = logging.getLogger("aggregator.pull")
STAGES = ("fetch", "parse", "normalize", "language", "tag", "dedupe", "store", "publish")


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


def expected_files(config: Config) -> list[Path]:
    out = config.settings.output_dir
    files = [out / f"{f.name}.{suffix}" for f in config.feeds for suffix in ("rss", "atom", "json")]
    return [*files, out / "index.html", out / "sources.opml", out / "feeds.opml"]


@dataclass(frozen=True)
class Refreshed:
    retagged: int
    pruned: int
    published: tuple[Published, ...]
    error: str = ""  # publishing failed (disk full, read-only folder): the old files stay
    seconds: float = 0.0  # wall time of the refresh


def published_key(config: Config) -> str:
    """The meta key where this node notes what its output folder shows: the nodes sharing
    a PostgreSQL store each publish their own folder."""
    return f"output:{os.uname().nodename}:{os.path.abspath(config.settings.output_dir)}"


def refresh(
    config: Config,
    store: Storage,
    changed: bool,
    clock: Clock = utcnow,
    retag: bool = True,
    writes: bool = True,
) -> Refreshed:
    """After pulls (or a config change): re-tag, prune, and publish when anything changed.
    `retag` False: the caller re-tags itself (the daemon, off its event loop). `writes`
    False: a follower on a shared store (daemon/core.py) only publishes what it holds."""
    began = time.monotonic()
    store.commit_pending()  # what gets published is stored first, whatever a crash does next
    retagged = retag_if_rules_changed(config, store) if retag and writes else 0
    now = clock()
    pruned = 0
    if writes:
        reindex_if_keys_changed(config, store, now)
        with store.transaction():
            cutoff, own = retention_at(config, now)
            pruned = store.prune(cutoff, now, own)
            store.prune_near_keys(now - timedelta(seconds=config.dedupe.window))
            if pruned:
                mark_unpublished(store)
    # index.html shows each source's health: a source that starts or stops failing republishes
    health = [
        (r.name, r.last_error_kind, r.last_pull is None, r.feed_title) for r in store.source_rows()
    ]
    output_print = fingerprint(
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
    key = published_key(config)
    shows = f"{output_print}@{store.meta('generation') or 0}"  # what the files must show
    needed = (
        changed
        or retagged
        or pruned
        or store.meta(key) != shows
        or not all(p.exists() for p in expected_files(config))
    )
    published: tuple[Published, ...] = ()
    if needed:
        # The marker says "the files show the store" only once every file is in place: a
        # crash while writing them (or before) leaves it unset, and the next refresh
        # publishes whatever else changes or not.
        with store.transaction():
            store.set_meta(key, "")
        store.commit_pending()
        from aggregator.publish import publish

        try:
            published = tuple(publish(store, config))
        except OSError as exc:
            message = f"publishing to {config.settings.output_dir} failed: {exc}"
            log.error("%s; the previous files stay, retried later", message)
            return Refreshed(retagged, pruned, (), message, time.monotonic() - began)
        with store.transaction():
            store.set_meta(key, shows)
        written = [p.name for r in published for p in r.written]
        if written:
            log.info("published %s", ", ".join(written), extra={"fields": {"written": written}})
    return Refreshed(retagged, pruned, published, seconds=time.monotonic() - began)


def lease_seconds(settings: Settings) -> float:
    """How long a claim on a source lasts unless renewed: twice a pull's budgets (the fetch
    deadline and the parse budget), so a live node renewing every few seconds never loses
    one, and a killed node's sources wait that long for another node."""
    return 2 * (settings.timeout + settings.parse_timeout)


# the settings a Fetcher is built with: a change of one of them needs a new client
FETCH_SETTINGS = (
    "timeout",
    "concurrency",
    "per_host",
    "user_agent",
    "max_feed_size",
    "allow_private_networks",
)


class Runner:
    """What pulls share, opened once: the HTTP client and the parse workers, beside the
    config, the store and the clock. `run --once` (`run_pass`) and the daemon pull through
    one and only decide when; a test passes a fake `fetcher` and `clock`.

    Built only when something is to be pulled: it imports the HTTP client and the worker
    pool (a cron run with nothing due imports neither). Nothing starts until the first
    pull: the HTTP session and the worker processes are made on first use."""

    def __init__(
        self, config: Config, store: Storage, clock: Clock = utcnow, fetcher: Fetches | None = None
    ):
        from aggregator.fetch import Fetcher
        from aggregator.ingest.workers import ParsePool

        self.config, self.store, self.clock = config, store, clock
        # the client this runner made, and so closes (a given fetcher is its giver's)
        self._owned: Fetcher | None = None
        if fetcher is None:
            fetcher = self._owned = Fetcher(config.settings)
        self.fetcher: Fetches = fetcher
        self.pool = ParsePool(timeout=config.settings.parse_timeout)
        self.leasing = leasing(store)  # None: this process is the store's only writer
        self._hosts: dict[str, Any] = {}  # host -> this node's asyncio.Semaphore(per_host)
        self._live: set[str] = set()  # tokens of this node's leases, pulls under way

    async def pull(self, source: Source, force: bool = False) -> PullOutcome | Busy:
        """One pull of `source`, recorded with its next pull time (see `pull.pull_source`).

        On a shared store, only once its lease is ours: `Busy` when another node is
        pulling it, or (unless `force`: asked by hand) pulled it since it fell due."""
        if self.leasing is None:
            return await pull_source(
                source, self.fetcher, self.pool, self.store, self.config, self.clock
            )
        # The claim takes one of the host's fetch slots over every node when one is free,
        # under this node's own slot for the host (given back once fetched): this node's
        # pulls of one host wait for each other here, at once, not by asking the store.
        seconds, per_host = lease_seconds(self.config.settings), self.config.settings.per_host
        host = (urlsplit(source.url).hostname or "").lower()
        slot = self._hosts.get(host)
        if slot is None:
            import asyncio

            slot = self._hosts[host] = asyncio.Semaphore(per_host)
        await slot.acquire()
        given = False

        def give_back() -> None:
            nonlocal given
            if not given:
                given = True
                slot.release()

        try:
            lease = self.leasing.claim(
                source.name, self.clock(), seconds, not force, host, per_host
            )
            if isinstance(lease, model.Busy):
                return lease
            held = Held(lease, self.leasing, give_back)
            self._live.add(lease.token)
            try:
                return await pull_source(
                    source, self.fetcher, self.pool, self.store, self.config, self.clock, held
                )
            except LeaseLost as exc:
                log.warning("%s", exc)
                return model.Busy(
                    source.name, self.clock() + timedelta(seconds=seconds), "taken over"
                )
            except BaseException:  # cancelled at a stop: the next node need not wait for it
                with contextlib.suppress(Exception):
                    self.leasing.release(lease)
                raise
            finally:
                self._live.discard(lease.token)
        finally:
            give_back()

    def renew(self) -> None:
        """Keep this node's leases while its pulls last (every few seconds)."""
        if self.leasing is not None and self._live:
            self.leasing.renew(self.clock(), lease_seconds(self.config.settings), list(self._live))

    def refresh(self, changed: bool, retag: bool = True, writes: bool = True) -> Refreshed:
        return refresh(self.config, self.store, changed, self.clock, retag, writes)

    def reconfigure(self, config: Config) -> None:
        """Pull with `config` from now on. A pull under way keeps the client it started
        with; an old client is closed once no pull can still be using it."""
        old = self.config
        self.config = config
        self.pool.timeout = config.settings.parse_timeout
        fetching = [getattr(config.settings, k) != getattr(old.settings, k) for k in FETCH_SETTINGS]
        if any(fetching) and self._owned is not None:
            import asyncio

            from aggregator.fetch import Fetcher

            previous = self._owned
            self.fetcher = self._owned = Fetcher(config.settings)
            asyncio.get_running_loop().call_later(
                old.settings.timeout + 1,
                lambda: asyncio.ensure_future(previous.aclose()),
            )

    def pause(self) -> None:
        """The pulls are over for now: let the workers wind down while the caller goes on."""
        self.pool.stop()

    async def close(self) -> None:
        if self._owned is not None:
            await self._owned.aclose()
        self.pool.close()


async def run_pass(
    config: Config,
    store: Storage,
    clock: Clock = utcnow,
    on_outcome: Callable[[PullOutcome], None] | None = None,
    everything: bool = False,
    only: frozenset[str] | None = None,
    plan: schedule.Plan | None = None,
    fetcher: Fetches | None = None,
    maintain: bool = True,
) -> PassResult:
    """Pull every enabled source that is due (`everything`: every enabled source; `only`:
    of these; `plan`: the sources the caller already found due), then refresh (publish if
    anything changed). `fetcher`: what pulls go through (by default a `fetch.Fetcher` on
    the config's settings, opened for the pass). `maintain` False: on a shared store,
    another node re-tags and prunes (the one holding the leader's lock)."""
    if maintain:
        retag_if_rules_changed(config, store)  # before the pull: new items are tagged already
        reindex_if_keys_changed(config, store, clock())  # and compared with the same keys
    enabled, skipped = plan or due_sources(config, store, clock(), everything)
    if only is not None:
        enabled = [s for s in enabled if s.name in only]
        skipped = [k for k in skipped if k.name in only]
    # a cron run with nothing due imports no HTTP client and no parse workers
    runner = Runner(config, store, clock, fetcher) if enabled else None
    started = time.monotonic()  # after the imports, which are the process's, not the pass's
    cpu_started = time.process_time()

    import asyncio

    # Pulls past the fetch limit would only hold their bodies waiting for a parse worker.
    in_flight = asyncio.Semaphore(config.settings.concurrency)

    async def one(runner: Runner, source: Source) -> PullOutcome | Busy:
        async with in_flight:
            outcome = await runner.pull(source, force=everything)
        if isinstance(outcome, model.Busy):  # another node's (a shared store)
            log.info("%s: left to another node: %s", source.name, outcome.reason)
            return outcome
        log_outcome(outcome)
        if on_outcome:
            on_outcome(outcome)
        return outcome

    async def renewing(runner: Runner) -> None:
        while True:
            await asyncio.sleep(lease_seconds(config.settings) / 4)
            try:
                runner.renew()
            except Exception as exc:  # the database away for a moment: try again later
                log.warning("renewing this node's leases failed: %s", exc)

    outcomes: list[PullOutcome] = []
    try:
        if runner is not None:
            renewer = asyncio.create_task(renewing(runner)) if runner.leasing else None
            with store.batch():
                done_ = await asyncio.gather(*(one(runner, s) for s in enabled))
            if renewer is not None:
                renewer.cancel()
            outcomes = [o for o in done_ if isinstance(o, model.PullOutcome)]
            busy = [b for b in done_ if isinstance(b, model.Busy)]
            skipped = [*skipped, *(Skipped(b.source, b.until, b.reason, True) for b in busy)]
            if runner.leasing is not None:  # publish what the other nodes are storing too
                await _others_done(runner.leasing, {b.source for b in busy if b.pulling}, config)
            runner.pause()
        pulled_cpu = time.process_time() - cpu_started
        publish_started = time.process_time()
        done = refresh(config, store, any(o.changed for o in outcomes), clock, writes=maintain)
    finally:
        if runner is not None:
            await runner.close()
    result = _summed(config, store, outcomes, skipped, done, started, pulled_cpu, publish_started)
    # the pass is done: they only delay the exit; on a shared store, the leader sends them
    if maintain and (pings := _pings(config, done)) is not None:
        await pings
    return result


async def _others_done(leasing: Leasing, sources: set[str], config: Config) -> None:
    """Wait (a lease's term at most) until other nodes have stored the sources they were
    pulling, so that this node's files show them."""
    import asyncio

    deadline = time.monotonic() + lease_seconds(config.settings)
    while sources and time.monotonic() < deadline:
        sources &= {lease.source for lease in leasing.leases()}
        if sources:
            await asyncio.sleep(0.2)


def quiet_pass(
    config: Config,
    store: Storage,
    plan: schedule.Plan,
    clock: Clock = utcnow,
    maintain: bool = True,
) -> PassResult:
    """`run --once` when no source is due: what `run_pass` does after its pulls (re-tag,
    prune, publish if the config changed, the summary), without an event loop: a cron
    run every few minutes loads no asyncio, no HTTP client and no parse workers."""
    if maintain:
        retag_if_rules_changed(config, store)
        reindex_if_keys_changed(config, store, clock())
    started, cpu = time.monotonic(), time.process_time()
    done = refresh(config, store, False, clock, writes=maintain)
    result = _summed(config, store, [], plan[1], done, started, 0.0, cpu)
    if maintain and (pings := _pings(config, done)) is not None:
        import asyncio

        asyncio.run(pings)
    return result


def _summed(
    config: Config,
    store: Storage,
    outcomes: list[PullOutcome],
    skipped: list[Skipped],
    done: Refreshed,
    started: float,
    pulled_cpu: float,
    publish_started: float,
) -> PassResult:
    """The pass's result, its CPU time by stage, logged as "pass done"."""
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


def _pings(config: Config, done: Refreshed) -> Coroutine[Any, Any, dict[str, bool]] | None:
    """The WebSub pings for the feeds just written, if a hub is set and any changed."""
    written = [p for r in done.published for p in r.written]
    if not (config.settings.hub and written):
        return None
    from aggregator.fetch import websub

    urls = websub.changed_feed_urls(config.settings.base_url, written)
    if not urls:
        return None
    return websub.ping(config.settings, urls)


def due_sources(
    config: Config, store: Storage, now: datetime, everything: bool
) -> tuple[list[Source], list[Skipped]]:
    """schedule.due_sources on the states stored (one query)."""
    return schedule.due_sources(
        config.sources, config.settings.interval, store.source_states(), now, everything
    )
