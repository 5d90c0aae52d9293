"""One pull of one source: fetch -> (304 or same bytes: done) -> parse, normalize,
language, tag (in a worker) -> dedupe and store -> the next pull time, recorded.

Whatever fails becomes the source's `PullOutcome`, recorded with its backoff; nothing one
source does stops the others.

On a store several nodes pull into, the pull holds the source's lease (`Lease`): each unit
it writes checks the lease first, and its last one ends it; a host's fetches in flight are
counted over every node (`Leasing.fetch_slot`).
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from aggregator import model, schedule
from aggregator.errors import ErrorKind, FetchError, LeaseLost, ParseError
from aggregator.faults import crash_point
from aggregator.ingest.stories import complete, store_items
from aggregator.model import Config, Source, SourceState
from aggregator.schedule import is_gone
from aggregator.storage import Leasing, Storage

if TYPE_CHECKING:
    from aggregator.ingest.workers import ParsePool
    from aggregator.model import Fetched, Lease, ParsedFeed, PullOutcome

log = logging.getLogger("aggregator.pull")
Clock = Callable[[], datetime]


class Fetches(Protocol):
    """What a pull asks of the HTTP side (`fetch.Fetcher`; a fake one in tests)."""

    async def fetch(self, url: str, state: SourceState | None = None) -> Fetched: ...


_rng = random.Random()


def utcnow() -> datetime:
    return datetime.now(UTC)


def effective_url(source: Source, state: SourceState) -> str:
    """The config's URL, or where it moved after enough permanent redirects in a row."""
    if (
        state.redirect_url
        and state.redirect_count >= schedule.PERMANENT_REDIRECTS_TO_MOVE
        and state.redirect_print == schedule.source_print(source)
    ):
        return state.redirect_url
    return source.url


class Held:
    """The lease a pull holds on a shared store, and the store's leases (None: one writer).
    `fetched` is called once the fetch is over (the node's own slot for the host, which
    the claim was made under, is given back: see `pipeline.Runner.pull`)."""

    def __init__(
        self,
        lease: Lease | None = None,
        leasing: Leasing | None = None,
        fetched: Callable[[], None] | None = None,
    ):
        self.lease, self.leasing, self.fetched = lease, leasing, fetched

    def check(self, end: bool = False) -> None:
        """Inside a unit the pull writes: raise LeaseLost unless the lease still holds."""
        if self.lease is not None and self.leasing is not None:
            self.leasing.hold(self.lease, end)

    async def fetch(
        self, fetcher: Fetches, url: str, state: SourceState, config: Config, clock: Clock
    ) -> Fetched:
        """`fetcher.fetch`, once fewer than `per_host` fetches from the host are in flight
        on every node sharing the store (the claim took a slot when one was free)."""
        lease, leasing = self.lease, self.leasing
        if lease is None or leasing is None:
            return await fetcher.fetch(url, state)
        import asyncio  # a cron run with nothing due loads no event loop
        from urllib.parse import urlsplit

        host = (urlsplit(url).hostname or "").lower()
        try:
            if not lease.fetching:  # other nodes' fetches from the host fill its slots
                while not leasing.fetch_slot(lease, host, config.settings.per_host, clock()):
                    await asyncio.sleep(_rng.uniform(0.02, 0.1))
            fetched = await fetcher.fetch(url, state)
        except BaseException:
            leasing.end_fetch(lease)
            raise
        finally:
            if self.fetched is not None:
                self.fetched()
        if not fetched.not_modified:  # a 304's lease (and slot) ends at once with its record
            leasing.end_fetch(lease)
        return fetched

    def release(self) -> None:
        """Let the lease go without recording a pull (a source gone: nothing to record)."""
        if self.lease is not None and self.leasing is not None:
            self.leasing.release(self.lease)


ALONE = Held()  # one writer: no lease to hold


async def pull_source(
    source: Source,
    fetcher: Fetches,
    pool: ParsePool,
    store: Storage,
    config: Config,
    clock: Clock,
    held: Held = ALONE,
) -> PullOutcome:
    """One pull of one source, recorded in the store (with its next pull) whatever happens.

    Whatever it raises, wherever (fetching, parsing, storing), becomes that source's
    recorded failure: `status` shows it, the source backs off, and the pass goes on (the
    pull's own storing unit is rolled back alone, see `Storage.batch`). Only a lost lease
    goes up (LeaseLost): the source is another node's now, nothing is recorded."""
    try:
        return await _pull(source, fetcher, pool, store, config, clock, held)
    except LeaseLost:
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        log.error("%s: pull failed unexpectedly: %s", source.name, error)
        log.debug("%s: the failure's traceback", source.name, exc_info=True)
        outcome = model.PullOutcome(
            source.name, ok=False, status=None, error_kind=ErrorKind.INTERNAL, error=error
        )
        state = store.source_state(source.name)
        return _finish(store, config, source, state, outcome, clock(), held=held)


