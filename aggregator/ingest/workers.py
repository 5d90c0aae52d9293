"""Parsing in worker processes, each call with a time and memory budget.

feedparser and lxml run on documents written by strangers: a quadratic entity, a regex
that backtracks on a long author field, a 100k-item feed. In a worker process with an
address-space limit and a per-call timeout (pebble kills the worker when it runs out), a
pathological document costs one failed source, never the daemon. The workers also put
both cores to use: the CPU-bound part of a pass (parse, normalize, tag) runs beside the
event loop.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import resource
import time
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from datetime import datetime

from pebble import ProcessExpired, ProcessPool

from aggregator.errors import BudgetExceeded, ErrorKind
from aggregator.model import (
    Config,
    Fetched,
    Item,
    ParsedFeed,
    Source,
    TagMatch,
    TagRule,
    forget_texts,
)

# What a worker runs, imported once by the fork server instead of by every new worker:
# a spawned worker spent 0.3-0.6 s importing (numpy, lxml, feedparser, nh3) before its
# first document, while the pass had nothing else to do.
PRELOAD = (
    "aggregator.ingest.workers",
    "aggregator.parse.feed",
    "aggregator.normalize",
    "aggregator.language",
    "aggregator.tagging",
    "aggregator.dedupe.similarity",
    "aggregator.ingest.preload",
)
PARSE_TIMEOUT = 15.0  # seconds for one document: parse, normalize, tag
PARSE_MEMORY = 1 << 30  # address space of a worker, bytes
MAX_TASKS = 200  # a worker is replaced after this many documents (bounds slow leaks)


def _context() -> multiprocessing.context.BaseContext:
    """Workers forked from a fork server (a clean single-threaded process that imported
    PRELOAD), not from the daemon, which has threads; spawn where there is no fork server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def start_server() -> None:
    """Start the fork server's imports now, beside the caller's own start-up (on the core
    it leaves idle), so that workers are ready when the first document arrives. Cheap to
    call when no document comes: no worker is forked until one does."""
    if _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _start_worker(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # What the fork server imported is never garbage: frozen, the collector neither walks
    # it nor writes to its pages (which stay shared with the server). A document's objects
    # die by reference counting; collecting every 700 allocations took 2.5% of a worker's
    # CPU, every 10,000 about 0.3%.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


@dataclass(frozen=True)
class Prepared:
    """What a worker sends back for one document."""

    parsed: ParsedFeed  # without its entries: the items carry what is needed
    items: list[Item]
    # per item: its similarity fingerprint as the store keeps it (a string pickles in a
    # tenth of the time), and its index keys; None for an item that looked stored already
    # (its content among `stored`): not tagged nor fingerprinted, see `prepare`
    near: list[tuple[str, list[int]] | None]
    seconds: dict[str, float]  # CPU time by stage: parse, normalize, language, tag, dedupe
    # the entries known stored unchanged by their print, not normalized: (key, published
    # as epoch seconds) of each
    unchanged: tuple[tuple[str, float], ...] = ()


def content_print(content_hash: str) -> int:
    """What `prepare` is told of a stored item: 64 bits of its content hash."""
    return int(content_hash[:16], 16)


def prepare(
    fetched: Fetched,
    source: Source,
    rules: tuple[TagRule, ...],
    boilerplate: tuple[str, ...],
    now: datetime,
    stored: frozenset[int] = frozenset(),
    model: bool = False,
    cap: int = 1000,
    known: Mapping[int, tuple[str, str, float]] | None = None,
) -> Prepared:
    """parse -> normalize -> language -> tag -> fingerprint for one document (in a worker).

    `known` maps the `entry_print` of the source's stored copies to (key, content hash,
    published): an entry with one of those prints is that copy, unchanged. It is not
    normalized (most of a changed document's cost: its other entries are the ones it
    listed before) and comes back in `unchanged`.

    `stored` holds the `content_print` of the source's stored items: an item whose content
    is among them is most likely stored unchanged (a changed feed lists mostly the items
    of its last version), and its tags and fingerprint, half of its cost here, would go
    unused. It is sent untagged with `near` None; the pipeline completes it in the rare
    case it is not stored under its key after all."""
    from aggregator.dedupe.similarity import dumps, fingerprint, index_keys_many
    from aggregator.language import settle
    from aggregator.normalize import lead_text, newest, normalize_feed
    from aggregator.parse.feed import parse
    from aggregator.tagging import compile_rules

    clock = time.process_time
    t0 = clock()
    parsed = parse(fetched.body, fetched.url, fetched.content_type)
    t1 = clock()
    problems: list[str] = []
    unchanged: list[tuple[str, float]] = []
    normalized = newest(
        normalize_feed(parsed, source, now, problems, known, unchanged), cap, problems
    )
    t2 = clock()
    normalized = [
        settle(i, source) if content_print(i.content_hash) not in stored else i for i in normalized
    ]
    fresh = [i for i in normalized if content_print(i.content_hash) not in stored]
    for item in fresh:  # their texts, read by every stage below: made in one go, which
        _ = item.summary_text, item.content_text  # costs 3% less than leaving it to tagging
    t_language = clock()
    tagger = compile_rules(rules, boilerplate, model)
    gave_up: set[str] = set()  # patterns that backtracked: skipped on the rest of the document
    tags = {
        id(i): tagger.tag(i, source.tags, problems, source.leans, gave_up=gave_up) for i in fresh
    }
    t3 = clock()
    fps = [fingerprint(item.title, lead_text(item)) for item in fresh]
    prints = zip(map(dumps, fps), index_keys_many(fps), strict=True)
    near_of = dict(zip(map(id, fresh), prints, strict=True))
    near = [near_of.get(id(i)) for i in normalized]
    t4 = clock()
    warning = "; ".join(filter(None, [parsed.warning, *dict.fromkeys(problems)]))
    # Equal reasons are made one object: pickle then sends a repeated one as a reference
    # (a document's ~900 reasons hold ~25 distinct ones: 5x less time pickling them both
    # ways, and the main process unpickles every result).
    reasons: dict[TagMatch, TagMatch] = {}
    items = [
        replace(
            i,
            tags=tuple(reasons.setdefault(m, m) for m in tags.get(id(i), ())),
        )
        for i in normalized
    ]
    seconds = {
        "parse": t1 - t0,
        "normalize": t2 - t1,
        "language": t_language - t2,
        "tag": t3 - t_language,
        "dedupe": t4 - t3,
    }
    forget_texts()  # the document's texts are done with; a worker holds no HTML between them
    return Prepared(
        replace(parsed, entries=(), warning=warning), items, near, seconds, tuple(unchanged)
    )


class ParsePool:
    """A small pool of parse workers (one per core), started on first use."""

    def __init__(
        self, workers: int = 2, timeout: float = PARSE_TIMEOUT, memory: int = PARSE_MEMORY
    ):
        self.workers = workers
        self.timeout = timeout
        self.memory = memory
        self._pool: ProcessPool | None = None

    def _get(self) -> ProcessPool:
        if self._pool is None:
            self._pool = ProcessPool(
                max_workers=self.workers,
                max_tasks=MAX_TASKS,
                initializer=_start_worker,
                initargs=(self.memory,),
                context=_context(),
            )
        return self._pool

    async def prepare_for(
        self,
        fetched: Fetched,
        source: Source,
        config: Config,
        now: datetime,
        stored: frozenset[int] = frozenset(),
        known: Mapping[int, tuple[str, str, float]] | None = None,
    ) -> Prepared:
        """`prepare` with the config's rules, disclaimers, topic model and item cap: what a
        pull and `sources add` run."""
        return await self.prepare(
            fetched,
            source,
            config.tags,
            tuple(config.disclaimers.values()),
            now,
            stored,
            config.settings.topic_model,
            config.settings.max_document_items,
            known,
        )

    async def prepare(
        self,
        fetched: Fetched,
        source: Source,
        rules: tuple[TagRule, ...],
        boilerplate: tuple[str, ...],
        now: datetime,
        stored: frozenset[int] = frozenset(),
        model: bool = False,
        cap: int = 1000,
        known: Mapping[int, tuple[str, str, float]] | None = None,
    ) -> Prepared:
        future = self._get().schedule(
            prepare,
            args=(fetched, source, rules, boilerplate, now, stored, model, cap, known),
            timeout=self.timeout,
        )
        try:
            return await asyncio.wrap_future(future)
        except FutureTimeout:
            raise BudgetExceeded(
                ErrorKind.PARSE_TIMEOUT,
                f"parsing took more than {self.timeout:g}s: document refused",
            ) from None
        except MemoryError:
            raise BudgetExceeded(
                ErrorKind.PARSE_MEMORY,
                f"parsing needed more than {self.memory >> 20} MB: document refused",
            ) from None
        except ProcessExpired as exc:
            raise BudgetExceeded(
                ErrorKind.PARSE_CRASHED, f"the parser process died: {exc}"
            ) from None
        except asyncio.CancelledError:
            future.cancel()  # type: ignore[no-untyped-call]
            raise

    def stop(self) -> None:
        """Let the workers wind down without waiting (pebble's threads take ~0.1 s to
        notice): a pass publishes meanwhile, then `close` finds them gone."""
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]  # pebble ships no hints

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join(timeout=5)
            self._pool = None
