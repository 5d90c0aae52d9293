"""The live config: config.toml watched (and SIGHUP), a valid change swapped in without a
restart, an invalid one refused with the last good config kept; operators' requests
(`refresh`, `reset`) taken from the database."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator import schedule
from aggregator.config.load import load
from aggregator.errors import ConfigError
from aggregator.ingest.pipeline import Refreshed, Runner
from aggregator.ingest.pull import Clock
from aggregator.model import Config, Source
from aggregator.storage import Storage

if TYPE_CHECKING:
    from aggregator.daemon.metrics import Metrics
    from aggregator.daemon.notify import Notifier

log = logging.getLogger("aggregator.daemon")

log = logging.getLogger("aggregator.daemon")
WATCH_EVERY = 1.0  # seconds between looks at config.toml


class Watching:
    """The live-config half of `Daemon` (a mixin: the daemon holds the state)."""

    path: Path
    config: Config
    store: Storage
    clock: Clock
    runner: Runner
    reload_asked: asyncio.Event
    _stamp: tuple[int, int, int] | None
    _digest: str
    leading: bool  # this node re-tags and prunes (on a shared store, one node: core.py)
    metrics: Metrics | None  # the daemon's /metrics (metrics.py), while it listens
    notifier: Notifier  # systemd's notify protocol (notify.py)

    def _arm(self, name: str, at: datetime | None, reason: str) -> None: ...
    def _disarm(self, name: str) -> None: ...
    def _schedule_start(self, source: Source) -> None: ...
    def _set_refused(self, refused: dict[str, Any] | None) -> None: ...
    def _announce(self, done: Refreshed) -> None: ...
    def _retag_soon(self) -> None: ...

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _file_digest(self) -> str:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return ""

    async def _watch(self) -> None:
        """Reload on a change of the file or on SIGHUP; a failure is logged, never the end
        of the watching."""
        while True:
            try:
                await self._watch_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one line (a database gone: every second otherwise)
                log.error(
                    "watching %s failed (%s: %s); watching on",
                    self.path,
                    type(exc).__name__,
                    " ".join(str(exc).split())[:200],
                )
                log.debug("the watcher's traceback", exc_info=True)
                await asyncio.sleep(WATCH_EVERY)

    async def _watch_once(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WATCH_EVERY):
                await self.reload_asked.wait()
        self._serve_requests()
        forced = self.reload_asked.is_set()
        self.reload_asked.clear()
        stamp = self._file_stamp()
        if forced or stamp != self._stamp:
            self._stamp = stamp
            digest = self._file_digest()
            if forced or digest != self._digest:
                self._digest = digest
                self.reload("SIGHUP" if forced else "config.toml changed")

    def _serve_requests(self) -> None:
        """Operators' requests left in the database (`aggregator refresh NAME|--all`,
        `aggregator reset NAME`): pull now; reset also forgets failures and a 410. On a
        shared store the node that takes a request arms the pull, and whichever node
        claims the source pulls it."""
        with self.store.transaction():
            requests = self.store.take_requests()
        for action, name in requests:
            names = [s.name for s in self.config.sources if s.enabled] if name == "*" else [name]
            for one in names:
                source = self.config.source(one)
                if source is None or not source.enabled:
                    log.warning("%s asked for %s: no such enabled source", action, one)
                    continue
                if action == "reset":
                    with self.store.transaction():
                        self.store.reset_source(one)
                self._arm(one, self.clock(), f"{action} asked")
            log.info(
                "%s asked for %s: pulling now", action, "every source" if name == "*" else name
            )

    def reload(self, why: str) -> None:
        """Swap in the config on disk, or keep the last good one when it is invalid."""
        self.notifier.reloading()
        try:
            self._reload(why)
        finally:
            self.notifier.reloaded(self._summary())

    def _summary(self) -> str:
        """What `systemctl status` shows beside the unit."""
        n, f = len(self.config.sources), len(self.config.feeds)
        listen = self.config.settings.listen
        return f"{n} sources, {f} feeds" + (f", serving on {listen}" if listen else "")

    def _reload(self, why: str) -> None:
        try:
            new = load(self.path)
        except Exception as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [f"{self.path}: {exc!r}"]
            for problem in problems:
                log.error("config refused: %s", problem)
            log.error(
                "%s: %d problem(s); still running with the last good config",
                self.path,
                len(problems),
            )
            self._set_refused(
                {"at": self.clock().isoformat(), "problems": len(problems), "first": problems[0]}
            )
            return
        self._set_refused(None)
        if self.metrics is not None:
            self.metrics.config(reloaded=True)
        old = self.config
        if (
            new.settings.database != old.settings.database
            or new.settings.listen != old.settings.listen
        ):
            log.warning("database and listen changes take effect at the next restart")
            new = _keep(new, old, ("database", "listen"))
        self.runner.reconfigure(new)
        self.config = new
        before = {s.name: s for s in old.sources if s.enabled}
        after = {s.name: s for s in new.sources if s.enabled}
        added = [n for n in after if n not in before]
        removed = [n for n in before if n not in after]
        changed = [
            n
            for n in after
            if n in before and schedule.source_print(after[n]) != schedule.source_print(before[n])
        ]
        for name in removed:
            self._disarm(name)
            with self.store.transaction():
                self.store.set_next_pull(name, None, "removed from the config")
        for name in added + changed:
            with self.store.transaction():
                self.store.set_next_pull(name, None, "config changed")
            self._schedule_start(after[name])
        log.info(
            "config reloaded (%s): %d sources added, %d removed, %d changed",
            why,
            len(added),
            len(removed),
            len(changed),
        )
        self._announce(self.runner.refresh(False, retag=False, writes=self.leading))
        if self.leading:
            self._retag_soon()

    # ------------------------------------------------------------ health


def _keep(new: Config, old: Config, keys: tuple[str, ...]) -> Config:
    kept = {k: getattr(old.settings, k) for k in keys}
    return new._replace(settings=new.settings._replace(**kept))
