"""The PostgreSQL backend end to end: the real CLI on a real server (tests/pg.py), and
stores moved between SQLite and PostgreSQL without losing an item or a source's state."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import FeedServer, InFlight, rss, run_cli, write_config

from aggregator.storage import open_store
from aggregator.storage.postgres.schema import MIGRATIONS

NOW = datetime.now(UTC)


def _feed(numbers: range) -> str:
    """The test source's feed: one bitcoin story per number, the lowest the newest."""
    return rss(
        [
            {
                "title": f"Bitcoin story {i}",
                "link": f"https://c.example/{i}",
                "guid": f"g{i}",
                "date": NOW - timedelta(hours=i),
                "description": f"Bitcoin and crypto markets, part {i}.",
            }
            for i in numbers
        ]
    )


def _config(tmp_path: Path, server: FeedServer, database: str, n: int = 3) -> Path:
    url = server.add("/c.rss", _feed(range(n)))
    config = write_config(
        tmp_path,
        f'[[sources]]\nname = "c"\nurl = "{url}"\ntags = ["crypto"]\n'
        '[tags.crypto]\nkeywords = ["bitcoin"]\n'
        '[[feeds]]\nname = "crypto"\ntitle = "Crypto"\nany_tags = ["crypto"]\n',
    )
    text = config.read_text(encoding="utf-8").replace('"agg.db"', json.dumps(database))
    config.write_text(text, encoding="utf-8")
    return config


def test_run_publishes_from_postgresql_and_status_reads_it(postgres, server, tmp_path):
    database = postgres.database()
    config = _config(tmp_path, server, database)
    first = run_cli("--config", str(config), "run", "--once")
    assert first.returncode == 0, first.stderr
    feed = (tmp_path / "out" / "crypto.json").read_text(encoding="utf-8")
    assert [i["title"] for i in json.loads(feed)["items"]] == [
        "Bitcoin story 0",
        "Bitcoin story 1",
        "Bitcoin story 2",
    ]
    again = run_cli("--config", str(config), "run", "--once", "--all")
    assert again.returncode == 0, again.stderr
    assert len(server.hits("/c.rss")) == 2  # --all: pulled again, though not due
    assert (tmp_path / "out" / "crypto.json").read_text(encoding="utf-8") == feed
    status = run_cli("--config", str(config), "status", "--json")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)["sources"]
    assert row["source"] == "c" and row["items"] == 3 and row["result"] == "ok"
    upgrade = run_cli("--config", str(config), "db", "upgrade")
    assert upgrade.returncode == 0 and f"schema {len(MIGRATIONS)}" in upgrade.stdout, upgrade.stderr
    store = open_store(database)
    try:
        assert store.count_items() == 3
    finally:
        store.close()


def test_db_copy_moves_a_store_to_postgresql_and_back_losing_nothing(postgres, server, tmp_path):
    config = _config(tmp_path, server, "agg.db", n=5)
    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    database = postgres.database()
    there = run_cli("db", "copy", str(tmp_path / "agg.db"), database, cwd=tmp_path)
    assert there.returncode == 0, there.stderr
    assert "copied 5 items, 1 sources' state and 0 tombstones" in there.stdout
    back = tmp_path / "back.db"
    assert run_cli("db", "copy", database, str(back)).returncode == 0
    stores = [open_store(tmp_path / "agg.db"), open_store(database), open_store(back)]
    try:
        items = [[(i.uid, i.story, i.tags, i.published) for i in s.items()] for s in stores]
        states = [s.source_states()["c"] for s in stores]
        keys = [list(s.near_texts(NOW - timedelta(days=3650))) for s in stores]  # type: ignore[attr-defined]
    finally:
        for s in stores:
            s.close()
    assert items[0] == items[1] == items[2] and len(items[0]) == 5
    assert states[0] == states[1] == states[2]
    assert keys[0] == keys[1] == keys[2]
    near = []  # the near-duplicate index, row for row (it refers to items by rowid)
    for where in (tmp_path / "agg.db", database, back):
        s = open_store(where)
        near.append(s.db.execute("SELECT item, keys FROM near_keys ORDER BY item").fetchall())  # type: ignore[attr-defined]
        s.close()
    assert [list(map(tuple, n)) for n in near] == [list(map(tuple, near[0]))] * 3
    assert len(near[0]) == 5
    refused = run_cli("db", "copy", str(tmp_path / "agg.db"), database)
    assert refused.returncode == 1 and "already holds" in refused.stderr


