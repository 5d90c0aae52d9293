"""The runner in-process, with a fake clock and a fake fetcher beside the real parts
(parse workers, SQLite, published files): what a pass pulls, when the next is due, what
a 304 and a failure leave behind. The real-server tests cover the same through HTTP."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import rss, write_config

from aggregator.config import load as config_module
from aggregator.errors import FetchError
from aggregator.ingest.pipeline import PassResult, run_pass
from aggregator.model import Fetched, SourceState
from aggregator.storage import open_store

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class FakeFetcher:
    """Answers from `answers` (URL -> a body, a status, or a FetchError), and records each
    request with the validators it carried."""

    answers: dict[str, bytes | int | FetchError] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)  # (url, etag sent)

    async def fetch(self, url: str, state: SourceState | None = None) -> Fetched:
        self.asked.append((url, state.etag if state else ""))
        answer = self.answers[url]
        if isinstance(answer, FetchError):
            raise answer
        if isinstance(answer, int):
            return Fetched(url=url, status=answer)
        return Fetched(url=url, status=200, body=answer, etag=f'"{hash(answer)}"')


def _feed(name: str, count: int) -> bytes:
    items = [
        {
            "title": f"Bitcoin {name} {n}",
            "link": f"https://{name}.example/{n}",
            "guid": f"{name}-{n}",
            "date": T0 - timedelta(minutes=n + 1),
            "description": f"Bitcoin story {n} of {name}.",
        }
        for n in range(count)
    ]
    return rss(items, title=name).encode()


def _pass(tmp: Path, clock: FakeClock, fetcher: FakeFetcher) -> PassResult:
    config = config_module.load(tmp / "config.toml")
    store = open_store(tmp / "agg.db")
    try:
        return asyncio.run(run_pass(config, store, clock, fetcher=fetcher))
    finally:
        store.close()


def test_a_pass_pulls_what_is_due_and_schedules_the_next_by_its_clock(tmp_path: Path) -> None:
    body = (
        '[[sources]]\nname = "a"\nurl = "https://a.example/feed"\ninterval = "15m"\n'
        '[[sources]]\nname = "b"\nurl = "https://b.example/feed"\ninterval = "1h"\n'
        '[tags.crypto]\nkeywords = ["bitcoin"]\n[[feeds]]\nname = "all"\ntitle = "All"\n'
    )
    write_config(tmp_path, body)
    clock = FakeClock()
    fetcher = FakeFetcher(
        {"https://a.example/feed": _feed("a", 3), "https://b.example/feed": _feed("b", 2)}
    )

    first = _pass(tmp_path, clock, fetcher)
    assert sorted((o.source, o.new) for o in first.outcomes) == [("a", 3), ("b", 2)]
    published = json.loads((tmp_path / "out" / "all.json").read_text())
    assert len(published["items"]) == 5

    clock.advance(minutes=5)  # nothing due yet: nothing asked
    fetcher.asked.clear()
    assert _pass(tmp_path, clock, fetcher).outcomes == ()
    assert fetcher.asked == []

    clock.advance(minutes=15)  # a is due (15m), b is not (1h)
    fetcher.answers["https://a.example/feed"] = 304
    second = _pass(tmp_path, clock, fetcher)
    assert [(o.source, o.not_modified) for o in second.outcomes] == [("a", True)]
    (url, etag) = fetcher.asked[0]
    assert url == "https://a.example/feed" and etag  # the validator of the first pull

    clock.advance(hours=1)  # both due; b fails and backs off from the clock's time
    fetcher.answers["https://b.example/feed"] = FetchError("http_500", "HTTP 500", 500)
    third = _pass(tmp_path, clock, fetcher)
    failed = next(o for o in third.outcomes if o.source == "b")
    assert (failed.ok, failed.error_kind) == (False, "http_500")
    store = open_store(tmp_path / "agg.db")
    try:
        state = store.source_state("b")
        assert state.consecutive_failures == 1
        assert state.next_pull is not None and state.next_pull > clock.now
        assert state.next_reason.startswith("backoff after 1 failure")
        assert store.count_items() == 5  # a failure loses nothing stored
    finally:
        store.close()


def test_the_daemon_pulls_each_source_when_its_clock_says_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    """The daemon in-process on the same runner: at start it pulls what is due, arms
    each source's next pull from its clock (15 minutes and one hour later, jittered),
    publishes, and stops on request with nothing in flight. A failing source backs off
    from the same clock. The clock is ten minutes behind the real time (the scheduler
    fires on real time): next pulls 15 minutes after it are 5 minutes away for real."""
    from aggregator.daemon import Daemon
    from aggregator.schedule import JITTER, MAX_JITTER

    body = (
        '[[sources]]\nname = "a"\nurl = "https://a.example/feed"\ninterval = "15m"\n'
        '[[sources]]\nname = "b"\nurl = "https://b.example/feed"\ninterval = "1h"\n'
        '[[sources]]\nname = "c"\nurl = "https://c.example/feed"\ninterval = "15m"\n'
        '[tags.crypto]\nkeywords = ["bitcoin"]\n[[feeds]]\nname = "all"\ntitle = "All"\n'
    )
    path = write_config(tmp_path, body)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))
    fetcher = FakeFetcher(
        {
            "https://a.example/feed": _feed("a", 3),
            "https://b.example/feed": _feed("b", 2),
            "https://c.example/feed": FetchError("http_500", "HTTP 500", 500),
        }
    )
    config = config_module.load(path)
    store = open_store(tmp_path / "agg.db")
    daemon = Daemon(path, config, store, clock, fetcher)

    async def scenario() -> int:
        running = asyncio.create_task(daemon.run())
        published = tmp_path / "out" / "all.json"
        for _ in range(300):  # the three pulls, then the debounced publish
            done = len(fetcher.asked) >= 3 and published.exists()
            if done and len(json.loads(published.read_text())["items"]) == 5:
                break
            await asyncio.sleep(0.05)
        daemon.stopping.set()
        return await asyncio.wait_for(running, 30)

    try:
        assert asyncio.run(scenario()) == 0
        assert sorted(url for url, _ in fetcher.asked) == [
            "https://a.example/feed",
            "https://b.example/feed",
            "https://c.example/feed",
        ]  # each once: the next pulls are 15 minutes after the clock, 5 for real
        states = store.source_states()
        a, b, c = states["a"], states["b"], states["c"]
        assert a.next_pull is not None and b.next_pull is not None and c.next_pull is not None
        spread = timedelta(seconds=JITTER * 900)  # schedule's jitter either way
        assert abs(a.next_pull - clock.now - timedelta(minutes=15)) <= spread
        spread = timedelta(seconds=min(JITTER * 3600, MAX_JITTER))
        assert abs(b.next_pull - clock.now - timedelta(hours=1)) <= spread
        assert c.consecutive_failures == 1 and c.next_reason.startswith("backoff after 1")
        assert store.count_items() == 5
    finally:
        store.close()
