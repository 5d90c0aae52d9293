"""The operator's side (issue #19), end to end on the real daemon: /metrics scraped and
parsed back with Prometheus' own text parser."""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import FeedServer, rss
from prometheus_client.parser import text_string_to_metric_families
from test_daemon import FEED_ALL, TAGS, daemons, item, listening, source, wait_for  # noqa: F401


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, labels), parsed as Prometheus parses it."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_say_what_the_daemon_did(server: FeedServer, tmp_path: Path, daemons):  # noqa: F811
    server.add("/good.rss", rss([item(1), item(2), item(3, "AI story 3")]))
    server.add("/bad.rss", "gone", status=404, content_type="text/plain")
    server.add("/hub", "", status=204)
    body = (
        source("good", server.url("/good.rss"), interval="1h")
        + source("bad", server.url("/bad.rss"), interval="1h")
        + TAGS
        + FEED_ALL
    )
    path, config, port = listening(tmp_path, body)
    config = config.replace("[aggregator]\n", f'[aggregator]\nhub = "{server.url("/hub")}"\n', 1)
    path.write_text(config)
    d = daemons(path)

    def pulled() -> object:  # both sources pulled, the feed published with the items
        m = scrape(port)
        failed = m.get(("aggregator_pulls_total", (("result", "http_404"), ("source", "bad"))))
        return failed and m.get(("aggregator_feed_items", (("feed", "all"),))) == 3 and m

    m = wait_for(pulled, what="both pulls and a ping")
    assert isinstance(m, dict)
    assert m[("aggregator_pulls_total", (("result", "ok"), ("source", "good")))] == 1
    assert m[("aggregator_pulls_total", (("result", "http_404"), ("source", "bad")))] >= 1
    assert m[("aggregator_source_consecutive_failures", (("source", "bad"),))] >= 1
    assert m[("aggregator_source_consecutive_failures", (("source", "good"),))] == 0
    assert m[("aggregator_source_last_success_timestamp_seconds", (("source", "good"),))] > 0
    assert m[("aggregator_items_total", (("outcome", "new"),))] == 3
    assert m[("aggregator_items_stored", ())] == 3
    assert m[("aggregator_stories_stored", ())] == 3
    assert m[("aggregator_feed_items", (("feed", "all"),))] == 3
    assert m[("aggregator_feed_last_change_timestamp_seconds", (("feed", "all"),))] > 0
    assert m[("aggregator_pull_duration_seconds_count", ())] >= 2
    assert m[("aggregator_publish_duration_seconds_count", ())] >= 1
    assert m[("aggregator_websub_pings_total", (("result", "ok"),))] >= 1
    assert m[("aggregator_config_generation", ())] == 1
    assert m[("aggregator_config_refused", ())] == 0
    assert m[("process_resident_memory_bytes", ())] > 10_000_000
    # docs/operations.md's dashboard and alerts use only names /metrics has
    import json
    import re

    docs = Path(__file__).parent.parent / "docs"
    used = set(
        re.findall(r"\b(?:aggregator|process)_[a-z_]+", (docs / "operations.md").read_text())
    )
    for panel in json.loads((docs / "grafana-dashboard.json").read_text())["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(?:aggregator|process)_[a-z_]+", target["expr"]))
    exposed = {name for name, _ in m}
    exposed |= {n.rsplit("_", 1)[0] for n in exposed if n.endswith(("_bucket", "_count"))}
    assert used and not {u for u in used if u not in exposed}, used - exposed
    # bounded labels: sources and feeds of the config, results and outcomes; never an item
    values = {v for key in m for _, v in key[1]}
    assert not {v for v in values if "example" in v or "story" in v.lower()}

    path.write_text(config.replace('name = "all"', 'name = "all"\nany_tags = ["nope"]'))
    wait_for(lambda: scrape(port)[("aggregator_config_refused", ())] == 1, what="refused")
    path.write_text(config + '\n[[feeds]]\nname = "ai"\ntitle = "AI"\nany_tags = ["ai"]\n')
    wait_for(lambda: scrape(port)[("aggregator_config_refused", ())] == 0, what="taken")
    assert scrape(port)[("aggregator_config_generation", ())] == 2
    wait_for(lambda: scrape(port).get(("aggregator_feed_items", (("feed", "ai"),))) == 1)
    assert d.stop() == 0 and "Traceback" not in d.log