def test_backup_and_restore_on_postgresql(postgres, server, tmp_path):
    """`backup` is pg_dump's custom format, `restore` pg_restore --clean: the store comes
    back as it was, items and stories, whatever was stored after."""
    database = postgres.database()
    config = _config(tmp_path, server, database, n=4)
    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    dump = tmp_path / "store.dump"
    taken = run_cli("--config", str(config), "backup", str(dump))
    assert taken.returncode == 0, taken.stderr
    assert "pg_dump custom format" in taken.stdout and dump.stat().st_size > 0
    server.add("/c.rss", _feed(range(-2, 4)))  # two more stories after the backup
    assert run_cli("--config", str(config), "run", "--once", "--all").returncode == 0
    restored = run_cli("--config", str(config), "restore", str(dump))
    assert restored.returncode == 0, restored.stderr
    store = open_store(database)
    try:
        assert (store.count_items(), store.count_stories()) == (4, 4)
        assert store.schema_version() == len(MIGRATIONS)
    finally:
        store.close()


def test_a_database_that_cannot_be_reached_is_one_line_without_its_password(tmp_path, server):
    database = "postgresql://aggregator:s3cret@/nowhere?host=/nonexistent&port=1"
    config = _config(tmp_path, server, database)
    result = run_cli("--config", str(config), "run", "--once")
    assert result.returncode == 1
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("aggregator: cannot use database postgresql://aggregator:***@")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_daemon_pulls_into_postgresql_publishes_and_stops_cleanly(postgres, server, tmp_path):
    database = postgres.database().replace("aggregator@", "aggregator:hidden@")
    config = _config(tmp_path, server, database)
    log = tmp_path / "daemon.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        published = tmp_path / "out" / "crypto.json"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if published.exists() and len(json.loads(published.read_text())["items"]) == 3:
                break  # at start the daemon publishes what the store holds: nothing yet
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    text = log.read_text()
    assert published.exists(), text
    assert len(json.loads(published.read_text())["items"]) == 3
    assert "stopped cleanly" in text and "Traceback" not in text
    assert "hidden" not in text and "aggregator:***@" in text  # the password never logged


