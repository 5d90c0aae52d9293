"""Tools for editors: the JSON Schema of config.toml, `aggregator tags`, `check` warnings."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime

import jsonschema
import pytest
from conftest import ROOT, FeedServer, rss, run_cli, write_config

from aggregator.config.schema import render

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
    assert lines["language"].startswith("language         the text reads fr (")
    nothing = run_cli("--config", str(ROOT / "config.toml"), "tags", "Une recette de cuisine")
    assert nothing.stdout.strip().splitlines()[1].startswith("topic model      ai 0.")
    assert nothing.stdout.strip().splitlines()[2:] == ["no tag"]


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
        '[[sources]]\nname = "dead"\nurl = "http://127.0.0.1:9/feed"\ntags = ["crpyto"]\n'
        '[tags.crypto]\nkeywords = ["bitcoin"]\n'
        '[tags.etf]\nkeywords = ["ETF"]\n'
        '[tags.lonely]\nkeywords = ["nothing"]\n'
        '[[feeds]]\nname = "crypto"\ntitle = "Crypto"\nany_tags = ["crypto", "etf"]\n'
        '[[feeds]]\nname = "german"\ntitle = "German"\nlanguages = ["de"]\n'
    )
    config = write_config(tmp_path, body)
    for _ in range(3):
        run_cli("--config", str(config), "run", "--once", "--all")
    result = run_cli("--config", str(config), "check")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "tags.lonely: warning: no curated feed and no other tag uses this tag" in out
    assert 'tags.etf.keywords[0]: warning: "ETF" is in capitals' in out
    # sources and feeds by name; the file as given on the command line (clickable)
    assert 'feeds["german"]: warning: would be empty' in out
    assert 'sources["dead"]: warning: has never been pulled successfully (3 failures' in out
    assert (
        "sources[\"dead\"].tags[0]: warning: tag 'crpyto' has no rule and no curated feed "
        "selects it (did you mean 'crypto'?)"
    ) in out
    assert "tags.crypto" not in out
    lines = [line for line in out.splitlines() if "warning" in line]
    assert all(line.startswith(f"{config}:") and line.split(":")[1].isdigit() for line in lines)
    here = run_cli("--config", "config.toml", "check", cwd=tmp_path)
    assert here.stdout.startswith("config.toml:"), here.stdout
    alone = tmp_path / "shipped"
    alone.mkdir()
    (alone / "config.toml").write_text((ROOT / "config.toml").read_text())  # no database there
    shipped = run_cli("--config", str(alone / "config.toml"), "check")
    assert shipped.returncode == 0 and "warning" not in shipped.stdout


def test_sources_add_and_remove(server: FeedServer, tmp_path):
    feed = server.add(
        "/feed.xml",
        rss(
            [
                {
                    "title": "Older",
                    "guid": "1",
                    "link": "https://x.example/1",
                    "date": NOW.replace(year=2025),
                },
                {"title": "Newest story", "guid": "2", "link": "https://x.example/2", "date": NOW},
            ],
            title="Example News",
        ),
    )
    atom = server.add(
        "/atom.xml",
        (ROOT / "tests/fixtures/atom10.xml").read_bytes(),
        content_type="application/atom+xml",
    )
    page = f'<html><head><link rel="alternate" type="application/atom+xml" title="Atom" href="/atom.xml"><link rel="alternate" type="application/rss+xml" href="{feed}"></head><body>Hi</body></html>'
    server.add("/page", page, content_type="text/html")
    server.add("/plain", "<html><body>No feeds here</body></html>", content_type="text/html")
    server.add("/missing", "", status=404)
    config = write_config(
        tmp_path,
        '# editors\' note: keep this\n[[sources]]\nname = "first"\nurl = "https://first.example/feed"\n[[feeds]]\nname = "all"\ntitle = "All"\nsources = ["first"]\n',
    )

    added = run_cli(
        "--config", str(config), "sources", "add", feed, "--tags", "crypto,ai", "--language", "fr"
    )
    assert added.returncode == 0, added.stderr
    assert "title:  Example News" in added.stdout and "format: rss20" in added.stdout
    assert "items:  2" in added.stdout and "newest: Newest story" in added.stdout
    data = tomllib.loads(config.read_text())
    assert data["sources"][-1] == {
        "name": "example-news",
        "url": feed,
        "title": "Example News",
        "tags": ["crypto", "ai"],
        "language": "fr",
    }
    assert "# editors' note: keep this" in config.read_text()

    via_page = run_cli(
        "--config", str(config), "sources", "add", server.url("/page"), "--name", "atom-one"
    )
    assert via_page.returncode == 0, via_page.stderr
    assert f"found the feed {atom} on the page" in via_page.stdout
    assert tomllib.loads(config.read_text())["sources"][-1]["url"] == atom

    for args, reason in (
        ([feed], "already a source"),
        ([server.url("/plain")], "announces no feed"),
        ([server.url("/missing")], "not a working feed (http_404"),
        ([server.url("/missing"), "--name", "first"], "already named 'first'"),
    ):
        before = config.read_text()
        refused = run_cli("--config", str(config), "sources", "add", *args)
        assert refused.returncode == 1 and reason in refused.stderr, refused.stderr
        assert config.read_text() == before

    assert run_cli("--config", str(config), "check").returncode == 0
    removed = run_cli("--config", str(config), "sources", "remove", "example-news")
    assert removed.returncode == 0 and "example-news" not in config.read_text()
    assert run_cli("--config", str(config), "sources", "remove", "nope").returncode == 1
    in_use = run_cli("--config", str(config), "sources", "remove", "first")
    assert in_use.returncode == 2 and "unknown source 'first'" in in_use.stderr
    assert 'name = "first"' in config.read_text()


def test_preview_shows_what_an_edit_would_change(server: FeedServer, tmp_path):
    url = server.add(
        "/a.rss",
        rss(
            [
                {
                    "title": "Bitcoin rallies",
                    "guid": "1",
                    "link": "https://x.example/1",
                    "date": NOW,
                },
                {
                    "title": "OpenAI ships a model",
                    "guid": "2",
                    "link": "https://x.example/2",
                    "date": NOW,
                },
                {
                    "title": "Bitcoin and AI agents",
                    "guid": "3",
                    "link": "https://x.example/3",
                    "date": NOW,
                },
            ],
            title="Src",
        ),
    )
    body = (
        f'[[sources]]\nname = "a"\nurl = "{url}"\ntitle = "Src"\n'
        '[tags.crypto]\nkeywords = ["bitcoin"]\n[tags.ai]\nkeywords = ["AI", "OpenAI"]\n'
        '[[feeds]]\nname = "crypto"\ntitle = "Crypto"\nany_tags = ["crypto"]\n'
        '[[feeds]]\nname = "ai"\ntitle = "AI"\nany_tags = ["ai"]\n'
        '[[feeds]]\nname = "old"\ntitle = "Old"\nany_tags = ["ai"]\n'
    )
    config = write_config(tmp_path, body)
    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    edited = tmp_path / "edited.toml"
    edited.write_text(
        config.read_text()
        .replace('keywords = ["AI", "OpenAI"]', 'keywords = ["OpenAI"]')
        .replace('[[feeds]]\nname = "old"\ntitle = "Old"\nany_tags = ["ai"]\n', "")
        + '[[feeds]]\nname = "both"\ntitle = "Both"\nall_tags = ["ai", "crypto"]\n'
    )
    result = run_cli("--config", str(config), "preview", "--against", str(edited))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "crypto: unchanged" in out
    assert "ai: changed (2 -> 1 items)" in out and "  - Bitcoin and AI agents (Src)" in out
    assert "both: created" in out
    assert "old: removed" in out
    assert "ai: +0 items, -1 items" in out
    as_json = json.loads(
        run_cli("--config", str(config), "preview", "--against", str(edited), "--json").stdout
    )
    assert {f["name"]: f["status"] for f in as_json["feeds"]} == {
        "crypto": "unchanged",
        "ai": "changed",
        "both": "created",
        "old": "removed",
    }
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{edited}, against what {config} published: 4 feeds: "), summary
    same = run_cli("--config", str(config), "preview")
    assert same.stdout.strip().endswith(f"{config}: 3 feeds: 3 unchanged")
    edited.write_text(
        edited.read_text() + '[[feeds]]\nname = "bad"\ntitle = "Bad"\nany_tags = ["nope"]\n'
    )
    invalid = run_cli("--config", str(config), "preview", "--against", str(edited))
    assert invalid.returncode == 2 and "unknown tag 'nope'" in invalid.stderr


def test_editors_remaining_gaps(server: FeedServer, tmp_path):
    """sources add checks what it can before the network; explain takes the published id
    and the other scheme or slash of a link (issue 16, item 7)."""
    url = server.add(
        "/a.rss", rss([{"title": "Bitcoin one", "link": "http://n.example/story/", "guid": "1"}])
    )
    config = write_config(
        tmp_path,
        f'[[sources]]\nname = "a"\nurl = "{url}"\n[tags.crypto]\nkeywords = ["bitcoin"]\n'
        '[[feeds]]\nname = "all"\ntitle = "All"\n',
    )
    before = len(server.requests)
    bad = run_cli("--config", str(config), "sources", "add", "not-a-url")
    assert bad.returncode == 2 and "'not-a-url' is not an http(s) URL" in bad.stderr
    typo = run_cli("--config", str(config), "sources", "add", url + "?x", "--tags", "crpyto")
    assert typo.returncode == 2 and "(did you mean 'crypto'?)" in typo.stderr
    name = run_cli("--config", str(config), "sources", "add", url + "?x", "--name", "Bad Name")
    assert name.returncode == 2 and "--name 'Bad Name'" in name.stderr
    assert len(server.requests) == before  # refused before any request

    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    published = json.loads((tmp_path / "out/all.json").read_text())["items"][0]["id"]
    for given in (published, "https://n.example/story", "http://n.example/story"):
        found = run_cli("--config", str(config), "explain", given)
        assert found.returncode == 0 and "Bitcoin one" in found.stdout, (given, found.stderr)


def test_sources_add_writes_the_entry_after_the_last_source(server: FeedServer, tmp_path):
    """The new entry landed under the next section's comments ("# Topics"), with no blank
    line before [tags.ai]: tomlkit keeps those comments in the last source's table."""
    feed = server.add("/feed.xml", rss([{"title": "Bitcoin", "link": "https://x.example/1"}]))
    shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        shipped.replace("allow_private_networks = false", "allow_private_networks = true")
    )
    added = run_cli(
        "--config", str(config), "sources", "add", feed, "--name", "local", "--tags", "crypto"
    )
    assert added.returncode == 0, added.stderr
    text = config.read_text(encoding="utf-8")
    block = f'[[sources]]\nname = "local"\nurl = "{feed}"\n'
    assert block in text
    after = text[text.index(block) :]
    assert after.index(
        "# ---------------------------------------------------------------- tag rules"
    ) < after.index("[tags.ai]")
    before = text[: text.index(block)]
    assert before.rstrip().endswith('language = "fr"')  # right after the last source
    assert "\n\n[tags.ai]" in text or "\n\n# Topics\n[tags.ai]" in text