# ---------------------------------------------------------------- systemd


def test_the_daemon_speaks_systemds_notify_protocol(server: FeedServer, tmp_path: Path):
    """Under `Type=notify` with `WatchdogSec`: READY=1 once the feeds are served (not
    before), WATCHDOG=1 from the loop, RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1
    at SIGTERM. A fake NOTIFY_SOCKET stands for systemd."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    server.add("/a.rss", rss([item(1)]))
    path, _, port = listening(
        tmp_path, source("a", server.url("/a.rss"), interval="1h") + TAGS + FEED_ALL
    )
    address = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(20)
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    env |= {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}  # pets every 0.2 s
    log = open(tmp_path / "log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(path), "run"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        messages: list[str] = []

        def until(field: str) -> None:
            while not any(field in m.split("\n") for m in messages):
                messages.append(sock.recv(4096).decode())

        until("READY=1")
        ready = next(m for m in messages if "READY=1" in m.split("\n"))
        assert "STATUS=1 sources, 1 feeds, serving on 127.0.0.1:" in ready
        assert f"MAINPID={proc.pid}" in ready
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code in (200, 503)  # up
        started = time.monotonic()
        while sum(m == "WATCHDOG=1" for m in messages) < 3:
            messages.append(sock.recv(4096).decode())
        assert time.monotonic() - started < 5
        messages.clear()
        proc.send_signal(signal.SIGHUP)
        until("READY=1")
        assert any(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in messages)
        proc.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        sock.close()
    assert "Traceback" not in (tmp_path / "log").read_text()


def test_the_shipped_unit_passes_systemd_analyze_verify(tmp_path: Path):
    """deploy/aggregator.service as systemd reads it (its ExecStart pointed at this
    install's aggregator, which verify requires to exist)."""
    import os
    import shutil
    import subprocess
    import sys

    import pytest

    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI"):
            raise AssertionError("systemd-analyze is missing: .ci/run installs systemd")
        pytest.skip("systemd-analyze not found (apt-get install systemd)")
    unit = (Path(__file__).parent.parent / "deploy" / "aggregator.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "ExecReload=/bin/kill -HUP" in unit
    for line in (
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "DynamicUser=yes",
        "SystemCallFilter=@system-service",
        "Restart=on-failure",
    ):
        assert line in unit.splitlines(), line  # fmt: skip
    binary = Path(sys.executable).parent / "aggregator"
    local = tmp_path / "aggregator.service"
    local.write_text(unit.replace("/opt/aggregator/.venv/bin/aggregator", str(binary)))
    result = subprocess.run([tool, "verify", str(local)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "aggregator.service" not in result.stderr, result.stderr  # no warning about it


# ---------------------------------------------------------------- backups


def test_a_backup_taken_while_the_daemon_writes_restores_the_same_feeds(
    server: FeedServer,
    tmp_path: Path,
    daemons,  # noqa: F811
):
    """`backup` while the daemon pulls a feed that grows at every request: the copy passes
    integrity_check; `restore` is refused while the daemon runs; once it stopped, the
    store restored from the copy publishes exactly the copy's items, not what came after."""
    import json
    import sqlite3
    import threading

    from conftest import run_cli, send_feed

    served = {"n": 0}
    lock = threading.Lock()

    def growing(request) -> None:  # one more item at every pull
        with lock:
            served["n"] += 1
            body = rss([item(n) for n in range(1, served["n"] + 1)]).encode()
        send_feed(request, body)

    server.add("/grow.rss", b"", handler=growing)
    path, _, _ = listening(tmp_path, source("g", server.url("/grow.rss")) + TAGS + FEED_ALL)
    d = daemons(path)
    database = tmp_path / "agg.db"
    wait_for(lambda: served["n"] >= 3, what="a few pulls")
    copy = tmp_path / "backup.db"
    result = run_cli("--config", str(path), "backup", str(copy))
    assert result.returncode == 0, result.stderr
    assert (
        f"backed up {database} to {copy}" in result.stdout and "integrity check ok" in result.stdout
    )
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = sorted(r[0] for r in db.execute("SELECT title FROM items"))
    assert kept
    refused = run_cli("--config", str(path), "restore", str(copy))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "in use" in refused.stderr, refused.stderr
    wait_for(lambda: served["n"] >= len(kept) + 2, what="the store moves on")
    assert d.stop() == 0

    restored = run_cli("--config", str(path), "restore", str(copy))
    assert restored.returncode == 0, restored.stderr
    assert (
        f"{len(kept)} items" in restored.stdout and "replaced store is kept as" in restored.stdout
    )
    with sqlite3.connect(database) as db:  # the files showed the replaced store: republished
        marks = db.execute("SELECT count(*) FROM meta WHERE key LIKE 'output:%'").fetchone()
    assert marks[0] == 0
    server.add("/grow.rss", "gone", status=404, content_type="text/plain")  # nothing new
    again = run_cli("--config", str(path), "run", "--once", "--all")
    assert again.returncode == 1 and "1 failed" in again.stdout  # its one source: 404
    feed = json.loads((tmp_path / "out" / "all.json").read_text())
    assert sorted(i["title"] for i in feed["items"]) == kept
    missing = run_cli("--config", str(path), "restore", str(tmp_path / "nope.db"))
    assert (
        missing.returncode == 1
        and "backup" in missing.stderr
        and "does not exist" in missing.stderr
    )


# ---------------------------------------------------------------- webhook alerts


class _Hook:
    """A webhook receiver on 127.0.0.1: answers 500 to the first POST, then 204."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.events: list[dict] = []
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                if hook.attempts == 1:
                    self.send_response(500)
                else:
                    hook.events.append(json.loads(body))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def kinds(self, source: str | None = None) -> list[str]:
        return [e["event"] for e in self.events if source is None or e.get("source") == source]


def test_the_webhook_hears_each_failure_recovery_refusal_and_publish_failure_once(
    server: FeedServer,
    tmp_path: Path,
    daemons,  # noqa: F811
):
    import shutil

    hook = _Hook()
    server.add("/good.rss", rss([item(1)]))
    server.add("/bad.rss", "gone", status=404, content_type="text/plain")
    body = (
        source("good", server.url("/good.rss"))
        + source("bad", server.url("/bad.rss"))
        + TAGS
        + FEED_ALL
        + f'\n[notify]\nwebhook = "{hook.url}"\nfailures = 2\n'
    )
    path, config, _ = listening(tmp_path, body)
    d = daemons(path)
    # the first delivery meets a 500 and is sent again a second later
    wait_for(lambda: hook.kinds("bad") == ["source_failing"], timeout=30, what="failing")
    (failing,) = hook.events
    assert failing["failures"] == 2 and failing["error_kind"] == "http_404"
    assert failing["text"].endswith("bad has failed 2 pulls in a row: http_404: HTTP 404 Not Found")
    assert "webhook: source_failing not delivered (HTTP 500); again in 1s" in d.log
    wait_for(lambda: len(server.hits("/bad.rss")) >= 4, timeout=30, what="more failures")
    assert hook.kinds("bad") == ["source_failing"]  # once, not at every failure

    server.add("/bad.rss", rss([item(2)]))
    wait_for(lambda: "source_recovered" in hook.kinds("bad"), timeout=60, what="recovered")
    assert hook.kinds("bad") == ["source_failing", "source_recovered"]

    path.write_text(config.replace('name = "all"', 'name = "all"\nany_tags = ["nope"]'))
    wait_for(lambda: "config_refused" in hook.kinds(), what="refused")
    path.write_text(config)

    shutil.rmtree(tmp_path / "out")
    (tmp_path / "out").write_text("a file where the folder was")  # publishing must fail
    server.add("/good.rss", rss([item(1), item(3)]))
    wait_for(lambda: "publish_failed" in hook.kinds(), timeout=30, what="publish failed")
    assert d.stop() == 0 and "Traceback" not in d.log
    assert hook.kinds().count("config_refused") == 1
    assert hook.kinds().count("publish_failed") == 1
    assert all(e["node"] and e["at"] for e in hook.events)


# ---------------------------------------------------------------- retention per source


def test_retention_per_source_keeps_a_quiet_sources_last_items(server: FeedServer, tmp_path):
    """A weekly source's back catalogue appears (its newest `keep_min_items`, however
    old), a source's own `retention` beats the global one, `status` says what the store
    holds and what the next prune drops, and a pruned item its feed still lists never
    comes back."""
    import json
    from datetime import UTC, datetime, timedelta

    from conftest import run_cli, write_config

    now = datetime.now(UTC).replace(microsecond=0)

    def dated(name: str, days: int) -> dict:
        return {"title": f"Bitcoin {name} {days}d", "link": f"https://{name}.example/{days}",
                "guid": f"{name}-{days}", "date": now - timedelta(days=days)}  # fmt: skip

    server.add("/weekly.rss", rss([dated("weekly", d) for d in (20, 30, 40)]))
    server.add("/daily.rss", rss([dated("daily", d) for d in (1, 20)]))
    server.add("/long.rss", rss([dated("long", 40)]))
    body = (
        f'[[sources]]\nname = "weekly"\nurl = "{server.url("/weekly.rss")}"\nkeep_min_items = 2\n'
        f'[[sources]]\nname = "daily"\nurl = "{server.url("/daily.rss")}"\n'
        f'[[sources]]\nname = "long"\nurl = "{server.url("/long.rss")}"\nretention = "60d"\n'
        + TAGS
        + FEED_ALL
    )
    config = write_config(tmp_path, body, retention="7d")

    def titles() -> list[str]:
        feed = json.loads((tmp_path / "out" / "all.json").read_text())
        return sorted(i["title"] for i in feed["items"])

    first = run_cli("--config", str(config), "run", "--once")
    assert first.returncode == 0, first.stderr
    assert titles() == [
        "Bitcoin daily 1d", "Bitcoin long 40d", "Bitcoin weekly 20d", "Bitcoin weekly 30d",
    ]  # fmt: skip
    status = run_cli("--config", str(config), "status", "--json")
    held = json.loads(status.stdout)["store"]
    assert (held["items"], held["stories"], held["next_prune"]) == (4, 4, 0) and held["bytes"]
    text = run_cli("--config", str(config), "status").stdout
    assert "4 items in 4 stories; the next prune drops nothing" in text

    # a new item: the weekly source's third newest goes (a tombstone stays)
    server.add("/weekly.rss", rss([dated("weekly", d) for d in (1, 20, 30, 40)]))
    assert run_cli("--config", str(config), "run", "--once", "--all").returncode == 0
    assert titles() == [
        "Bitcoin daily 1d", "Bitcoin long 40d", "Bitcoin weekly 1d", "Bitcoin weekly 20d",
    ]  # fmt: skip
    # its feed still lists the pruned item: it is not taken in again, nor republished
    again = run_cli("--config", str(config), "run", "--once", "--all", "--log-format", "json")
    assert again.returncode == 0
    assert "Bitcoin weekly 30d" not in titles() and len(titles()) == 4
