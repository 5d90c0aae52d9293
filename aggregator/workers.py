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
import multiprocessing
import resource
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from datetime import datetime

from pebble import ProcessExpired, ProcessPool

from aggregator.errors import ParseError
from aggregator.model import Fetched, Item, ParsedFeed, Source, TagRule

PARSE_TIMEOUT = 15.0  # seconds for one document: parse, normalize, tag
PARSE_MEMORY = 1 << 30  # address space of a worker, bytes
MAX_TASKS = 200  # a worker is replaced after this many documents (bounds slow leaks)


class BudgetExceeded(ParseError):
    """A document that took more than its time or memory: one failed source."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def prepare(
    fetched: Fetched,
    source: Source,
    rules: tuple[TagRule, ...],
    boilerplate: tuple[str, ...],
    now: datetime,
) -> tuple[ParsedFeed, list[Item]]:
    """parse -> normalize -> tag for one document (runs in a worker)."""
    from aggregator.normalize import normalize_feed
    from aggregator.parse import parse
    from aggregator.tagging import compile_rules

    parsed = parse(fetched.body, fetched.url, fetched.content_type)
    tagger = compile_rules(rules, boilerplate)
    problems: list[str] = []
    items = [
        replace(i, tags=tagger.tag(i, source.tags, problems))
        for i in normalize_feed(parsed, source, now)
    ]
    warning = "; ".join(filter(None, [parsed.warning, *dict.fromkeys(problems)]))
    # entries stay in the worker: the items carry all that is needed
    return replace(parsed, entries=(), warning=warning), items


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
                initializer=_limit_memory,
                initargs=(self.memory,),
                context=multiprocessing.get_context("spawn"),
            )
        return self._pool

    async def prepare(
        self,
        fetched: Fetched,
        source: Source,
        rules: tuple[TagRule, ...],
        boilerplate: tuple[str, ...],
        now: datetime,
    ) -> tuple[ParsedFeed, list[Item]]:
        future = self._get().schedule(
            prepare, args=(fetched, source, rules, boilerplate, now), timeout=self.timeout
        )
        try:
            return await asyncio.wrap_future(future)
        except FutureTimeout:
            raise BudgetExceeded(
                "parse_timeout", f"parsing took more than {self.timeout:g}s: document refused"
            ) from None
        except MemoryError:
            raise BudgetExceeded(
                "parse_memory", f"parsing needed more than {self.memory >> 20} MB: document refused"
            ) from None
        except ProcessExpired as exc:
            raise BudgetExceeded("parse_crashed", f"the parser process died: {exc}") from None
        except asyncio.CancelledError:
            future.cancel()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=5)
            self._pool = None
