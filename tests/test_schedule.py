"""The pure scheduling policy, with a fixed clock and a seeded random generator."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from aggregator.model import Source
from aggregator.schedule import (
    BACKOFF_CAP,
    RETRY_AFTER_CAP,
    after_pull,
    backoff,
    due_now,
    on_start,
    parse_retry_after,
    regular,
    source_print,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
SRC = Source(name="s", url="https://x.example/feed")


def rng() -> random.Random:
    return random.Random(42)


def test_interval_with_a_little_jitter():
    for seed in range(50):
        nxt = regular(SRC, 900, NOW, random.Random(seed))
        assert timedelta(seconds=855) <= nxt.at - NOW <= timedelta(seconds=945)
    assert regular(SRC, 900, NOW, rng()).reason == "interval 15m"
    own = Source(name="s", url="https://x.example/", interval=60)
    assert timedelta(seconds=57) <= regular(own, 900, NOW, rng()).at - NOW <= timedelta(seconds=63)


def test_cron_uses_the_expression():
    src = Source(name="s", url="https://x.example/", cron="*/10 * * * *")
    nxt = regular(src, 900, NOW + timedelta(minutes=3), rng())
    assert NOW + timedelta(minutes=10) <= nxt.at <= NOW + timedelta(minutes=10, seconds=5)
    assert nxt.reason == "cron */10 * * * *"


def test_backoff_doubles_up_to_a_cap_and_never_gives_up():
    delays = [backoff(n, 60, random.Random(0)) for n in range(1, 20)]
    assert 60 <= delays[0] <= 72 and 120 <= delays[1] <= 144 and 240 <= delays[2] <= 288
    assert all(d <= BACKOFF_CAP for d in delays)
    assert delays[-1] == BACKOFF_CAP or delays[-1] >= BACKOFF_CAP * 0.99
    nxt = after_pull(
        SRC, 60, ok=False, failures=3, status=500, retry_after=None, now=NOW, rng=rng()
    )
    assert nxt.reason == "backoff after 3 failures"
    assert timedelta(seconds=240) <= nxt.at - NOW <= timedelta(seconds=288)
    # success resets to the interval
    ok = after_pull(SRC, 60, ok=True, failures=0, status=200, retry_after=None, now=NOW, rng=rng())
    assert ok.reason == "interval 1m"


def test_retry_after_seconds_and_dates():
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after("Fri, 27 Nov 2026 12:05:00 GMT", NOW) == 300
    assert parse_retry_after("Fri, 27 Nov 2026 11:00:00 GMT", NOW) == 1  # in the past
    assert parse_retry_after("999999999", NOW) == RETRY_AFTER_CAP
    assert parse_retry_after("soon", NOW) is None
    nxt = after_pull(SRC, 60, ok=False, failures=1, status=429, retry_after=120, now=NOW, rng=rng())
    assert nxt.at == NOW + timedelta(seconds=120) and "Retry-After" in nxt.reason
    # a 503 without Retry-After backs off like any failure
    plain = after_pull(
        SRC, 60, ok=False, failures=1, status=503, retry_after=None, now=NOW, rng=rng()
    )
    assert plain.reason.startswith("backoff")


def test_gone_is_not_scheduled_until_the_entry_changes():
    nxt = after_pull(
        SRC, 60, ok=False, failures=1, status=410, retry_after=None, now=NOW, rng=rng()
    )
    assert nxt.at is None and "410" in nxt.reason
    moved = Source(name="s", url="https://x.example/new-feed")
    assert source_print(moved) != source_print(SRC)
    retitled = Source(name="s", url="https://x.example/feed", title="New title", priority=3)
    assert source_print(retitled) == source_print(SRC)


def test_start_resumes_or_spreads_overdue_sources():
    later = NOW + timedelta(minutes=7)
    assert on_start(SRC, 900, later, NOW, rng()).at == later
    for seed in range(20):
        nxt = on_start(SRC, 900, NOW - timedelta(hours=1), NOW, random.Random(seed))
        assert NOW <= nxt.at <= NOW + timedelta(seconds=30)
    assert on_start(SRC, 900, None, NOW, rng()).reason == "first pull"
    # a restart keeps why: a backoff stays a backoff in status (it said "resumed")
    backing_off = on_start(SRC, 900, later, NOW, rng(), "backoff after 3 failures")
    assert backing_off.reason == "backoff after 3 failures"


def test_a_cron_run_pulls_what_is_due_with_a_tolerance():
    """run --once keeps the daemon's schedule (issue 16, item 2)."""
    six_hours = Source(name="s", url="https://x.example/feed", interval=6 * 3600)

    def due(source, at, reason="interval 15m", gone=False):
        return due_now(source, 900, at, reason, gone, NOW)

    assert due(SRC, None).due  # never pulled
    assert due(SRC, NOW - timedelta(seconds=1)).due  # overdue
    # a */15 cron meets a 15-minute interval whatever the jitter: every stored next pull
    # of a pull 15 minutes ago (+-45 s) is due at the cron's next run, a few seconds early
    for seed in range(200):
        nxt = after_pull(
            SRC, 900, ok=True, failures=0, status=200, retry_after=None,
            now=NOW - timedelta(seconds=900 - 5), rng=random.Random(seed),
        )  # fmt: skip
        assert due(SRC, nxt.at, nxt.reason).due
    # a 6-hour source pulled 15 minutes ago waits, and says until when and why
    waits = due(six_hours, NOW + timedelta(hours=5, minutes=45), "interval 6h")
    assert not waits.due and waits.until == NOW + timedelta(hours=5, minutes=45)
    assert waits.reason == "interval 6h"
    # the server's Retry-After gets no tolerance; the project's own backoff does
    soon = NOW + timedelta(seconds=30)
    assert not due(SRC, soon, "Retry-After 1h (HTTP 429)").due
    assert due(SRC, soon, "backoff after 2 failures").due
    assert not due(SRC, NOW + timedelta(hours=1), "backoff after 3 failures").due
    # gone: not until its entry changes
    gone = due(SRC, None, "gone (HTTP 410): resumes when its config entry changes", gone=True)
    assert not gone.due and gone.until is None
    # a next pull further off than the entry explains was set for an older entry
    assert due(SRC, NOW + timedelta(hours=5), "interval 6h").due
