"""When to pull each source next, and why: interval or cron, backoff, Retry-After, gone.

Pure: every function takes `now` and a random generator, so the policy is tested with a
fixed clock. APScheduler's CronTrigger serves as a calculator for cron expressions; the
daemon only runs what this module decides.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from aggregator.model import Source, SourceState
from aggregator.units import format_duration, parse_http_date

JITTER = 0.05  # +-5% of the interval, at most MAX_JITTER
MAX_JITTER = 300.0
BACKOFF_CAP = 6 * 3600.0  # a failing source is still tried at least every 6 hours
RETRY_AFTER_CAP = 24 * 3600.0
RETRY_AFTER_MIN = 1.0
RESUME_SPREAD = 30.0  # overdue sources at start are spread over this many seconds
FIRST_SPREAD = 2.0  # new sources, over this many
CRON_TOLERANCE = 0.1  # run --once: a source this close to due (share of its interval) is due
CRON_TOLERANCE_CAP = 600.0
PERMANENT_REDIRECTS_TO_MOVE = 3  # 301/308s in a row to one target before pulling it directly


class NextPull(NamedTuple):
    at: datetime | None  # None: not scheduled (gone)
    reason: str


def source_print(source: Source) -> str:
    """Fingerprint of a source's config entry: a 410 or a move holds until it changes."""
    entry = source._replace(order=0, priority=0, title="", tags=())
    return hashlib.sha256(repr(entry).encode()).hexdigest()[:16]


def _jitter(seconds: float, rng: random.Random) -> float:
    spread = min(seconds * JITTER, MAX_JITTER)
    return seconds + rng.uniform(-spread, spread)


def interval_of(source: Source, default: float) -> float:
    return source.interval or default


def regular(source: Source, default_interval: float, now: datetime, rng: random.Random) -> NextPull:
    """The source's own rhythm: its cron expression, else its interval, with a little jitter."""
    if source.cron:
        from apscheduler.triggers.cron import CronTrigger

        trigger = CronTrigger.from_crontab(source.cron, timezone=UTC)
        at = trigger.get_next_fire_time(None, now + timedelta(seconds=1))
        return NextPull(at + timedelta(seconds=rng.uniform(0, 5)), f"cron {source.cron}")
    seconds = interval_of(source, default_interval)
    return NextPull(
        now + timedelta(seconds=_jitter(seconds, rng)), f"interval {format_duration(seconds)}"
    )


def backoff(failures: int, interval: float, rng: random.Random) -> float:
    """Seconds to wait after `failures` consecutive failures: doubling, capped, jittered."""
    cap = max(BACKOFF_CAP, interval)
    delay: float = min(cap, interval * 2 ** max(0, failures - 1))
    return min(cap, delay * rng.uniform(1.0, 1.2))


def parse_retry_after(value: str, now: datetime) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), capped."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        when = parse_http_date(value)
        if when is None:
            return None
        seconds = (when - now).total_seconds()
    return min(RETRY_AFTER_CAP, max(RETRY_AFTER_MIN, seconds))


def after_pull(
    source: Source,
    default_interval: float,
    *,
    ok: bool,
    failures: int,
    status: int | None,
    retry_after: float | None,
    now: datetime,
    rng: random.Random,
) -> NextPull:
    """The next pull after one that ended with `status` (`failures` counts this one)."""
    if status == 410:
        return NextPull(None, "gone (HTTP 410): resumes when its config entry changes")
    interval = interval_of(source, default_interval)
    if status in (429, 503) and retry_after is not None:
        return NextPull(
            now + timedelta(seconds=retry_after),
            f"Retry-After {format_duration(round(retry_after))} (HTTP {status})",
        )
    if not ok and failures > 0:
        delay = backoff(failures, interval, rng)
        plural = "s" if failures > 1 else ""
        return NextPull(now + timedelta(seconds=delay), f"backoff after {failures} failure{plural}")
    return regular(source, default_interval, now, rng)


