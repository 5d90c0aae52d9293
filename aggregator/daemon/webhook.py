"""Alerts without a monitoring stack: `[notify] webhook` receives a JSON POST when a source
has failed `failures` pulls in a row, when such a source recovers, when config.toml is
refused, and when publishing fails.

Each event is sent once, when its state changes (the third failure in a row, not every one
after it; a refusal, not each second it lasts), from a queue of its own: a slow or dead
webhook never delays a pull. A delivery is retried with a backoff (1 s doubling to a
minute, for about ten minutes), then given up with one line in the log. Each event has a
`text` line too, which Slack's and Mattermost's incoming webhooks show as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aggregator import __version__
from aggregator.model import Notify, PullOutcome

log = logging.getLogger("aggregator.daemon")

ATTEMPTS = 10  # 1+2+4+...+60 s: about ten minutes of retries
FIRST_RETRY, LAST_RETRY = 1.0, 60.0
TIMEOUT = 10.0  # seconds a delivery may take
QUEUE = 1000  # events waiting at most (a webhook down for hours): the oldest go first


class Webhook:
    def __init__(self, settings: Callable[[], Notify], clock: Callable[[], datetime]):
        self.settings = settings  # the live config's [notify]: a reload may change it
        self.clock = clock
        self.refused = False
        self.publish_failing = False
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        self.task: asyncio.Task[None] | None = None
        self.sent = 0  # delivered (the tests read it; the log says each)

    def start(self) -> None:
        """Start delivering. Failures are counted by the store, so a source already failing
        when the daemon starts was announced by the run before (once, not per restart)."""
        self.task = asyncio.create_task(self._deliver_all())

    # ------------------------------------------------------------ what happened

    def pulled(self, o: PullOutcome) -> None:
        """From the failures in a row the store counts (every node's pulls of the source)."""
        before = o.failures_before
        if o.ok:
            if before >= self.settings().failures:
                self._event(
                    "source_recovered",
                    f"{o.source} recovered after {before} failed pulls",
                    source=o.source,
                    failures=before,
                )
            return
        if o.failures == self.settings().failures:
            self._event(
                "source_failing",
                f"{o.source} has failed {o.failures} pulls in a row: {o.error_kind}: {o.error}",
                source=o.source,
                failures=o.failures,
                error_kind=o.error_kind,
                error=o.error,
                next_pull=o.next_pull.isoformat() if o.next_pull else None,
            )

    def config(self, refused: dict[str, Any] | None) -> None:
        if refused is not None and not self.refused:
            self._event(
                "config_refused",
                f"config.toml refused ({refused['problems']} problem(s): {refused['first']}); "
                "running on the last good one",
                problems=refused["problems"],
                first=refused["first"],
            )
        self.refused = refused is not None

    def published(self, error: str) -> None:
        if error and not self.publish_failing:
            self._event("publish_failed", error, error=error)
        self.publish_failing = bool(error)

    def _event(self, kind: str, text: str, **fields: Any) -> None:
        if not self.settings().webhook:
            return
        event = {
            "event": kind,
            "text": f"aggregator on {os.uname().nodename}: {text}",
            "at": self.clock().isoformat(),
            "node": os.uname().nodename,
            **fields,
        }
        if self.queue.full():
            dropped = self.queue.get_nowait()
            self.queue.task_done()  # `close` waits for the queue to be done
            log.warning("webhook: queue full, dropping the oldest event (%s)", dropped["event"])
        self.queue.put_nowait(event)

    # ------------------------------------------------------------ delivery

    async def _deliver_all(self) -> None:
        import ssl

        import aiohttp

        headers = {"User-Agent": f"aggregator/{__version__}"}
        # the system's CAs, as an operator's own webhook endpoint expects; built here, on
        # the first delivery (fetch/lean.py: aiohttp's default context trusts nothing)
        connector = aiohttp.TCPConnector(ssl=ssl.create_default_context())
        async with aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT), connector=connector
        ) as session:
            while True:
                event = await self.queue.get()
                try:
                    await self._deliver(session, event)
                finally:
                    self.queue.task_done()

    async def _deliver(self, session: Any, event: dict[str, Any]) -> None:
        import aiohttp

        wait = FIRST_RETRY
        problem = ""
        for _ in range(ATTEMPTS):
            url = self.settings().webhook
            if not url:
                return  # turned off meanwhile
            try:
                async with session.post(url, json=event) as response:
                    if 200 <= response.status < 300:
                        self.sent += 1
                        log.info("webhook: %s sent (%s)", event["event"], event.get("source", ""))
                        return
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            kind = event["event"]
            log.warning("webhook: %s not delivered (%s); again in %gs", kind, problem, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, LAST_RETRY)
        log.error("webhook: %s given up after %d attempts (%s)", event["event"], ATTEMPTS, problem)

    async def close(self, grace: float) -> None:
        """At a stop: what is queued gets `grace` seconds to go out."""
        if self.task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), grace)
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
