"""A real feed reader: newsboat subscribes to the served RSS and Atom feeds over loopback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta

from conftest import FeedServer, needs_tool, rss, run_cli, seed_item, write_config
from test_daemon import serving

pytestmark = needs_tool("newsboat", "newsboat")
NOW = datetime.now(UTC).replace(microsecond=0)


def test_newsboat_lists_every_item(server: FeedServer, tmp_path):
    items = [seed_item()] + [
        {
            "title": f"Bitcoin & AI story {n}",
            "link": f"https://news.example/{n}?utm_source=rss",
            "guid": f"g{n}",
            "date": NOW - timedelta(hours=n),
            "description": f"<p>Story {n} about bitcoin.</p>",
        }
        for n in range(1, 6)
    ]
    url = server.add("/a.rss", rss(items, title="Source"))
    config = write_config(
        tmp_path,
        f'[[sources]]\nname = "a"\nurl = "{url}"\n\n[[feeds]]\nname = "all"\ntitle = "All"\n',
    )
    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    expected = {
        (i["title"], i["url"]) for i in json.loads((tmp_path / "out/all.json").read_text())["items"]
    }
    assert len(expected) == 6

    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    with serving(config) as base:
        for suffix in ("rss", "atom"):
            home = tmp_path / f"nb-{suffix}"
            home.mkdir()
            (home / "urls").write_text(f"{base}/all.{suffix}\n")
            (home / "config").write_text("")
            done = subprocess.run(
                [
                    "newsboat",
                    "-u",
                    str(home / "urls"),
                    "-c",
                    str(home / "cache.db"),
                    "-C",
                    str(home / "config"),
                    "-x",
                    "reload",
                ],
                env={**env, "HOME": str(home)},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            con = sqlite3.connect(home / "cache.db")
            got = set(con.execute("SELECT title, url FROM rss_item"))
            con.close()
            assert got == expected, suffix