def test_tags_says_what_was_named_only_in_passing():
    result = run_cli("--config", str(ROOT / "config.toml"), "tags", "Ex-OpenAI trio raise $45M")
    assert result.returncode == 0, result.stderr
    assert 'in passing       openai: "OpenAI" (not counted: see `passing`)' in result.stdout
    assert "openai  " not in result.stdout.replace("in passing       openai", "")


def test_tags_says_which_rule_an_exclude_vetoed():
    text = "Kraken prices its IPO at $41 a share\nShares jumped as investors piled in."
    result = run_cli("--config", str(ROOT / "config.toml"), "tags", text)
    assert result.returncode == 0, result.stderr
    assert 'vetoed           markets: "IPO" in the title (see `exclude`)' in result.stdout
    assert "funding " in result.stdout and "markets " not in result.stdout


# A dev item of the corpus, reworded: Google is named beside "AI" but is the seller of a
# browser, not the subject. The model trained on 4,240 items scores `google` 0.023, well
# under DISBELIEVES (0.05; the first wording's 0.033 became 0.052 after a retraining). If a
# retraining moves it above, pick another with `aggregator tags`.
CHROME_TITLE = "Perplexity bids $34.5 billion for Google Chrome"
CHROME_TEXT = (
    "AI search startup Perplexity, valued at $18 billion, has offered $34.5 billion in cash "
    "for Chrome, should a US court force Google to sell its browser. Investors have agreed to "
    "fund the bid, it said."
)


