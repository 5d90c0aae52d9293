"""What a daemon costs between passes: 1,000 sources pulled every 15 minutes, 2% of them
changed per interval, the real `aggregator run` against feeds on 127.0.0.1.

    .venv/bin/python bench/idle_bench.py                 # 1,000 sources, a 4-minute window
    .venv/bin/python bench/idle_bench.py --window 900    # a whole interval

The daemon starts, makes its first pulls (every source is new), then runs in its steady
state: each source pulled every 15 minutes (with jitter; mostly 304s from Python's
http.server, which answers If-Modified-Since), one feed in 50 gaining an item each
interval. The window opens a minute after the start and measures the CPU seconds of the
daemon and every process under it (utime + stime from /proc, parse workers included) and
its memory at the end (RSS summed, PSS). CPU per hour is the window's, scaled: the real
code path at the real rate, only shorter than an hour.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import children, pss_kb, rss_kb  # noqa: E402
from pass_bench import free_port  # noqa: E402

CONFIG = """
[aggregator]
database = "idle.db"
output_dir = "out"
base_url = "http://localhost:8080/"
interval = "15m"
listen = "127.0.0.1:{listen}"
allow_private_networks = true

[disclaimer]
default = "en"
en = "Not investment advice."

[tags.crypto]
keywords = ["bitcoin", "crypto"]

[[feeds]]
name = "crypto"
title = "Crypto"
any_tags = ["crypto"]
"""
TICK = os.sysconf("SC_CLK_TCK")


def feed(n: int, items: int) -> str:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    entries = "".join(
        f"<item><title>Bitcoin note {n}-{i}</title><link>https://s{n}.example/{i}</link>"
        f"<guid>s{n}-{i}</guid><pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate>"
        f"<description>Crypto markets, part {i} of source {n}.</description></item>"
        for i in range(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>S{n}</title>{entries}</channel></rss>'


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its live descendants, in seconds."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (after the name)
    return total / TICK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--window", type=float, default=240.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=60.0)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aggregator-idle-"))
    site = work / "site"
    site.mkdir()
    items = {n: 10 for n in range(opts.sources)}
    for n in range(opts.sources):
        (site / f"f{n}.xml").write_text(feed(n, 10))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sources = "".join(
        f'[[sources]]\nname = "s{n}"\nurl = "http://127.0.0.1:{port}/f{n}.xml"\n'
        for n in range(opts.sources)
    )
    (work / "config.toml").write_text(CONFIG.format(listen=free_port()) + sources)
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    log = open(work / "daemon.log", "w")  # noqa: SIM115
    daemon = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(work / "config.toml"), "run"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work,
    )  # fmt: skip
    rng = random.Random(1)
    # 2% of the sources change per 15-minute interval: one every 45 s at 1,000 sources
    every = 900.0 / max(1, opts.sources * 0.02)
    try:
        time.sleep(opts.warmup)  # the first pulls of every source, then the steady state
        pulls_before = (work / "daemon.log").read_text().count("(HTTP ")
        started, cpu_started = time.monotonic(), cpu_seconds(daemon.pid)
        next_change = started
        while (now := time.monotonic()) < started + opts.window:
            if now >= next_change:
                n = rng.randrange(opts.sources)
                items[n] += 1
                (site / f"f{n}.xml").write_text(feed(n, items[n]))
                next_change += every
            time.sleep(0.5)
        cpu = cpu_seconds(daemon.pid) - cpu_started
        window = time.monotonic() - started
        procs = [daemon.pid, *children(daemon.pid)]
        rss = sum(rss_kb(p) for p in procs) / 1024
        pss = sum(pss_kb(p) for p in procs) / 1024
        pulls = (work / "daemon.log").read_text().count("(HTTP ") - pulls_before
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        server.terminate()
        log.close()
    per_hour = cpu * 3600 / window
    print(
        f"idle daemon, {opts.sources} sources every 15 min, 2% changing: {pulls} pulls in "
        f"{window:.0f} s, {cpu:.2f} CPU s -> {per_hour:.0f} CPU s per hour "
        f"({per_hour / 36:.2f}% of a core); memory {rss:.0f} MB RSS summed, {pss:.0f} MB PSS"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
