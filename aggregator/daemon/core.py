"""The daemon's life: scheduled pulls, debounced publishing, background re-tagging,
clean stops (the live config is watch.py's).

APScheduler (3.x, AsyncIOScheduler) runs one date-triggered job per source,
re-armed after each pull at the time `schedule` decides (interval or cron, backoff,
Retry-After, or never for a 410), and kept in the database so a restart resumes instead
of pulling everything at once. A job per source id never runs twice at once; the
Fetcher's semaphores bound pulls in flight. The store is only touched from the event
loop's thread; parsing runs in worker processes and re-tagging's pure part in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from aggregator import schedule, serve
from aggregator.daemon.notify import Notifier
from aggregator.daemon.watch import Watching
from aggregator.daemon.webhook import Webhook
from aggregator.errors import StoreError
from aggregator.fetch import websub
from aggregator.fetch.websub import changed_feed_urls
from aggregator.ingest.pipeline import Refreshed, Runner
from aggregator.ingest.pull import Clock, Fetches, log_outcome, utcnow
from aggregator.ingest.retag import Retagger, retag_plan
from aggregator.model import Busy, Config, PullOutcome, Source
from aggregator.schedule import is_gone
from aggregator.storage import Storage, describe

if TYPE_CHECKING:  # the PostgreSQL backend: loaded only by a daemon on such a store
    from aggregator.daemon.metrics import Metrics
    from aggregator.storage.postgres import Leadership

log = logging.getLogger("aggregator.daemon")

PUBLISH_DEBOUNCE = 2.0  # seconds: pulls finishing close together publish once
PUBLISH_RETRY = 30.0  # seconds before publishing again after a failure
STOP_GRACE = 5.0  # seconds in-flight pulls get to finish on SIGTERM before being cancelled
COMMIT_EVERY = 1.0  # seconds: pulls ending within this are committed together
NODE_EVERY = 2.0  # seconds: a node on a shared store renews its leases, looks for new items
NODE_FORGOTTEN = timedelta(days=1)  # a node silent this long is no longer listed


def raise_file_limit() -> int:
    """Raise the open-files limit to its hard limit (often 1,024 soft of 524,288): readers'
    connections, pulls and publishing share it, and at 1,024 a few hundred idle readers
    made pulls and publishing fail with "Too many open files". Returns the new limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        log.info("open files limit raised from %d to %d", soft, hard)
        return hard
    return soft


async def supervised(
    name: str, task: Callable[[], Awaitable[None]], first: float = 1.0, most: float = 60.0
) -> None:
    """Run a background task for the daemon's life: one that fails (a commit on a full
    disk) says so and starts again after a backoff (`first` seconds, doubling to `most`),
    so that state is committed again as soon as the disk has room."""
    backoff = first
    while True:
        started = time.monotonic()
        try:
            await task()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if time.monotonic() - started > most:
                backoff = first  # it ran a while: a new fault, not the same one again
            log.error(
                "%s failed (%s: %s); restarting in %gs", name, type(exc).__name__, exc, backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, most)