def test_explain_says_which_theme_the_topic_model_doubted(server: FeedServer, tmp_path):
    item = {"title": CHROME_TITLE, "link": "https://tech.example/chrome", "guid": "c-1",
            "description": CHROME_TEXT}  # fmt: skip
    url = server.add("/tech.rss", rss([item], title="Tech"))
    body = (
        f'[[sources]]\nname = "tech"\nurl = "{url}"\n'
        '[tags.ai]\nkeywords = ["AI"]\n[tags.google]\nkeywords = ["Google"]\n'
        '[[feeds]]\nname = "google"\ntitle = "Google"\nany_tags = ["google"]\n'
    )
    config = write_config(tmp_path, body)
    assert run_cli("--config", str(config), "run", "--once", cwd=tmp_path).returncode == 0
    explained = run_cli("--config", str(config), "explain", item["link"], cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr
    assert "  ai: keyword" in explained.stdout and "  google:" not in explained.stdout
    assert "  doubted (the rules found it, the topic model finds it unlikely" in explained.stdout
    assert "): google 0.0" in explained.stdout
    # the scores of the text the tagger read: title and summary, long enough to judge
    assert "  topics:    ai 0." in explained.stdout and "does not judge" not in explained.stdout


def test_tags_says_which_theme_the_topic_model_doubted():
    text = f"{CHROME_TITLE}\n{CHROME_TEXT}"
    result = run_cli("--config", str(ROOT / "config.toml"), "tags", text)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("doubted"))
    assert line.startswith("doubted          google 0.0") and "topic model" in line
    assert "\ngoogle " not in result.stdout and "does not judge" not in result.stdout
    # a headline alone is too short for the model to judge a theme: `tags` says so
    short = run_cli("--config", str(ROOT / "config.toml"), "tags", CHROME_TITLE)
    assert "; under 30 words it does not judge the themes)" in short.stdout
    assert "doubted" not in short.stdout


