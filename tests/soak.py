"""`make soak`: the crash tests of `make test`, longer and at random instants.

Each round changes the local sources (new items, edited items, a source that fails), starts
`aggregator run --once --all` or the daemon in a subprocess, SIGKILLs it after a random
delay, then runs a clean `run --once --all` and checks the invariants of issue 21:

- the database passes `PRAGMA integrity_check`, and holds each item once;
- every published feed agrees in RSS, Atom and JSON, and lists exactly what a fresh
  publish of the same store into another folder lists;
- no temporary file of the dead writer is left in the output folder.

    .venv/bin/python tests/soak.py --rounds 50 --seed 7

Exit 0 when every round holds, 1 at the first that does not (with its seed and round).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import feedparser
from conftest import FeedServer, rss, write_config

from aggregator.config import load as config_module
from aggregator.publish import publish
from aggregator.storage.sqlite import Store

SOURCES = 12
FEEDS = (
    '[tags.crypto]\nkeywords = ["bitcoin"]\n[tags.ai]\nkeywords = ["AI"]\n'
    '[[feeds]]\nname = "all"\ntitle = "All"\nmax_items = 500\n'
    '[[feeds]]\nname = "crypto"\ntitle = "Crypto"\nany_tags = ["crypto"]\n'
    '[[feeds]]\nname = "ai"\ntitle = "AI"\nany_tags = ["ai"]\n'
)


def _feed(rng: random.Random, name: str, round_: int) -> str:
    now = datetime.now(UTC)
    count = rng.randint(5, 60)
    return rss(
        [
            {
                "title": f"{rng.choice(['Bitcoin', 'AI'])} {name} {n} r{round_ // 3}",
                "link": f"https://{name}.example/{n}",
                "guid": f"{name}-{n}",
                "date": now - timedelta(minutes=n),
                "description": f"Story {n} of {name}, " + "words " * rng.randint(5, 300),
            }
            for n in range(round_, round_ + count)
        ],
        title=name,
    )


def _run(config: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        cwd=config.parent,
        env=base | (env or {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _listed(out: Path, feed: str) -> dict[str, list[str]]:
    return {
        "rss": [e.get("id", e.get("link")) for e in feedparser.parse(out / f"{feed}.rss").entries],
        "atom": [e.get("id") for e in feedparser.parse(out / f"{feed}.atom").entries],
        "json": [i["id"] for i in json.loads((out / f"{feed}.json").read_text())["items"]],
    }


def _check(work: Path) -> list[str]:
    """The invariants after a clean pass; each broken one as a sentence."""
    broken = []
    db = sqlite3.connect(work / "agg.db")
    try:
        if (ok := db.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
            broken.append(f"integrity_check: {ok}")
        dupes = db.execute(
            "SELECT source, key, COUNT(*) FROM items GROUP BY source, key HAVING COUNT(*) > 1"
        ).fetchall()
        if dupes:
            broken.append(f"items stored twice: {dupes[:3]}")
    finally:
        db.close()
    out = work / "out"
    if leftovers := list(out.glob(".*.tmp")):
        broken.append(f"temporary files left: {leftovers}")
    config = config_module.load(work / "config.toml")
    fresh = work / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    store = Store(work / "agg.db")
    try:
        settings = config.settings._replace(output_dir=fresh)
        publish(store, config._replace(settings=settings))
    finally:
        store.close()
    for feed in ("all", "crypto", "ai"):
        listed = _listed(out, feed)
        ids = [i["id"] for i in json.loads((out / f"{feed}.json").read_text())["items"]]
        if not (len(listed["rss"]) == len(listed["atom"]) == len(listed["json"])):
            broken.append(
                f"{feed}: RSS, Atom and JSON disagree: {[len(v) for v in listed.values()]}"
            )
        want = [i["id"] for i in json.loads((fresh / f"{feed}.json").read_text())["items"]]
        if ids != want:
            broken.append(f"{feed}: published {len(ids)} items, a fresh publish {len(want)}")
    return broken


def soak(rounds: int, seed: int) -> int:
    rng = random.Random(seed)
    server = FeedServer()
    threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        body = "".join(
            f'[[sources]]\nname = "s{n}"\nurl = "{server.url(f"/s{n}.rss")}"\ninterval = "1s"\n'
            for n in range(SOURCES)
        )
        config = write_config(work, body + FEEDS)
        for n in range(SOURCES):
            server.add(f"/s{n}.rss", _feed(rng, f"s{n}", 0))
        started = time.monotonic()
        _run(config, "run", "--once", "--all").wait(120)
        took = time.monotonic() - started  # kills land anywhere in a pass of this length
        for round_ in range(rounds):
            for n in range(SOURCES):
                if rng.random() < 0.1:
                    server.add(f"/s{n}.rss", "", status=500)
                else:
                    server.add(f"/s{n}.rss", _feed(rng, f"s{n}", round_))
            daemon = rng.random() < 0.3
            proc = _run(config, *(("run",) if daemon else ("run", "--once", "--all")))
            delay = rng.uniform(0.05, took * (2.0 if daemon else 1.0))
            time.sleep(delay)
            what = "daemon" if daemon else "run --once"
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed = f"killed after {delay:.2f}s"
            else:
                killed = f"done before the kill ({proc.returncode})"
            proc.wait(30)
            clean = _run(config, "run", "--once", "--all")
            _, err = clean.communicate(timeout=120)
            if clean.returncode != 0:
                print(f"seed {seed} round {round_}: the clean pass failed: {err[-1500:]}")
                return 1
            broken = _check(work)
            print(f"round {round_:3d}: {what}, {killed}: {'ok' if not broken else 'BROKEN'}")
            if broken:
                for line in broken:
                    print(f"  {line}")
                print(f"seed {seed} round {round_}: work folder kept at {work}")
                return 1
        print(f"{rounds} rounds, seed {seed}: every invariant held")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    sys.exit(soak(args.rounds, args.seed))


if __name__ == "__main__":
    main()
