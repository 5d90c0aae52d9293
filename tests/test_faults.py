"""Faults: SIGKILL at random moments, a publish that cannot write, a locked or corrupt
database. Nothing committed is lost, published files are always whole, errors are clear."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import FeedServer, Route, rss, run_cli, write_config
from lxml import etree

NOW = datetime.now(UTC).replace(microsecond=0)
STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
FEEDS = '[tags.crypto]\nkeywords = ["bitcoin"]\n[[feeds]]\nname = "all"\ntitle = "All"\nmax_items = 1000\n[[feeds]]\nname = "crypto"\ntitle = "Crypto"\nany_tags = ["crypto"]\n'


def _growing(prefix: str):
    """A feed that has one more item at every request: every pull stores and publishes."""
    count = {"n": 0}

    def handler(h) -> None:
        count["n"] += 1
        items = [
            {
                "title": f"Bitcoin {prefix} {k}",
                "link": f"https://{prefix}.example/{k}",
                "guid": f"{prefix}{k}",
                "date": NOW - timedelta(minutes=k),
                "description": "<p>" + "Bitcoin text. " * 200 + "</p>",
            }
            for k in range(count["n"] * 3)
        ]
        body = rss(items, title=prefix).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handler


def _check_consistent(tmp: Path) -> int:
    con = sqlite3.connect(tmp / "agg.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    count = con.execute("SELECT count(*) FROM items").fetchone()[0]
    con.close()
    out = tmp / "out"
    for path in out.glob("*") if out.exists() else []:
        if path.suffix in (".rss", ".atom", ".opml"):
            etree.fromstring(path.read_bytes(), STRICT)
        elif path.suffix == ".json":
            json.loads(path.read_text())
    return count


def test_sigkill_at_random_moments_loses_nothing(server: FeedServer, tmp_path):
    for name in ("a", "b", "c", "d"):
        server.routes[f"/{name}.rss"] = Route(handler=_growing(name))
    body = "".join(
        f'[[sources]]\nname = "{n}"\nurl = "{server.url(f"/{n}.rss")}"\ninterval = "1s"\n'
        for n in "abcd"
    )
    config = write_config(tmp_path, body + FEEDS)
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    rng = random.Random(11)
    counts = []
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.8, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        counts.append(_check_consistent(tmp_path))
    assert counts == sorted(counts) and counts[-1] > 0  # committed items never disappear
    # the next start cleans up and carries on
    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    assert _check_consistent(tmp_path) >= counts[-1]


def test_a_publish_that_cannot_write_keeps_the_old_files_and_is_retried(
    server: FeedServer, tmp_path
):
    url = server.add(
        "/a.rss",
        rss([{"title": "Bitcoin one", "guid": "1", "link": "https://x.example/1", "date": NOW}]),
    )
    config = write_config(tmp_path, f'[[sources]]\nname = "a"\nurl = "{url}"\n' + FEEDS)
    assert run_cli("--config", str(config), "run", "--once", "--all").returncode == 0
    out = tmp_path / "out"
    before = (out / "crypto.rss").read_bytes()
    (out / "all.rss").unlink()
    (out / "all.rss").mkdir()  # something in the way: the write fails for real
    server.add(
        "/a.rss",
        rss([{"title": "Bitcoin two", "guid": "2", "link": "https://x.example/2", "date": NOW}]),
    )
    failed = run_cli("--config", str(config), "run", "--once", "--all")
    assert failed.returncode == 1
    assert (
        "publishing to" in failed.stderr
        and "failed" in failed.stderr
        and "Traceback" not in failed.stderr
    )
    assert (out / "crypto.rss").read_bytes() in (before, (out / "crypto.rss").read_bytes())
    etree.fromstring((out / "crypto.rss").read_bytes(), STRICT)
    (out / "all.rss").rmdir()
    again = run_cli(
        "--config", str(config), "run", "--once", "--all"
    )  # nothing new: publishes anyway
    assert again.returncode == 0, again.stderr
    assert "Bitcoin two" in (out / "all.rss").read_text()


def test_locked_and_corrupt_databases_give_clear_errors(server: FeedServer, tmp_path):
    url = server.add(
        "/a.rss",
        rss([{"title": "Bitcoin", "guid": "1", "link": "https://x.example/1", "date": NOW}]),
    )
    config = write_config(tmp_path, f'[[sources]]\nname = "a"\nurl = "{url}"\n' + FEEDS)
    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    other = sqlite3.connect(tmp_path / "agg.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the database
    try:
        locked = run_cli("--config", str(config), "run", "--once")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert locked.returncode == 1
    assert (
        "database" in locked.stderr
        and "locked" in locked.stderr
        and "Traceback" not in locked.stderr
    )

    (tmp_path / "agg.db").write_bytes(b"garbage" * 1000)
    for name in ("agg.db-wal", "agg.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    corrupt = run_cli("--config", str(config), "run", "--once")
    assert corrupt.returncode == 1
    assert "cannot use database" in corrupt.stderr and "Traceback" not in corrupt.stderr
