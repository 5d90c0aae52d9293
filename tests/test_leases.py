"""Several nodes pulling into one PostgreSQL store (issue #18): sources claimed with leases,
a host's fetches counted over every node, one story decision at a time. The stores here
are real ones on the test server (tests/pg.py), two per database as two nodes would hold;
the end-to-end runs are the real CLI, two processes at once."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import FeedServer, InFlight, rss, write_config

from aggregator.errors import LeaseLost
from aggregator.model import Busy, Lease, PullOutcome
from aggregator.storage import leasing, open_store

NOW = datetime.now(UTC)


@pytest.fixture
def nodes(postgres):
    """Two nodes' stores on one new database."""
    database = postgres.database()
    a, b = open_store(database), open_store(database)
    yield leasing(a), leasing(b)
    a.close()
    b.close()


def _record(node, lease: Lease, next_pull: datetime) -> None:
    """What a pull's last unit does: check its lease, record the pull, end the lease."""
    with node.transaction():
        node.hold(lease, end=True)
        node.record_pull(PullOutcome(lease.source, ok=True, status=200), "http://x", NOW)
        node.set_next_pull(lease.source, next_pull, "interval")


def test_a_source_is_claimed_by_one_node_at_a_time(nodes):
    a, b = nodes
    lease = a.claim("s", NOW, 60)
    assert isinstance(lease, Lease) and lease.node == a.node != b.node
    busy = b.claim("s", NOW, 60)
    assert isinstance(busy, Busy) and busy.reason == f"being pulled by {a.node}"
    assert busy.until == NOW + timedelta(seconds=60)
    assert [(r.source, r.node) for r in b.leases()] == [("s", a.node)]
    _record(a, lease, NOW + timedelta(minutes=15))
    assert b.leases() == []
    later = b.claim("s", NOW, 60)  # pulled by A meanwhile: not due again for 15 minutes
    assert isinstance(later, Busy) and later.reason == "pulled by another node"
    assert later.until == NOW + timedelta(minutes=15)
    assert isinstance(b.claim("s", NOW, 60, due=False), Lease)  # asked by hand: pulled now


def test_a_node_that_outlived_its_lease_writes_nothing(nodes):
    a, b = nodes
    old = a.claim("s", NOW, 5)
    assert isinstance(old, Lease)
    taken = b.claim("s", NOW + timedelta(seconds=6), 60)  # A's lease ran out: B takes over
    assert isinstance(taken, Lease)
    with pytest.raises(LeaseLost, match="another node took the source over"):
        _record(a, old, NOW + timedelta(hours=9))
    assert a.source_state("s").next_pull is None  # nothing of A's pull was kept
    _record(b, taken, NOW + timedelta(minutes=15))
    assert a.source_state("s").next_pull == NOW + timedelta(minutes=15)


def test_renewed_leases_outlast_their_first_term_and_end_with_their_node(nodes):
    a, b = nodes
    lease, orphan = a.claim("s", NOW, 5), a.claim("o", NOW, 5)
    assert isinstance(lease, Lease) and isinstance(orphan, Lease)
    # only the pulls under way are renewed: a lease whose release failed runs out
    assert a.renew(NOW + timedelta(seconds=4), 60, [lease.token]) == 1
    assert isinstance(b.claim("o", NOW + timedelta(seconds=6), 60), Lease)
    assert isinstance(b.claim("s", NOW + timedelta(seconds=30), 60), Busy)
    # A stops renewing (killed): once the term is over, B claims the source
    assert isinstance(b.claim("s", NOW + timedelta(seconds=65), 60), Lease)


def test_a_hosts_fetches_in_flight_are_counted_over_every_node(nodes):
    a, b = nodes
    one, two, three = a.claim("s1", NOW, 60), b.claim("s2", NOW, 60), b.claim("s3", NOW, 60)
    assert a.fetch_slot(one, "h.example", 2, NOW)
    assert b.fetch_slot(two, "h.example", 2, NOW)
    assert not b.fetch_slot(three, "h.example", 2, NOW)  # two in flight, on two nodes
    assert b.fetch_slot(three, "other.example", 2, NOW)  # another host
    a.end_fetch(one)
    assert b.fetch_slot(three, "h.example", 2, NOW)


# ---------------------------------------------------------------- two processes at once

STORY = (
    "Regulators in Brussels approved the first licences for crypto exchanges under MiCA on "
    "Tuesday, opening the single market to bitcoin trading platforms that meet the rules."
)


def _slow_feed(server: FeedServer, n: int, flight: InFlight) -> str:
    """A feed answered after 0.3 s, carrying the same story as every other (syndicated),
    counting the requests in flight to this host and to each path."""
    body = rss(
        [
            {
                "title": "EU grants first MiCA licences to crypto exchanges",
                "link": f"https://site{n}.example/mica",
                "guid": f"mica-{n}",
                "date": NOW - timedelta(hours=1),
                "description": STORY,
            },
            {
                "title": f"Bitcoin note {n}",
                "link": f"https://site{n}.example/note",
                "guid": f"note-{n}",
                "date": NOW - timedelta(hours=2),
                "description": f"A bitcoin note of source {n}, about crypto custody {n * 7919}.",
            },
        ]
    ).encode()
    return server.add(f"/s{n}.rss", b"", handler=flight.serving(body))


def _shared_config(folder: Path, database: str, urls: list[str]) -> Path:
    sources = "".join(
        f'[[sources]]\nname = "s{n}"\nurl = "{url}"\ntags = ["crypto"]\n'
        for n, url in enumerate(urls)
    )
    config = write_config(
        folder,
        sources + '[tags.crypto]\nkeywords = ["bitcoin", "crypto"]\n'
        '[[feeds]]\nname = "crypto"\ntitle = "Crypto"\nany_tags = ["crypto"]\n',
    )
    text = config.read_text(encoding="utf-8").replace('"agg.db"', json.dumps(database))
    config.write_text(text, encoding="utf-8")
    return config


def test_two_runs_at_once_pull_each_source_once_and_make_one_story(postgres, server, tmp_path):
    """Two `run --once` at the same moment on one store: each source is pulled by one of
    them, a host never sees more than `per_host` (2) fetches at once over both, and the
    story that every source carries is one story, whichever node stored each copy."""
    database = postgres.database()
    flight = InFlight(delay=0.3)
    urls = [_slow_feed(server, n, flight) for n in range(12)]
    configs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        configs.append(_shared_config(tmp_path / name, database, urls))
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(c), "run", "--once"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("Traceback" not in err for _, err in outs)
    pulled = [int(re.search(r"(\d+) sources, 0 failed", out)[1]) for out, _ in outs]  # type: ignore[index]
    assert sum(pulled) == 12
    for n, (out, _) in zip(pulled, outs, strict=True):  # the summary says who pulled the rest
        assert n == 12 or f"{12 - n} pulled by other nodes" in out, out
    paths = sorted(p for p, _ in server.requests)
    assert paths == sorted(f"/s{n}.rss" for n in range(12))  # each once, by one node
    assert flight.most <= 2
    store = open_store(database)
    try:
        items = store.items()
        assert len(items) == 24
        stories = {i.story for i in items if i.title.startswith("EU grants")}
        assert len(stories) == 1, stories
        assert store.leases() == []  # every lease ended with its pull
        assert all(r.last_status == 200 for r in store.source_rows())
    finally:
        store.close()
    for folder in ("a", "b"):  # each node's files show every item
        feed = json.loads((tmp_path / folder / "out" / "crypto.json").read_text())
        assert len(feed["items"]) == 13, (folder, outs)  # 12 notes and the one story