class Daemon(Watching):
    def __init__(
        self,
        path: Path,
        config: Config,
        store: Storage,
        clock: Clock = utcnow,
        fetcher: Fetches | None = None,
        leadership: Leadership | None = None,
    ):
        self.path = path
        # several daemons on one PostgreSQL store: each pulls the sources it claims, and the
        # one holding the leader's lock (storage/postgres/lock.py) also re-tags, prunes and
        # pings the hub; on SQLite (None) this daemon is the only one
        self.leadership = leadership
        self.leading = leadership is None or leadership.held
        self.generation = ""  # the store's generation this node last published
        self.fetcher = fetcher  # None: a `fetch.Fetcher` on the config's settings
        self.config = config
        self.store = store
        self.clock = clock
        self.rng = random.Random()
        self.inflight: set[asyncio.Task[None]] = set()
        self.pings: set[asyncio.Task[dict[str, bool]]] = set()
        self.stopping = asyncio.Event()
        self.reload_asked = asyncio.Event()
        self.dirty = False
        self.refused: dict[str, Any] | None = None  # the live config.toml refused: when, why
        self.publish_error = ""  # the last publish failed, and why
        self.unreported: list[PullOutcome] = []  # pulls done, logged once committed
        self.retagging: asyncio.Task[None] | None = None  # stored items being re-tagged
        self.metrics: Metrics | None = None  # served at /metrics while listening
        self.notifier = Notifier()  # systemd's READY/WATCHDOG/STOPPING, when under it
        self.webhook = Webhook(lambda: self.config.notify, clock)  # [notify] webhook alerts
        self._forget_at = 0.0  # when the leader next looks for nodes gone a day (monotonic)
        self._stamp = self._file_stamp()
        self._digest = self._file_digest()

    # ------------------------------------------------------------ life

    async def run(self) -> int:
        raise_file_limit()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload_asked.set)
        runner = None
        if self.config.settings.listen:  # first: a port in use stops the start, nothing else
            from aggregator.daemon.metrics import CONTENT_TYPE, Metrics

            metrics = self.metrics = Metrics(
                lambda: (self.store.count_items(), self.store.count_stories())
            )
            metrics.start(self.store.source_rows(), [s.name for s in self.config.sources])
            runner = await serve.start(
                self.config.settings.output_dir,
                self.config.settings.listen,
                self.health,
                max_age=int(min(self.config.settings.interval, 3600)),
                hint=f'; choose another with `listen` in {self.path} ("" turns it off)',
                pulls=self.config.settings.concurrency,
                metrics=lambda: (metrics.exposition(), CONTENT_TYPE),
            )
        self.runner = Runner(self.config, self.store, self.clock, self.fetcher)
        self.webhook.start()
        self.scheduler = AsyncIOScheduler(
            event_loop=loop,
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.scheduler.start()
        n, f = len(self.config.sources), len(self.config.feeds)
        log.info(
            "daemon started: %d source%s, %d feed%s, database %s",
            *(n, "s" * (n != 1), f, "s" * (f != 1)),
            describe(self.config.settings.database),  # a URI without its password
        )
        # Pulls are committed together, each still all or nothing (a savepoint), as in a
        # pass: one commit a source rewrote the random-key index pages once per source.
        self._set_refused(None)  # started on a valid config: a past refusal is over
        with self.store.batch(COMMIT_EVERY):
            self._announce(self.runner.refresh(False, retag=False, writes=self.leading))
            standby = None
            if self.leading:
                self._retag_soon()
            elif self.leadership is not None:
                log.info(
                    "another node leads (re-tags, prunes, pings the hub); this one pulls the "
                    "sources it claims, and takes over leading if that node stops"
                )
            for source in self.config.sources:
                self._schedule_start(source)
            if self.leadership is not None:
                self._heartbeat()  # `status` lists this node from the start
                standby = asyncio.create_task(
                    supervised("the node loop", self._node_loop, NODE_EVERY, 30.0)
                )
            watcher = asyncio.create_task(supervised("the config watcher", self._watch))
            committer = asyncio.create_task(supervised("the commit loop", self._commit_loop))
            # served (the listener is open) and every pull scheduled: systemd may say "started"
            self.notifier.ready(self._summary())
            petting = asyncio.create_task(self._watchdog()) if self.notifier.watchdog else None
            await self.stopping.wait()
            self.notifier.stopping()
            if petting is not None:
                petting.cancel()
            if standby is not None:
                standby.cancel()
                self._heartbeat("stopped")

            log.info("stopping: no new pulls; %d in flight", len(self.inflight))
            # Paused, not shut down: shutting down cancels every job's task at once (the
            # grace below would be void, and a job started a moment ago would die with a
            # traceback in APScheduler's log). Jobs already handed over see `stopping`.
            self.scheduler.pause()
            watcher.cancel()
            committer.cancel()
            if self.retagging is not None:  # redone at the next start: the rules stay unmarked
                self.retagging.cancel()
                await asyncio.gather(self.retagging, return_exceptions=True)
            if self.inflight:
                _, pending = await asyncio.wait(self.inflight, timeout=STOP_GRACE)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            for _ in range(3):  # jobs handed over at the last moment return at `stopping`
                await asyncio.sleep(0)
            self.scheduler.shutdown(wait=False)
            if self.dirty:
                self._announce(self.runner.refresh(True, retag=False))
        self._flush_reports()  # the batch is committed
        if self.pings:
            await asyncio.wait(self.pings, timeout=STOP_GRACE)
        await self.webhook.close(STOP_GRACE)
        await self.runner.close()
        if runner is not None:
            await runner.cleanup()
        log.info("stopped cleanly")
        return 0

    async def _watchdog(self) -> None:
        """Pet systemd's watchdog from the event loop: a loop blocked for the whole
        `WatchdogSec` misses it, and systemd restarts the daemon."""
        while True:
            self.notifier.pet()
            await asyncio.sleep(self.notifier.watchdog)

    @property
    def role(self) -> str:
        """On a shared store, what this node does besides pulling: "leader" (re-tags,
        prunes, pings the hub) or "follower"."""
        return "leader" if self.leading else "follower"

    async def _node_loop(self) -> None:
        """Several nodes on one store, every few seconds: renew the leases of the pulls
        under way, note this node for `status`, lead if no node does (or make sure the
        lock is still ours), and publish what other nodes stored (a new generation). A
        leader whose lock's session died (the server restarted, the network cut) leaves
        leading to another node. With the database unreachable this raises, and
        `supervised` runs it again with a backoff: the node serves what it has."""
        assert self.leadership is not None
        while True:
            await asyncio.sleep(NODE_EVERY)
            if self.inflight:
                self.runner.renew()
            if self.leading and not self.leadership.still_held():
                self._step_down()
            self._heartbeat()
            if not self.leading and self.leadership.try_acquire():
                self.leading = True
                log.info("leading: no other node holds the leader's lock")
                self._retag_soon()
            if self.leading and time.monotonic() >= self._forget_at:
                self._forget_at = time.monotonic() + 3600  # at the start, then hourly
                self._forget_gone_nodes()
            generation = self.store.meta("generation")
            if generation != self.generation:
                self.generation = generation
                self._publish_soon()

    def _forget_gone_nodes(self) -> None:
        """Drop the heartbeats of nodes silent for a day (each process start is a node
        of its own: `status` would list every past one)."""
        cutoff = self.clock() - NODE_FORGOTTEN
        for key, value in self.store.metas("node:").items():
            try:
                gone = datetime.fromisoformat(json.loads(value)["seen"]) < cutoff
            except (ValueError, KeyError, TypeError):
                gone = True  # cut short or written by hand (no time zone...): not a node's
            if gone:
                with self.store.transaction():
                    self.store.forget_meta(key)

    def _step_down(self) -> None:
        """Stop leading (pulls go on, each under its lease): another node may lead now."""
        self.leading = False
        if self.retagging is not None:
            self.retagging.cancel()
        log.error("lost the leader's lock (its connection was cut): following")

    def _heartbeat(self, role: str | None = None) -> None:
        """Note this node in the store, for `status`: its role and when it was last seen."""
        beat = {"role": role or self.role, "seen": self.clock().isoformat(), "pid": os.getpid()}
        node = self.runner.leasing.node if self.runner.leasing else f"{os.uname().nodename}"
        with self.store.transaction():
            self.store.set_meta(f"node:{node}", json.dumps(beat))

    async def _commit_loop(self) -> None:
        """Commit what the batch holds once pulls pause (a pull commits the batch itself
        when it ends COMMIT_EVERY after the last commit): a crash loses about that much.
        Pulls are logged once committed, never before: a full disk must not show "3 new"
        for items it rolls back."""
        while True:
            await asyncio.sleep(COMMIT_EVERY)
            try:
                self.store.commit_pending()
            except Exception:
                if not self.store.in_transaction:  # SQLite rolled the batch back
                    lost, self.unreported = self.unreported, []
                    if lost:
                        log.error(
                            "%d pull(s) not stored (the commit failed): %s; they are made again",
                            len(lost),
                            ", ".join(sorted({o.source for o in lost})),
                        )
                raise
            self._flush_reports()

    def _report(self, outcome: PullOutcome) -> None:
        """Log a pull once what it stored is committed (at once when it already is)."""
        if self.metrics is not None:
            self.metrics.pulled(outcome, self.clock())
        self.webhook.pulled(outcome)
        self.unreported.append(outcome)
        if not self.store.in_transaction:
            self._flush_reports()

    def _flush_reports(self) -> None:
        reported, self.unreported = self.unreported, []
        for outcome in reported:
            log_outcome(outcome)

    def _on_stop(self, sig: signal.Signals) -> None:
        log.info("%s received", sig.name)
        self.stopping.set()

    # ------------------------------------------------------------ pulls

    def _schedule_start(self, source: Source) -> None:
        if not source.enabled:
            return
        state = self.store.source_state(source.name)
        if is_gone(source, state):
            log.info("%s: gone (HTTP 410), not scheduled until its entry changes", source.name)
            return
        nxt = schedule.on_start(
            source,
            self.config.settings.interval,
            state.next_pull,
            self.clock(),
            self.rng,
            state.next_reason,
        )
        self._arm(source.name, nxt.at, nxt.reason)

    def _arm(self, name: str, at: datetime | None, reason: str) -> None:
        with self.store.transaction():
            self.store.set_next_pull(name, at, reason)
        if at is None:
            self._disarm(name)
            return
        self._job(name, at)

    def _job(self, name: str, at: datetime) -> None:
        """The pull of `name` at `at` (one job per source: a new time replaces the old)."""
        self.scheduler.add_job(
            self._pull,
            DateTrigger(run_date=at),
            args=(name,),
            id=f"pull:{name}",
            replace_existing=True,
        )

    def _disarm(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.scheduler.remove_job(f"pull:{name}")

    async def _pull(self, name: str) -> None:
        source = self.config.source(name)
        if source is None or not source.enabled or self.stopping.is_set():
            return
        task = asyncio.current_task()
        assert task is not None
        self.inflight.add(task)
        try:
            outcome = await self.runner.pull(source)
        except asyncio.CancelledError:  # stopping, past the grace: one line, no traceback
            log.info("%s: pull cancelled at stop; nothing of it was stored", name)
            return
        except Exception as exc:  # a bug, or the database gone: retry later, never unscheduled
            at = self.clock() + timedelta(seconds=60)
            if isinstance(exc, StoreError):  # a database outage: /healthz says it already
                log.error("%s: pull failed: %s; retried in 60 s", name, exc)
                self._job(name, at)
                return
            log.exception("%s: pull crashed", name)
            try:
                self._arm(name, at, "retry after an internal error")
            except Exception:  # the store cannot note it: the job alone keeps it scheduled
                self._job(name, at)
            return
        finally:
            self.inflight.discard(task)
        if isinstance(outcome, Busy):  # another node's for now: ask again once it is done
            log.debug("%s: %s; asking again at %s", name, outcome.reason, outcome.until)
            if not self.stopping.is_set():
                self._job(name, outcome.until + timedelta(seconds=self.rng.uniform(0.5, 2.0)))
            return
        self._report(outcome)
        current = self.config.source(name)
        if current is not None and current.enabled and not self.stopping.is_set():
            if schedule.source_print(current) == schedule.source_print(source):
                if outcome.next_pull is None:
                    self._disarm(name)
                else:
                    self._job(name, outcome.next_pull)
            else:  # the entry changed while this pull ran: start afresh
                self._schedule_start(current)
        if outcome.changed:
            self._publish_soon()

    def _retag_soon(self) -> None:
        """Re-tag the stored items the config's rules change, in the background: a page
        at a time, the tagging in a thread, so pulls, /healthz and SIGTERM are served
        meanwhile (re-tagging 400 items with a backtracking pattern froze them for 35 s).
        A re-tag under way for an older config gives way to this one."""
        if self.retagging is not None:
            self.retagging.cancel()
        plan = retag_plan(self.config, self.store)
        if plan is None:
            self.retagging = None
            return
        retagger = Retagger(self.config, self.store, plan)

        async def run() -> None:
            try:
                while items := retagger.page():
                    retagger.write(await asyncio.to_thread(retagger.tag, items))
                if retagger.finish():
                    self._publish_soon()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store error: said, and tried again at the next reload
                log.error("re-tagging stored items failed: %s", exc)

        self.retagging = asyncio.create_task(run())

    def _publish_soon(self) -> None:
        self.dirty = True
        if self.scheduler.get_job("publish") is None and not self.stopping.is_set():
            at = self.clock() + timedelta(seconds=PUBLISH_DEBOUNCE)
            self.scheduler.add_job(self._publish, DateTrigger(run_date=at), id="publish")

    async def _publish(self) -> None:
        self.dirty = False
        if self.leadership is not None:
            self.generation = self.store.meta("generation")
        self._announce(self.runner.refresh(True, retag=False, writes=self.leading))
        self._flush_reports()  # refresh committed what the pulls stored

    def _set_refused(self, refused: dict[str, Any] | None) -> None:
        """Remember (in the database too, for `status`) that the file on disk is refused."""
        self.refused = refused
        if self.metrics is not None:
            self.metrics.config(refused=refused is not None)
        self.webhook.config(refused)
        with self.store.transaction():
            self.store.set_meta("config_refused", json.dumps(refused) if refused else "")

    def _announce(self, done: Refreshed) -> None:
        """Ping the WebSub hub for the feeds that changed, beside the work; when publishing
        failed (disk full, read-only folder), try again later."""
        self.publish_error = done.error
        self.webhook.published(done.error)
        if self.metrics is not None:
            if done.error:
                self.metrics.publish_failures.inc()
            elif done.published:
                feeds = [(p.feed, p.items, bool(p.written)) for p in done.published]
                self.metrics.published(feeds, done.seconds)
        if done.error:
            self.dirty = True
            if not self.stopping.is_set():
                at = self.clock() + timedelta(seconds=PUBLISH_RETRY)
                self.scheduler.add_job(
                    self._publish, DateTrigger(run_date=at), id="publish", replace_existing=True
                )
            return
        settings = self.config.settings
        urls = changed_feed_urls(settings.base_url, [p for r in done.published for p in r.written])
        if settings.hub and urls and self.leading:  # once per change: from the leader
            task = asyncio.create_task(websub.ping(settings, urls))
            self.pings.add(task)
            task.add_done_callback(self.pings.discard)
            task.add_done_callback(self._pinged)

    def _pinged(self, task: asyncio.Task[dict[str, bool]]) -> None:
        if self.metrics is not None and not task.cancelled() and task.exception() is None:
            self.metrics.pinged(task.result())

    def health(self) -> dict[str, Any]:
        """What /healthz says: "ok", or "degraded" with each reason (served as a 503, which
        a load balancer or a monitor reads without parsing)."""
        names = {s.name for s in self.config.sources if s.enabled}
        shared = {} if self.leadership is None else {"role": self.role}
        try:
            rows = self.store.source_rows()
            items = self.store.count_items()
        except Exception as exc:  # a database gone (a PostgreSQL server down): still serving
            return shared | {
                "status": "degraded",
                "reasons": [f"the database cannot be read ({' '.join(str(exc).split())[:200]})"],
                "sources": len(names),
                "feeds": [f.name for f in self.config.feeds],
            }
        failing = sorted(r.name for r in rows if r.name in names and r.consecutive_failures)
        reasons = []
        if names and len(failing) == len(names):
            reasons.append(f"every source is failing ({len(names)})")
        if self.refused:
            reasons.append(
                f"{self.path.name} refused at {self.refused['at'][11:16]}Z "
                f"({self.refused['first']}); running on the last good one"
            )
        if self.publish_error:
            reasons.append(f"publishing failed: {self.publish_error}")
        return shared | {
            "status": "degraded" if reasons else "ok",
            "reasons": reasons,
            "sources": len(names),
            "failing": failing,
            "feeds": [f.name for f in self.config.feeds],
            "items": items,
        }
