"""`aggregator run` as a subprocess against the loopback fixture server, with
second-scale intervals: pulls, live config, failure policy, signals, crash and restart."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
from conftest import FeedServer, InFlight, rss, run_cli, run_in_pty, write_config

NOW = datetime.now(UTC).replace(microsecond=0)
TAGS = """
[tags.ai]
keywords = ["AI"]
[tags.crypto]
keywords = ["bitcoin"]
"""
FEED_ALL = """
[[feeds]]
name = "all"
title = "Everything"
"""


@contextmanager
def serving(config: Path) -> Iterator[str]:
    """`aggregator serve` in a subprocess on a free port; yields its base URL, stops it (exit 0)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    cmd = [
        sys.executable,
        "-m",
        "aggregator",
        "--config",
        str(config),
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
    ]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, what="server up")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def source(name: str, url: str, interval: str = "1s", **extra: object) -> str:
    lines = [f'[[sources]]\nname = "{name}"\nurl = "{url}"\ninterval = "{interval}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def item(n: int, title: str = "") -> dict:
    return {
        "title": title or f"Bitcoin story {n}",
        "link": f"https://news.example/{n}",
        "guid": f"g{n}",
        "date": NOW - timedelta(minutes=60 - n),
    }


class Daemon:
    """The real CLI in a subprocess; its log goes to a file the test can read."""

    def __init__(self, config: Path):
        self.config = config
        self.log_path = config.parent / f"daemon-{time.monotonic_ns()}.log"
        self.log_file = open(self.log_path, "w")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log_file.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)
        self.log_file.close()


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(config: Path) -> Daemon:
        d = Daemon(config)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(5)