def _daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait(what: str, ok: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _titles(folder: Path) -> list[str]:
    try:
        return [i["title"] for i in json.loads((folder / "crypto.json").read_text())["items"]]
    except (OSError, ValueError):
        return []


def test_a_killed_nodes_source_is_taken_over_when_its_lease_runs_out(postgres, server, tmp_path):
    """The chaos test: two daemons on one PostgreSQL store, both pulling. The node pulling
    a slow source is killed in the middle of its fetch; the other takes the source over
    once the lease runs out (never fetching it while the first one did), publishes what
    the dead node never stored, and shows its node and the leases in `status`."""

    database = postgres.database()
    flight = InFlight(delay=3)  # the first fetch hangs (as a stalled server), later ones not

    configs, logs, procs = [], [], []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        config = _config(folder, server, database)
        text = config.read_text(encoding="utf-8").replace(
            'timeout = "5s"',
            'timeout = "4s"\nparse_timeout = "1s"',  # leases of 10 s
        )
        config.write_text(text, encoding="utf-8")
        configs.append(config)
        logs.append(folder / "log")
    server.add("/c.rss", b"", handler=flight.serving(_feed(range(3)).encode()))
    ghost = open_store(database)  # a node gone two days ago: the leader forgets it
    with ghost.transaction():
        seen = (datetime.now(UTC) - timedelta(days=2)).isoformat()
        ghost.set_meta("node:ghost:1:aa", json.dumps({"role": "follower", "seen": seen}))
    ghost.close()
    try:
        procs = [_daemon(c, log) for c, log in zip(configs, logs, strict=True)]
        store = open_store(database)
        try:
            _wait("a node claims the source", lambda: bool(store.leases()), 60)
            (lease,) = store.leases()
            holder = next(p for p in procs if f":{p.pid}:" in lease.node)
            other = next(p for p in procs if p is not holder)
            flight.delay = 0
            holder.kill()  # mid-fetch, no clean stop: its lease is never ended nor renewed
            holder.wait(10)
            status = run_cli("--config", str(configs[procs.index(other)]), "status")
            assert status.returncode == 0, status.stderr
            assert f"lease: c pulled by {lease.node}" in status.stdout, status.stdout
            assert "node " in status.stdout
            out = tmp_path / ("a", "b")[procs.index(other)] / "out"
            _wait("the other node takes over", lambda: len(_titles(out)) == 3, 60)
            assert flight.most == 1  # never two fetches of the source at once
            assert store.leases() == []
            (row,) = store.source_rows()
            assert row.last_status == 200 and row.last_items == 3
            after = run_cli("--config", str(configs[procs.index(other)]), "status", "--json")
            shown = json.loads(after.stdout)
            assert "leases" not in shown and shown["nodes"][0]["role"] == "leader"
            assert "ghost" not in after.stdout
        finally:
            store.close()
        other.send_signal(signal.SIGTERM)
        assert other.wait(30) == 0
        text = logs[procs.index(other)].read_text()
        assert "stopped cleanly" in text and "Traceback" not in text
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_a_daemon_serves_through_a_database_outage_and_recovers(server, tmp_path):
    """The PostgreSQL server stops under a running daemon: it keeps serving its files,
    /healthz says why it is degraded, and once the server is back it pulls again."""
    import httpx
    from pg import Server

    from aggregator.storage import open_store as open_

    pg = Server()  # its own server: this test stops it
    try:
        database = pg.database()
        config = _config(tmp_path, server, database)
        port = _free_port()
        text = config.read_text(encoding="utf-8").replace(
            'listen = ""', f'listen = "127.0.0.1:{port}"'
        )
        config.write_text(text, encoding="utf-8")
        d = _daemon(config, tmp_path / "log")
        try:
            _wait("published", lambda: len(_titles(tmp_path / "out")) == 3)
            base = f"http://127.0.0.1:{port}"
            assert httpx.get(f"{base}/healthz").json()["role"] == "leader"
            pg.halt()
            _wait(
                "degraded",
                lambda: "cannot be read" in httpx.get(f"{base}/healthz").text,
            )
            health = httpx.get(f"{base}/healthz")
            assert health.status_code == 503
            served = httpx.get(f"{base}/crypto.json")  # what it has, still served
            assert served.status_code == 200 and "Bitcoin story 0" in served.text
            assert d.poll() is None
            pg.start()
            _wait("ok again", lambda: httpx.get(f"{base}/healthz").status_code == 200, 60)
            log = tmp_path / "log"
            _wait("stepped down", lambda: "lost the leader's lock" in log.read_text(), 60)
            _wait("leading again", lambda: "leading: no other node" in log.read_text(), 60)
            assert httpx.get(f"{base}/healthz").json()["role"] == "leader"
            store = open_(database)
            try:
                (before,) = store.source_rows()
                asked = run_cli("--config", str(config), "refresh", "c")
                assert "the running daemon took the request" in asked.stdout, asked.stdout
                _wait("pulled again", lambda: store.source_rows()[0].last_pull != before.last_pull)
            finally:
                store.close()
            d.send_signal(signal.SIGTERM)
            assert d.wait(30) == 0
            text = log.read_text()
            assert "Traceback" not in text and "stopped cleanly" in text
        finally:
            if d.poll() is None:
                d.kill()
    finally:
        pg.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nodes_starting_together_migrate_once(postgres):
    """Four processes open one new database at the same moment: the migrations run once,
    under their advisory lock, and every process ends up on the same schema."""
    database = postgres.database()
    code = (
        "import sys; from aggregator.storage import open_store; "
        "s = open_store(sys.argv[1]); print(s.schema_version()); s.close()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, database], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert outs == [str(len(MIGRATIONS))] * 4
