"""What the daemon exposes at `GET /metrics`, in Prometheus' text format (prometheus_client).

docs/operations.md builds its dashboard and its first alerts on these names; keep them.
Labels stay bounded: a source's name, a feed's name, a pull's result (ok, not_modified or
an error kind), an item's outcome; never an item, a URL or a message. A source removed from
the config leaves its series until the next restart.

The daemon records what it does (`pulled`, `published`, `pinged`, `config`); what the store
holds (items, stories) is counted when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from aggregator.model import PullOutcome, SourceRecord

# the text format every Prometheus (and VictoriaMetrics, Grafana Agent...) reads
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# a pull's seconds: a 304 takes milliseconds, a slow source the fetch deadline (20 s)
PULL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
PUBLISH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Stored(Collector):
    """Items and stories in the store, counted at each scrape (two indexed counts)."""

    def __init__(self, counts: Callable[[], tuple[int, int]]):
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            items, stories = self.counts()
        except Exception:  # the database is down: /healthz says so; the gauges are absent
            return
        yield GaugeMetricFamily("aggregator_items_stored", "Items (copies) in the store", items)
        yield GaugeMetricFamily("aggregator_stories_stored", "Stories in the store", stories)


class Metrics:
    """The daemon's metrics, in a registry of their own (nothing global)."""

    def __init__(self, stored: Callable[[], tuple[int, int]]):
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twins
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu seconds, open fds
        self.pulls = Counter(
            "aggregator_pulls",
            "Pulls by source and result: ok, not_modified, or the error kind",
            ["source", "result"],
            registry=r,
        )
        self.pull_seconds = Histogram(
            "aggregator_pull_duration_seconds",
            "Wall time of a pull, fetch to stored",
            buckets=PULL_BUCKETS,
            registry=r,
        )
        self.items = Counter(
            "aggregator_items",
            "Items pulled by outcome: new, updated, duplicate (joined another source's story), "
            "unchanged, too_old",
            ["outcome"],
            registry=r,
        )
        self.last_success = Gauge(
            "aggregator_source_last_success_timestamp_seconds",
            "When each source was last pulled successfully (Unix time)",
            ["source"],
            registry=r,
        )
        self.failures = Gauge(
            "aggregator_source_consecutive_failures",
            "Failed pulls in a row, per source (0 once one succeeds)",
            ["source"],
            registry=r,
        )
        self.publish_seconds = Histogram(
            "aggregator_publish_duration_seconds",
            "Wall time of a refresh that published (re-tag, prune, write the files)",
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )
        self.publish_failures = Counter(
            "aggregator_publish_failures", "Publishes that failed (disk full...)", registry=r
        )
        self.feed_items = Gauge(
            "aggregator_feed_items", "Items in each published feed", ["feed"], registry=r
        )
        self.feed_changed = Gauge(
            "aggregator_feed_last_change_timestamp_seconds",
            "When each published feed's files last changed (Unix time)",
            ["feed"],
            registry=r,
        )
        self.pings = Counter(
            "aggregator_websub_pings", "WebSub pings by result: ok, failed", ["result"], registry=r
        )
        self.config_generation = Gauge(
            "aggregator_config_generation",
            "The config in use: 1 at start, +1 at each reload taken",
            registry=r,
        )
        self.config_refused = Gauge(
            "aggregator_config_refused",
            "1 while config.toml on disk is refused (running on the last good one)",
            registry=r,
        )
        r.register(_Stored(stored))
        self.config_generation.set(1)

    def start(self, rows: Iterable[SourceRecord], names: Iterable[str]) -> None:
        """Each configured source's series from what the store remembers (a restart does
        not zero a failing source's count)."""
        known = {r.name: r for r in rows}
        for name in names:
            row = known.get(name)
            self.failures.labels(name).set(row.consecutive_failures if row else 0)
            if row is not None and row.last_ok is not None:
                self.last_success.labels(name).set(row.last_ok.timestamp())

    def pulled(self, o: PullOutcome, now: datetime) -> None:
        result = "not_modified" if o.ok and o.not_modified else "ok" if o.ok else o.error_kind
        self.pulls.labels(o.source, result or "internal").inc()
        self.pull_seconds.observe(o.elapsed)
        for outcome, n in (
            ("new", o.new),
            ("updated", o.updated),
            ("duplicate", o.duplicate),
            ("unchanged", o.unchanged),
            ("too_old", o.skipped),
        ):
            if n:
                self.items.labels(outcome).inc(n)
        self.failures.labels(o.source).set(o.failures)  # as stored: every node's pulls
        if o.ok:
            self.last_success.labels(o.source).set(now.timestamp())

    def published(self, feeds: Iterable[tuple[str, int, bool]], seconds: float) -> None:
        """(feed, items, files changed) of a refresh that published."""
        self.publish_seconds.observe(seconds)
        now = time.time()
        for feed, items, changed in feeds:
            self.feed_items.labels(feed).set(items)
            if changed:
                self.feed_changed.labels(feed).set(now)

    def pinged(self, results: dict[str, bool]) -> None:
        for ok in results.values():
            self.pings.labels("ok" if ok else "failed").inc()

    def config(self, reloaded: bool = False, refused: bool | None = None) -> None:
        if reloaded:
            self.config_generation.inc()
        if refused is not None:
            self.config_refused.set(1 if refused else 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