def wait_for(condition: Callable[[], object], timeout: float = 15, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def titles(out: Path, feed: str = "all") -> list[str]:
    data = json.loads((out / f"{feed}.json").read_text())
    return sorted(i["title"] for i in data["items"])


def listening(tmp_path: Path, body: str) -> tuple[Path, str, int]:
    """config.toml of `body` listening on a free port: its path, its text and the port."""
    port = free_port()
    config = (
        write_config(tmp_path, body)
        .read_text()
        .replace('listen = ""', f'listen = "127.0.0.1:{port}"')
    )
    path = tmp_path / "config.toml"
    path.write_text(config)
    return path, config, port


def test_daemon_pulls_serves_reloads_and_stops(server: FeedServer, tmp_path, daemons):
    server.add("/a.rss", rss([item(1)]))
    path, config, port = listening(tmp_path, source("a", server.url("/a.rss")) + TAGS + FEED_ALL)
    out = tmp_path / "out"
    d = daemons(path)

    wait_for(lambda: titles(out) == ["Bitcoin story 1"], what="first publish")
    served = httpx.get(f"http://127.0.0.1:{port}/all.rss")
    assert served.status_code == 200 and "Bitcoin story 1" in served.text
    etag = served.headers["etag"]
    assert (
        httpx.get(f"http://127.0.0.1:{port}/all.rss", headers={"If-None-Match": etag}).status_code
        == 304
    )
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"

    # new items appear without a restart
    server.add("/a.rss", rss([item(1), item(2)]))
    wait_for(lambda: len(titles(out)) == 2, what="second item")

    # an edited config takes effect: a new source and a new curated feed
    server.add("/b.rss", rss([item(3, "AI story 3")]))
    path.write_text(
        config.replace(FEED_ALL, source("b", server.url("/b.rss")) + FEED_ALL)
        + '\n[[feeds]]\nname = "ai"\ntitle = "AI"\nany_tags = ["ai"]\n'
    )
    wait_for(lambda: titles(out, "ai") == ["AI story 3"], what="new source in a new feed")
    assert "config reloaded (config.toml changed): 1 sources added" in d.log

    # an invalid edit is refused with its line; the daemon goes on with the last good config
    good = path.read_text()
    path.write_text(good.replace('any_tags = ["ai"]', 'any_tags = ["a1"]'))
    # the watcher may first read the file half written (a refusal of its own): wait for the
    # refusal of the edit itself
    refusal = "feeds[\"ai\"].any_tags[0]: unknown tag 'a1'"
    wait_for(lambda: "config refused" in d.log and refusal in d.log, what="refusal")
    assert d.proc.poll() is None
    # /healthz and status tell the truth: degraded (503) and why, the sources still shown
    health = httpx.get(f"http://127.0.0.1:{port}/healthz")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert "refused at" in health.json()["reasons"][0] and "unknown tag 'a1'" in health.text
    status = run_cli("--config", str(path), "status")
    assert status.returncode == 0, status.stderr
    assert "invalid (1 problem: " in status.stdout and "unknown tag 'a1'" in status.stdout
    assert "refused by the running daemon at" in status.stdout
    assert re.search(r"^a  .* ok ", status.stdout, re.M), status.stdout
    server.add("/b.rss", rss([item(3, "AI story 3"), item(4, "AI story 4")]))
    wait_for(lambda: titles(out, "ai") == ["AI story 3", "AI story 4"], what="pulls go on")

    # no content stops the watching: a 100,000-deep array (RecursionError once) is refused
    path.write_text(good + "y = " + "[" * 100_000 + "]" * 100_000 + "\n")
    wait_for(lambda: "nested too deeply" in d.log, what="deep nesting refused")
    assert "Traceback" not in d.log

    # SIGHUP forces a reload: changed tag rules are re-applied to stored items
    path.write_text(good.replace('keywords = ["AI"]', 'keywords = ["AI", "Bitcoin"]'))
    d.signal(signal.SIGHUP)
    wait_for(lambda: len(titles(out, "ai")) == 4, what="re-tagged after SIGHUP")
    assert "config reloaded (SIGHUP)" in d.log or "config reloaded (config.toml changed)" in d.log
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() | {"items": 0} == {
        "status": "ok", "reasons": [], "sources": 2, "failing": [], "feeds": ["all", "ai"],
        "items": 0,
    }  # fmt: skip

    started = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - started < 10
    assert "stopped cleanly" in d.log


def test_sigkill_loses_nothing_and_a_restart_resumes(server: FeedServer, tmp_path, daemons):
    server.add("/a.rss", rss([item(1), item(2), item(3)]))
    path = write_config(
        tmp_path, source("a", server.url("/a.rss"), interval="1h") + TAGS + FEED_ALL
    )
    out = tmp_path / "out"
    d = daemons(path)
    wait_for(lambda: len(titles(out)) == 3, what="first publish")
    d.kill()

    con = sqlite3.connect(tmp_path / "agg.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM items").fetchone()[0] == 3
    con.close()
    for name in ("all.rss", "all.atom"):
        assert len(feedparser.parse((out / name).read_bytes()).entries) == 3

    hits = len(server.hits("/a.rss"))
    again = daemons(path)
    time.sleep(3)
    assert len(server.hits("/a.rss")) == hits  # next pull is an hour away: resumed, not redone
    # a kill while the index or the OPML files were written leaves a temporary file: the
    # restarted writer removes it (the files of that publish were not all in place, so it
    # publishes again)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert titles(out) == ["Bitcoin story 1", "Bitcoin story 2", "Bitcoin story 3"]
    assert again.stop() == 0


def test_sigterm_lets_pulls_in_flight_finish(server: FeedServer, tmp_path, daemons):
    """SIGTERM stops new pulls but gives those under way their grace (STOP_GRACE): a slow
    source's answer is stored and published, while a dozen sources due every second keep
    the scheduler handing jobs over up to the last moment, none of them with a traceback."""
    flight = InFlight(delay=2.0)
    slow = rss([item(1, "Bitcoin story from a slow site")]).encode()
    sources = source("slow", server.add("/slow.rss", b"", handler=flight.serving(slow)), "1h")
    for n in range(12):
        sources += source(f"busy{n}", server.add(f"/busy{n}.rss", rss([item(10 + n)])))
    d = daemons(write_config(tmp_path, sources + TAGS + FEED_ALL))
    wait_for(lambda: flight.now == 1, what="the slow pull under way")
    assert d.stop() == 0
    assert "stopped cleanly" in d.log and "Traceback" not in d.log, d.log
    assert "pull cancelled" not in d.log
    assert "Bitcoin story from a slow site" in titles(tmp_path / "out")


def test_failure_policy_counts_requests(server: FeedServer, tmp_path, daemons):
    server.add("/ok.rss", rss([item(1)]))
    server.add("/fail", "", status=500)
    server.add("/limited", "", status=429, headers={"Retry-After": "4"})
    server.add("/gone", "", status=410)
    path = write_config(
        tmp_path,
        source("healthy", server.url("/ok.rss"))
        + source("failing", server.url("/fail"))
        + source("limited", server.url("/limited"))
        + source("gone", server.url("/gone"))
        + TAGS
        + FEED_ALL,
    )
    d = daemons(path)
    time.sleep(7.5)
    status = run_cli("--config", str(path), "status")  # works while the daemon runs
    assert d.stop() == 0

    healthy, failing = len(server.hits("/ok.rss")), len(server.hits("/fail"))
    limited, gone = len(server.hits("/limited")), len(server.hits("/gone"))
    assert healthy >= 5  # every second or so
    assert 2 <= failing <= 4  # backoff: ~0, 1, 3, 7 s
    assert limited == 2  # Retry-After: 4 honoured
    assert gone == 1  # 410: never again
    assert status.returncode == 0
    rows = {line.split()[0]: line for line in status.stdout.splitlines()[2:]}
    assert "backoff after" in rows["failing"]
    assert "gone" in rows["gone"] and "410" in rows["gone"]
    assert "http_429" in rows["limited"]

    # a restart keeps the 410 (until the entry changes) and the backoff count
    d2 = daemons(path)
    time.sleep(2.5)
    assert len(server.hits("/gone")) == 1
    assert d2.stop() == 0
    path.write_text(path.read_text().replace(server.url("/gone"), server.url("/ok.rss") + "?moved"))
    d3 = daemons(path)
    wait_for(lambda: any(p.startswith("/ok.rss?moved") for p, _ in server.requests), what="revived")
    assert d3.stop() == 0


def test_permanent_redirects_move_the_source(server: FeedServer, tmp_path, daemons):
    new = server.add("/new.rss", rss([item(1)]))
    server.add("/old.rss", "", status=301, headers={"Location": new}, validators=False)
    path = write_config(tmp_path, source("a", server.url("/old.rss")) + TAGS + FEED_ALL)
    d = daemons(path)
    wait_for(lambda: len(server.hits("/new.rss")) >= 6, timeout=20, what="pulls of the new URL")
    assert d.stop() == 0
    assert len(server.hits("/old.rss")) == 3  # then straight to the new address
    status = run_cli("--config", str(path), "status")
    assert f"moved to {new}" in status.stdout
    assert "moved permanently" in d.log


def test_a_second_daemon_is_refused(server: FeedServer, tmp_path, daemons):
    server.add("/a.rss", rss([item(1)]))
    path = write_config(tmp_path, source("a", server.url("/a.rss")) + TAGS + FEED_ALL)
    d = daemons(path)
    wait_for(lambda: (tmp_path / "out/all.json").exists(), what="started")
    for args in (["run"], ["run", "--once"]):
        started = time.monotonic()
        second = run_cli("--config", str(path), *args, timeout=20)
        assert second.returncode == 1
        assert "agg.db.lock" in second.stderr
        assert time.monotonic() - started < 10
    assert d.stop() == 0


def test_serve_alone_and_json_logs(server: FeedServer, tmp_path):
    server.add("/a.rss", rss([item(1)]))
    path = write_config(tmp_path, source("a", server.url("/a.rss")) + TAGS + FEED_ALL)
    once = run_cli("--config", str(path), "--log-format", "json", "run", "--once")
    assert once.returncode == 0
    lines = [json.loads(line) for line in once.stderr.splitlines()]
    pull = next(line for line in lines if line.get("source") == "a")
    assert pull["status"] == 200 and pull["new"] == 1 and pull["duration_ms"] >= 0
    assert any(line["message"].startswith("published ") for line in lines)

    with serving(path) as base:
        r = httpx.get(f"{base}/all.atom")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
        assert "Bitcoin story 1" in r.text


def test_health_is_degraded_when_every_source_fails(server: FeedServer, tmp_path, daemons):
    """/healthz said "ok" while every source failed (issue 16, item 5)."""
    server.add("/down.rss", b"oops", status=500)
    port = free_port()
    path = write_config(tmp_path, source("down", server.url("/down.rss"), interval="1h"))
    path.write_text(path.read_text().replace('listen = ""', f'listen = "127.0.0.1:{port}"'))
    d = daemons(path)
    url = f"http://127.0.0.1:{port}/healthz"
    health = wait_for(
        lambda: (h := httpx.get(url)).status_code == 503 and h, timeout=40, what="degraded"
    )
    assert health.json()["reasons"] == ["every source is failing (1)"]
    assert health.json()["failing"] == ["down"]
    assert d.stop() == 0


def test_status_json_and_an_80_column_terminal(server: FeedServer, tmp_path):
    """`status --json`; on an 80-column terminal the table fits and the error is wrapped
    below its row, whole (it was cut where the fix is: "(allow_private_n")."""

    path = write_config(
        tmp_path,
        source("private-feed-with-a-long-name", "http://10.1.2.3/feed.xml")
        + source("never", "http://10.1.2.4/feed.xml", enabled=False),
    )
    path.write_text(path.read_text().replace("allow_private_networks = true", ""))
    assert run_cli("--config", str(path), "run", "--once").returncode == 1  # all failed
    data = json.loads(run_cli("--config", str(path), "status", "--json").stdout)
    by_name = {r["source"]: r for r in data["sources"]}
    assert by_name["never"] == {
        "source": "never", "note": "disabled", "last_pull": None, "result": "never pulled",
        "next_reason": "first pull",
    }  # fmt: skip
    blocked = by_name["private-feed-with-a-long-name"]
    assert blocked["failures"] == 1 and "allow_private_networks" in blocked["message"]

    lines = run_in_pty("--config", str(path), "status", columns=80).replace("\r", "").splitlines()
    assert lines and all(len(line) <= 80 for line in lines), lines
    text = " ".join(line.strip() for line in lines)
    assert blocked["message"] in text, text  # whole, wrapped


def test_refresh_and_reset_reach_a_running_daemon(server: FeedServer, tmp_path, daemons):
    """`refresh NAME|--all` and `reset NAME` while the daemon runs (the lock forbids
    run --once then), through the database it reads every second; without a daemon they
    do the work themselves (issue 16, item 6)."""
    server.add("/a.rss", rss([item(1)]))
    server.add("/b.rss", b"oops", status=500)
    path = write_config(
        tmp_path,
        source("a", server.url("/a.rss"), interval="1h")
        + source("b", server.url("/b.rss"), interval="1h")
        + FEED_ALL,
    )
    typo = run_cli("--config", str(path), "refresh", "aa")
    assert typo.returncode == 2 and "no source named 'aa'" in typo.stderr

    # no daemon: the command pulls itself
    alone = run_cli("--config", str(path), "refresh", "a")
    assert alone.returncode == 0 and len(server.hits("/a.rss")) == 1 and not server.hits("/b.rss")

    d = daemons(path)
    wait_for(lambda: len(server.hits("/b.rss")) >= 1, what="b's first pull")
    wait_for(lambda: "b: " in d.log and "failed" in d.log, what="b failed")
    a_before = len(server.hits("/a.rss"))
    asked = run_cli("--config", str(path), "refresh", "a")
    assert asked.returncode == 0 and "the running daemon took the request" in asked.stdout
    wait_for(lambda: len(server.hits("/a.rss")) > a_before, what="a pulled on request")

    server.add("/b.rss", rss([item(2)]))
    reset = run_cli("--config", str(path), "reset", "b")
    assert reset.returncode == 0, reset.stderr

    def b_ok() -> bool:
        rows = json.loads(run_cli("--config", str(path), "status", "--json").stdout)["sources"]
        b = next(r for r in rows if r["source"] == "b")
        return b["result"] == "ok" and b["failures"] == 0

    wait_for(b_ok, what="b reset and pulled")
    every = run_cli("--config", str(path), "refresh", "--all")
    assert every.returncode == 0 and "every source" in every.stdout
    assert d.stop() == 0
    assert "refresh asked for a: pulling now" in d.log and "reset asked for b" in d.log


def test_re_tagging_runs_off_the_loop_and_a_slow_rule_is_the_rule_s_fault(
    server: FeedServer, tmp_path, daemons
):
    """Issue 21, item 5: a backtracking pattern added to the rules re-tagged 400 stored
    items inside the event loop (/healthz frozen for 35 s, SIGTERM 27-40 s, no warning),
    and with four such patterns every 80-item feed was refused as "parsing took more than
    15s". Now re-tagging runs a page at a time in a thread, a pattern that runs out of
    time is skipped for the rest of its page or document, and the log names the rule."""
    hostile = "a" * 40 + "!"  # (a|aa)+$ backtracks on it for far longer than 0.1 s
    items = [item(n) | {"description": f"{hostile} {n}"} for n in range(1, 401)]
    server.add("/a.rss", rss(items))
    body = source("a", server.url("/a.rss"), interval="1h") + TAGS + FEED_ALL
    path, config, port = listening(tmp_path, body)
    out = tmp_path / "out"
    d = daemons(path)
    wait_for(lambda: len(titles(out)) >= 50, timeout=30, what="first publish")

    patterns = "patterns = [" + ", ".join(f"'(a|aa)+{x}$'" for x in "!?;:") + "]\n"
    path.write_text(
        config.replace('keywords = ["bitcoin"]\n', 'keywords = ["bitcoin"]\n' + patterns)
    )
    worst = 0.0
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # /healthz answers throughout the re-tag
        started = time.monotonic()
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.05)
    wait_for(lambda: "re-tagging stored items: tags.crypto: pattern" in d.log, what="warning")
    assert worst < 1.0, worst
    assert "gave up after 0.1s on one item" in d.log

    # a new feed of 80 items with the four slow patterns is stored, not refused
    server.add(
        "/b.rss",
        rss([item(n, f"Bitcoin b {n}") | {"description": hostile} for n in range(500, 580)]),
    )
    path.write_text(
        path.read_text().replace(FEED_ALL, source("b", server.url("/b.rss")) + FEED_ALL)
    )
    wait_for(lambda: any(t.startswith("Bitcoin b ") for t in titles(out)), timeout=30, what="b")
    assert "document refused" not in d.log

    started = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - started < 5
    assert "Traceback" not in d.log