def test_check_reads_further_back_only_when_the_newest_items_leave_a_warning_possible(tmp_path):
    """Issue 20: `check` on a store of 10,000 items spent 40 ms of its 144 reading the
    newest 5,000. It reads FIRST_LOOK, and READ_AT_MOST only when those leave a feed empty
    or a keyword in capitals written only otherwise."""
    from aggregator.cli.advice import look_at
    from aggregator.config.load import load
    from aggregator.model import CopyMeta

    body = (
        '[[sources]]\nname = "a"\nurl = "https://a.example/feed"\n'
        '[tags.crypto]\nkeywords = ["bitcoin", "ETF"]\n'
        '[[feeds]]\nname = "crypto"\ntitle = "Crypto"\nany_tags = ["crypto"]\n'
    )
    config = load(write_config(tmp_path, body))
    copies = [CopyMeta("u1", "u1", "a", "en", datetime.now(UTC), frozenset({"crypto"}))]
    assert not look_at(config, copies, ["Bitcoin ETF filing"]).worth_more()
    assert not look_at(config, copies, ["Bitcoin rallies"]).worth_more()  # never written
    assert look_at(config, copies, ["Bitcoin etf filing"]).worth_more()  # only otherwise
    assert look_at(config, [], ["Bitcoin ETF filing"]).worth_more()  # the feed is empty
    german = load(
        write_config(tmp_path, body + '[[feeds]]\nname = "de"\ntitle = "De"\nlanguages = ["de"]\n')
    )
    assert look_at(german, copies, ["Bitcoin ETF filing"]).worth_more()


def test_check_and_preview_read_only_the_newest_stored_items(server: FeedServer, tmp_path):
    """Issue 21, item 3: with 400,000 stored items `check` took 25 s and 920 MB, `preview`
    29 s and 1.1 GB. Both read the newest READ_AT_MOST items and say so."""
    from dataclasses import replace
    from datetime import timedelta

    from aggregator.cli.advice import READ_AT_MOST
    from aggregator.storage.sqlite import Store

    url = server.add(
        "/a.rss", rss([{"title": "Bitcoin rallies", "guid": "1", "link": "https://x.example/1"}])
    )
    body = (
        f'[[sources]]\nname = "a"\nurl = "{url}"\n[tags.crypto]\nkeywords = ["bitcoin"]\n'
        '[[feeds]]\nname = "crypto"\ntitle = "Crypto"\nany_tags = ["crypto"]\n'
        '[[feeds]]\nname = "none"\ntitle = "None"\nany_tags = ["crypto"]\nlanguages = ["de"]\n'
    )
    config = write_config(tmp_path, body)
    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    store = Store(tmp_path / "agg.db")
    try:
        (first,) = store.items()
        with store.transaction():
            for n in range(READ_AT_MOST + 500):
                store.insert_item(
                    replace(
                        first,
                        key=f"k{n}",
                        uid=f"u{n}",
                        link=f"https://x.example/n{n}",
                        canonical=f"https://x.example/n{n}",
                        title=f"Bitcoin item {n}",
                        published=first.published - timedelta(minutes=n),
                    ),
                    first.published,
                )
        stored = store.count_items()
    finally:
        store.close()
    check = run_cli("--config", str(config), "check")
    assert check.returncode == 0, check.stderr
    assert (
        f"none of the newest {READ_AT_MOST} stored items (of {stored}) matches it" in check.stdout
    )
    preview = run_cli("--config", str(config), "preview")
    assert preview.returncode == 0, preview.stderr
    last = preview.stdout.strip().splitlines()[-1]
    assert last.endswith(f"(from the newest {READ_AT_MOST} of {stored} stored items)"), last
    as_json = json.loads(run_cli("--config", str(config), "preview", "--json").stdout)
    assert (as_json["items_read"], as_json["items_stored"]) == (READ_AT_MOST, stored)
