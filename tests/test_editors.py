"""Tools for editors: the JSON Schema of config.toml, `aggregator tags`, `check` warnings."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime

import jsonschema
import pytest
from conftest import ROOT, FeedServer, rss, run_cli, write_config

from aggregator.schema import render

NOW = datetime.now(UTC).replace(microsecond=0)


def test_shipped_schema_is_in_step_with_the_code():
    assert (ROOT / "config.schema.json").read_text(encoding="utf-8") == render(), (
        "config.schema.json is stale: run `.venv/bin/aggregator schema > config.schema.json`"
    )
    assert (
        (ROOT / "config.toml")
        .read_text(encoding="utf-8")
        .startswith("#:schema ./config.schema.json\n")
    )


def test_schema_accepts_the_shipped_config_and_refuses_typos():
    schema = json.loads((ROOT / "config.schema.json").read_text())
    config = tomllib.loads((ROOT / "config.toml").read_text())
    jsonschema.validate(config, schema)
    for broken in (
        {**config, "aggregator": {**config["aggregator"], "intervall": "15m"}},
        {**config, "aggregator": {**config["aggregator"], "interval": "soon"}},
        {**config, "feeds": [{**config["feeds"][0], "content": "everything"}]},
        {**config, "sources": [{"name": "Bad Name", "url": "https://x.example/"}]},
        {**config, "tags": {"ai": {"keyword": ["AI"]}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_tags_command_explains_a_text():
    result = run_cli(
        "--config",
        str(ROOT / "config.toml"),
        "tags",
        "Le débauchage de chercheurs d'OpenAI; j'ai vu un vin sec",
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert 'keyword "débauchage"' in lines["talent"]
    assert 'keyword "OpenAI"' in lines["openai"]
    assert "implied by openai" in lines["ai"]
    assert "regulation" not in lines  # "sec" is not the SEC
    nothing = run_cli("--config", str(ROOT / "config.toml"), "tags", "Une recette de cuisine")
    assert nothing.stdout.strip() == "no tag"


def test_tags_command_on_a_file_and_a_stored_item(server: FeedServer, tmp_path):
    text = tmp_path / "article.txt"
    text.write_text("Bitcoin and AI agents")
    url = server.add(
        "/a.rss",
        rss(
            [
                {
                    "title": "Bitcoin miners",
                    "guid": "1",
                    "link": "https://x.example/1?utm_source=a",
                    "date": NOW,
                }
            ]
        ),
    )
    config = write_config(
        tmp_path,
        f'[[sources]]\nname = "a"\nurl = "{url}"\ntags = ["crypto"]\n[tags.crypto]\nkeywords = ["bitcoin"]\n[tags.ai]\nkeywords = ["AI"]\n[[feeds]]\nname = "all"\ntitle = "All"\n',
    )
    from_file = run_cli("--config", str(config), "tags", "--file", str(text))
    assert "crypto" in from_file.stdout and "ai " in from_file.stdout
    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    stored = run_cli("--config", str(config), "tags", "--url", "https://x.example/1")
    assert stored.returncode == 0
    assert "every item of source a" in stored.stdout and 'keyword "Bitcoin"' in stored.stdout
    assert (
        run_cli("--config", str(config), "tags", "--url", "https://nope.example/").returncode == 1
    )


def test_check_warns_without_failing(server: FeedServer, tmp_path):
    url = server.add(
        "/a.rss",
        rss(
            [
                {
                    "title": f"New etf filing {n}",
                    "guid": str(n),
                    "link": f"https://x.example/{n}",
                    "date": NOW,
                    "description": "The etf would hold bitcoin.",
                }
                for n in range(3)
            ]
        ),
    )
    body = (
        f'[[sources]]\nname = "a"\nurl = "{url}"\n'
        '[[sources]]\nname = "dead"\nurl = "http://127.0.0.1:9/feed"\n'
        '[tags.crypto]\nkeywords = ["bitcoin"]\n'
        '[tags.etf]\nkeywords = ["ETF"]\n'
        '[tags.lonely]\nkeywords = ["nothing"]\n'
        '[[feeds]]\nname = "crypto"\ntitle = "Crypto"\nany_tags = ["crypto", "etf"]\n'
        '[[feeds]]\nname = "german"\ntitle = "German"\nlanguages = ["de"]\n'
    )
    config = write_config(tmp_path, body)
    for _ in range(3):
        run_cli("--config", str(config), "run", "--once")
    result = run_cli("--config", str(config), "check")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "tags.lonely: warning: no curated feed and no other tag uses this tag" in out
    assert 'tags.etf.keywords[0]: warning: "ETF" is in capitals' in out
    assert "feeds[1]: warning: would be empty" in out
    assert "sources[1]: warning: has never been pulled successfully (3 failures" in out
    assert "tags.crypto" not in out
    lines = [line for line in out.splitlines() if "warning" in line]
    assert all(line.startswith("config.toml:") and line.split(":")[1].isdigit() for line in lines)
    alone = tmp_path / "shipped"
    alone.mkdir()
    (alone / "config.toml").write_text((ROOT / "config.toml").read_text())  # no database there
    shipped = run_cli("--config", str(alone / "config.toml"), "check")
    assert shipped.returncode == 0 and "warning" not in shipped.stdout