def on_start(
    source: Source,
    default_interval: float,
    stored: datetime | None,
    now: datetime,
    rng: random.Random,
    reason: str = "",
) -> NextPull:
    """Where a (re)started daemon picks up: the stored time (with the stored `reason`: a
    backoff stays a backoff), or soon, spread, if overdue."""
    if stored is not None and stored > now:
        return NextPull(stored, reason or "resumed")
    interval = interval_of(source, default_interval)
    if stored is None:  # new source: pull now (the fetcher's limits bound a crowd)
        return NextPull(
            now + timedelta(seconds=rng.uniform(0, min(FIRST_SPREAD, interval))), "first pull"
        )
    spread = min(RESUME_SPREAD, interval)
    return NextPull(now + timedelta(seconds=rng.uniform(0, spread)), "overdue")


class Due(NamedTuple):
    due: bool
    until: datetime | None = None  # when it is next due (None: not while its entry stands)
    reason: str = ""  # why it waits, as stored with its next pull


def due_now(
    source: Source,
    default_interval: float,
    next_pull: datetime | None,
    reason: str,
    gone: bool,
    now: datetime,
) -> Due:
    """Whether a one-shot run (cron) pulls `source` now, from the next pull stored after
    its last one.

    A source is due a little early, by a tenth of its interval (at most 10 minutes): a
    `*/15` cron then meets a 15-minute interval despite the jitter and the pass's own
    duration, instead of pulling every other run. A Retry-After is the server's explicit
    wish and gets no tolerance; a backoff, the project's own, does. A stored time further
    away than the source's rhythm can explain was set for an older entry (a shorter
    interval since): due.
    """
    if gone:
        return Due(False, None, reason or "gone (HTTP 410)")
    if next_pull is None or next_pull <= now:
        return Due(True)
    interval = interval_of(source, default_interval)
    wait = (next_pull - now).total_seconds()
    if reason.startswith("Retry-After"):
        return Due(False, next_pull, reason)
    if reason.startswith("backoff"):
        limit = max(BACKOFF_CAP, interval) * 1.2
    elif source.cron:
        limit = 366 * 86400.0  # a cron's next time can be far; trust it
    else:
        limit = interval + min(interval * JITTER, MAX_JITTER) + 1
    if wait > limit:
        return Due(True)
    if wait <= min(interval * CRON_TOLERANCE, CRON_TOLERANCE_CAP):
        return Due(True)
    return Due(False, next_pull, reason)


class Skipped(NamedTuple):
    """A source a one-shot run left alone: not due until `until` (None: gone), `reason`."""

    name: str
    until: datetime | None
    reason: str
    elsewhere: bool = False  # another node sharing the store pulls (or pulled) it


def is_gone(source: Source, state: SourceState) -> bool:
    """The source answered 410 and its config entry has not changed since."""
    return bool(state.gone_print) and state.gone_print == source_print(source)


Plan = tuple[list[Source], list[Skipped]]  # the sources a run pulls, those it leaves


def due_sources(
    sources: tuple[Source, ...],
    default_interval: float,
    states: dict[str, SourceState],
    now: datetime,
    everything: bool,
) -> Plan:
    """The enabled sources a one-shot run pulls now, and those it leaves for later, from
    each one's stored state: the schedule the daemon keeps (interval or cron, backoff,
    Retry-After, 410) holds for cron runs too, so a `*/15` cron does not pull a 6-hour
    source every time. `everything`: every enabled source is due."""
    pulled: list[Source] = []
    skipped: list[Skipped] = []
    for source in sources:
        if not source.enabled:
            continue
        state = states.get(source.name) or SourceState(name=source.name)
        if everything:
            pulled.append(source)
            continue
        gone = is_gone(source, state)
        due = due_now(source, default_interval, state.next_pull, state.next_reason, gone, now)
        if due.due:
            pulled.append(source)
        else:
            skipped.append(Skipped(source.name, due.until, due.reason))
    return pulled, skipped
