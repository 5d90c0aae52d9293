"""The bench's full pass and pass of 304s on SQLite and on PostgreSQL, alternating: what
the shared store costs. Starts its own PostgreSQL server (tests/pg.py: Debian's binaries)
and serves `pass_bench`'s generated feeds on 127.0.0.1.

    .venv/bin/python bench/pg_bench.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]

import pass_bench  # noqa: E402
from pg import Server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aggregator-pg-bench-"))
    site = work / "site"
    site.mkdir()
    pass_bench.make_feeds(site, 200, 50)
    port = pass_bench.free_port()
    feeds = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = Server()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AGGREGATOR_CONFIG", "PYTHONDONTWRITEBYTECODE")
    }
    sources = "".join(
        f'[[sources]]\nname = "s{n}"\nurl = "http://127.0.0.1:{port}/feed{n}.xml"\n'
        for n in range(200)
    )

    def run(config: Path) -> tuple[float, float]:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config), "--log-format",
             "json", "run", "--once", "--all"],
            env=env, capture_output=True, text=True, cwd=config.parent, check=True,
        )  # fmt: skip
        done = next(json.loads(x) for x in result.stderr.splitlines() if '"event": "pass"' in x)
        return done["wall"], time.monotonic() - started

    try:
        time.sleep(1.0)
        for n in range(opts.rounds):
            for kind in ("sqlite", "postgresql"):
                folder = work / f"{kind}{n}"
                folder.mkdir()
                database = "bench.db" if kind == "sqlite" else server.database()
                config = folder / "config.toml"
                config.write_text(
                    pass_bench.CONFIG.replace('"bench.db"', json.dumps(database)) + sources,
                    encoding="utf-8",
                )
                full, not_modified = run(config), run(config)
                print(
                    f"{kind:<10} round {n + 1}: full pass {full[0]:.2f} s in process "
                    f"({full[1]:.2f} s whole), pass of 304s {not_modified[0]:.2f} s "
                    f"({not_modified[1]:.2f} s whole)",
                    flush=True,
                )
    finally:
        feeds.terminate()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