async def _pull(
    source: Source,
    fetcher: Fetches,
    pool: ParsePool,
    store: Storage,
    config: Config,
    clock: Clock,
    held: Held,
) -> PullOutcome:
    state = store.source_state(source.name)
    if is_gone(source, state):
        held.release()
        return model.PullOutcome(
            source.name,
            ok=False,
            status=410,
            error_kind=ErrorKind.GONE,
            error="HTTP 410 Gone: not pulled until its config entry changes",
        )
    url = effective_url(source, state)
    started = time.monotonic()
    crash_point(f"before-fetch:{source.name}")

    def failed(
        status: int | None, kind: str, error: str, retry: float | None = None
    ) -> PullOutcome:
        outcome = model.PullOutcome(
            source.name,
            ok=False,
            status=status,
            error_kind=kind,
            error=error,
            elapsed=time.monotonic() - started,
            url=url,
            retry_after=retry,
        )
        return _finish(store, config, source, state, outcome, clock(), held=held)

    try:
        fetched = await held.fetch(fetcher, url, state, config, clock)
    except FetchError as exc:
        retry = schedule.parse_retry_after(exc.retry_after, clock()) if exc.retry_after else None
        return failed(exc.status, exc.kind, str(exc), retry)
    _follow_moves(store, source, state, url, fetched, held)
    body_hash = "" if fetched.not_modified else hashlib.sha256(fetched.body).hexdigest()
    if fetched.not_modified or body_hash == state.body_hash:
        # 304, or a server without validators sending the same bytes: nothing to parse.
        outcome = model.PullOutcome(
            source.name,
            ok=True,
            status=fetched.status,
            not_modified=True,
            elapsed=time.monotonic() - started,
            url=url,
        )
        return _finish(store, config, source, state, outcome, clock(), fetched=fetched, held=held)
    now = clock()
    from aggregator.ingest.workers import content_print

    stored = frozenset(map(content_print, store.content_hashes(source.name)))
    known = store.entry_prints(source.name)
    try:
        prepared = await pool.prepare_for(fetched, source, config, now, stored, known)
    except ParseError as exc:
        return failed(fetched.status, exc.kind, str(exc))
    except Exception as exc:  # a parser bug on one hostile document must not end the pass
        log.debug("parsing %s failed", source.name, exc_info=True)
        message = " ".join(str(exc).split())[:300]
        return failed(fetched.status, ErrorKind.PARSE_ERROR, f"{type(exc).__name__}: {message}")

    parsed = prepared.parsed
    # the entries known stored unchanged (their prints) were not even normalized
    counts = {"new": 0, "updated": 0, "duplicate": 0, "unchanged": 0, "skipped": 0}
    counts["unchanged"] = len(prepared.unchanged)
    cutoff = now - timedelta(seconds=source.retention or config.settings.retention)
    if source.keep_min_items and prepared.items:  # a quiet source's newest, however old
        newest = sorted(
            [i.published for i in prepared.items]
            + [datetime.fromtimestamp(at, UTC) for _, at in prepared.unchanged],
            reverse=True,
        )
        cutoff = min(cutoff, newest[min(source.keep_min_items, len(newest)) - 1])
    stored_at = time.process_time()
    with store.transaction():
        held.check()
        lookups = store.lookups(prepared.items)
        items, nears = complete(prepared, lookups, source, config)
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
        outcome = model.PullOutcome(
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
            held=held,
        )


def _follow_moves(
    store: Storage, source: Source, state: SourceState, url: str, fetched: Fetched, held: Held
) -> None:
    """Count permanent redirects in a row to one target; a source that stops moving resets."""
    if fetched.moved_to:
        print_ = schedule.source_print(source)
        same = fetched.moved_to == state.redirect_url and state.redirect_print == print_
        count = state.redirect_count + 1 if same else 1
        with store.transaction():
            held.check()
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
            held.check()
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
    held: Held = ALONE,
) -> PullOutcome:
    """Record the pull and when the next one is due, in one transaction with the items
    (and the end of its lease)."""
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
    outcome = replace(
        outcome,
        next_pull=nxt.at,
        next_reason=nxt.reason,
        failures=failures,
        failures_before=state.consecutive_failures,
    )
    title = link = None
    if parsed is not None:  # the text tools load once a document was parsed (not for 304s)
        from aggregator.normalize import feed_link, feed_title

        title = feed_title(parsed)
        link = feed_link(parsed, fetched.url) if fetched else None
    with store.transaction():
        held.check(end=True)
        store.record_pull(
            outcome,
            outcome.url or source.url,
            now,
            etag=fetched.etag if fetched else None,
            last_modified=fetched.last_modified if fetched else None,
            feed_title=title,
            feed_link=link,
            body_hash=body_hash,
        )
        store.set_next_pull(source.name, nxt.at, nxt.reason)
        if outcome.status == 410:
            store.set_gone(source.name, schedule.source_print(source))
        elif state.gone_print:
            store.set_gone(source.name, "")
    return outcome


def mark_unpublished(store: Storage) -> None:
    """Note that the published files may not show the store: a new generation of it,
    which every node's next refresh publishes (each node keeps its own output folder)."""
    with store.transaction():
        store.set_meta("generation", str(int(store.meta("generation") or 0) + 1))


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
