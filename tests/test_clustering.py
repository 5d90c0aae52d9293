"""Story clustering: near-duplicates across sources are published once, explained, measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html import escape

from cluster_eval import evaluate
from conftest import ROOT, FeedServer, rss, run_cli, write_config

from aggregator.dedupe.similarity import (
    KEYS_VERSION,
    compare,
    fingerprint,
    index_keys,
    index_keys_many,
    tokens,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def same(a: tuple[str, str], b: tuple[str, str], threshold: float = 0.8) -> bool:
    return compare(fingerprint(*a), fingerprint(*b), threshold).same


def test_quality_on_the_labelled_stories():
    result = evaluate()
    assert result["items"] >= 60
    assert result["precision"] == 1.0, result["wrong_merges"]
    assert result["recall"] >= 0.9, result["missed"]


def test_numbers_and_names_keep_stories_apart():
    lead = (
        "Bitcoin moved sharply on Monday as traders weighed record inflows into spot "
        "exchange-traded funds against expectations of slower interest rate cuts, data showed."
    )
    assert not same(("SEC approves a Solana ETF", ""), ("SEC delays an XRP ETF", ""))
    assert not same(("Bitcoin tops $120,000", lead), ("Bitcoin falls below $100,000", lead))
    assert same(("Bitcoin tops $120,000", lead), ("Bitcoin breaks $120K barrier", lead))
    template = "Binance will list {0} ({1}) and open trading for the {1}/USDT and {1}/BTC pairs at 10:00 UTC on Friday. Users can now deposit {1} in preparation for trading."
    assert not same(
        ("Binance Will List Aethir (ATH)", template.format("Aethir", "ATH")),
        ("Binance Will List Walrus (WAL)", template.format("Walrus", "WAL")),
    )


def test_tokens_fold_accents_and_canonicalize_amounts():
    assert tokens("Débauchage chez OpenAI") == ["debauchage", "openai"]
    assert tokens("$120,000") == tokens("120 000") == ["#120000"]
    assert tokens("40 billion") == tokens("40 milliards") == ["#40000000000"]
    assert tokens("1,5 %") != tokens("15 %")


def test_index_keys_are_the_same_in_every_process():
    fp = fingerprint(
        "Bitcoin tops $120,000",
        "Bitcoin rose above $120,000 on Monday for the first time in its history, extending a rally fueled by record inflows into funds.",
    )
    code = (
        "from aggregator.dedupe.similarity import fingerprint, index_keys;"
        "print(index_keys(fingerprint('Bitcoin tops $120,000', 'Bitcoin rose above $120,000 on "
        "Monday for the first time in its history, extending a rally fueled by record inflows "
        "into funds.')))"
    )
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        assert out.stdout.strip() == str(index_keys(fp))


def test_index_keys_are_those_stored_by_this_key_version():
    """Keys already stored must keep matching: a change of the keys needs a new
    KEYS_VERSION (the store then rebuilds them). Values computed by version 4 one item
    at a time; a document's items are now keyed together, in any grouping."""
    assert KEYS_VERSION == "4"
    long = fingerprint(
        "Bitcoin tops $120,000 as ETF inflows surge",
        "Bitcoin rose above $120,000 on Tuesday for the first time, as exchange-traded funds "
        "drew record inflows and traders bet on further gains before the end of the year, "
        "according to market data compiled by analysts.",
    )
    short = fingerprint("Short one here", "Only five words in lead")
    expected = {
        long: [1900574527, 525660803, 772422419, 893616574, 878906731, 1189294984, 1047877500,
               92999120, 530394235, 1194432300, 571372878, 965167547, 2084288840, 1799780077,
               2092999039, 1768254340, 1608154068, 903007563, 141053979, 1818471173, 528407647,
               353858560, 58153000],
        short: [133451127, 58818658, 1000289780, 872114518, 1533134480, 1590913660, 968675177,
                1099861350, 1731155420, 170294478, 238587796, 2044076797, 168835673, 1812381840],
    }  # fmt: skip
    none = fingerprint("Two words", "too short")
    assert index_keys(long) == expected[long] and index_keys(short) == expected[short]
    together = index_keys_many([short, none, long, short])
    assert together == [expected[short], [], expected[long], expected[short]]


WIRE_LEAD = (
    "Meta Platforms has hired four senior researchers from OpenAI to join its new "
    "superintelligence laboratory, Chief Executive Mark Zuckerberg personally recruiting "
    "several of them, according to people familiar with the matter."
)
TAGS = """
[tags.ai]
keywords = ["OpenAI", "superintelligence"]
[tags.talent]
keywords = ["poaches", "hired"]
[tags.meta]
keywords = ["Meta", "Zuckerberg"]
"""
FEEDS = """
[[feeds]]
name = "all"
title = "Everything"
"""


def _src(name: str, url: str, priority: int = 0) -> str:
    return f'[[sources]]\nname = "{name}"\nurl = "{url}"\npriority = {priority}\ntitle = "{name.title()}"\n'


def test_syndicated_copies_are_published_once_with_the_others_listed(server: FeedServer, tmp_path):
    wire = {
        "title": "Meta hires four senior OpenAI researchers",
        "link": "https://wire.example/meta?utm_source=rss",
        "guid": "w1",
        "date": NOW - timedelta(hours=3),
        "description": WIRE_LEAD,
    }
    blog = {
        "title": "Zuckerberg personally poaches OpenAI researchers",
        "link": "https://blog.example/zuck",
        "guid": "b1",
        "date": NOW - timedelta(hours=2),
        "description": WIRE_LEAD + " OpenAI did not comment.",
    }
    other = {
        "title": "Meta releases Llama 4",
        "link": "https://blog.example/llama",
        "guid": "b2",
        "date": NOW - timedelta(hours=1),
        "description": "Meta Platforms on Saturday released Llama 4, a new family of open-weight models that it says can handle a context window of up to 10 million tokens.",
    }
    server.add("/wire.rss", rss([wire], title="Wire"))
    server.add("/blog.rss", rss([blog, other], title="Blog"))
    server.add("/late.rss", rss([], title="Late"))
    config = write_config(
        tmp_path,
        _src("wire", server.url("/wire.rss"), priority=1)
        + _src("blog", server.url("/blog.rss"))
        + _src("late", server.url("/late.rss"))
        + TAGS
        + FEEDS,
    )
    first = run_cli("--config", str(config), "run", "--once", "--all")
    assert first.returncode == 0, first.stderr
    items = json.loads((tmp_path / "out/all.json").read_text())["items"]
    assert sorted(i["title"] for i in items) == [
        "Meta hires four senior OpenAI researchers",
        "Meta releases Llama 4",
    ]
    story = next(i for i in items if i["title"].startswith("Meta hires"))
    assert story["_source"]["title"] == "Wire"  # priority 1 stands for the story
    assert set(story["tags"]) == {"ai", "meta", "talent"}  # "poaches" only in the blog's title
    html = story["content_html"]
    also = html.index("Also reported by:")
    assert also < html.index("Not investment advice")
    assert (
        '<a href="https://blog.example/zuck">Zuckerberg personally poaches OpenAI researchers</a> (Blog)'
        in html
    )
    assert (
        "Also reported by:\n- Zuckerberg personally poaches OpenAI researchers (Blog) https://blog.example/zuck"
        in story["content_text"]
    )

    # a copy arriving later joins the story: same id, no new item
    late = {
        "title": "OpenAI loses four researchers to Meta",
        "link": "https://late.example/x",
        "guid": "l1",
        "date": NOW - timedelta(minutes=30),
        "description": WIRE_LEAD,
    }
    server.add("/late.rss", rss([late], title="Late"))
    second = run_cli("--config", str(config), "run", "--once", "--all")
    assert second.returncode == 0
    late_row = next(line for line in second.stdout.splitlines() if line.startswith("late "))
    assert late_row.split()[2:5] == ["0", "0", "1"]  # new, updated, duplicate
    again = json.loads((tmp_path / "out/all.json").read_text())["items"]
    assert len(again) == 2
    story2 = next(i for i in again if i["id"] == story["id"])
    assert story2["title"] == story["title"]  # the stand-in does not flip
    assert "OpenAI loses four researchers to Meta" in story2["content_html"]

    explained = run_cli(
        "--config", str(config), "explain", "https://blog.example/zuck?utm_medium=x#c"
    )
    assert explained.returncode == 0, explained.stderr
    out = explained.stdout
    assert "Story: 3 copies" in out
    assert "joined: lead overlap, similarity" in out
    assert "Stands for the story: wire (highest source priority (1 over 0))" in out
    assert 'talent: keyword "poaches"' in out
    unknown = run_cli("--config", str(config), "explain", "https://nowhere.example/")
    assert unknown.returncode == 1 and "unknown" in unknown.stderr


def test_same_outlet_items_are_never_merged(server: FeedServer, tmp_path):
    a = {
        "title": "Meta hires four senior OpenAI researchers",
        "link": "https://x.example/1",
        "guid": "1",
        "date": NOW - timedelta(hours=2),
        "description": WIRE_LEAD,
    }
    b = {
        "title": "Meta hires OpenAI researchers (update)",
        "link": "https://x.example/2",
        "guid": "2",
        "date": NOW - timedelta(hours=1),
        "description": WIRE_LEAD,
    }
    server.add("/x.rss", rss([a, b]))
    config = write_config(tmp_path, _src("x", server.url("/x.rss")) + TAGS + FEEDS)
    assert run_cli("--config", str(config), "run", "--once").returncode == 0
    assert len(json.loads((tmp_path / "out/all.json").read_text())["items"]) == 2


def test_the_index_is_rebuilt_when_the_keys_change(tmp_path):
    """A database written by a version with other keys: its items are re-indexed, so the
    next copy still finds them (and without the rebuild it would not)."""
    from pathlib import Path

    from aggregator.ingest.retag import reindex_if_keys_changed
    from aggregator.ingest.stories import store_items
    from aggregator.model import Config, Dedupe, Item, Settings
    from aggregator.storage.sqlite import Store

    lead = (
        "Nvidia said on Wednesday it would invest up to 5 billion dollars in a new data centre "
        "campus in northern France, its largest commitment in Europe so far, as demand for "
        "chips to train artificial intelligence models keeps outpacing supply."
    )

    def item(source: str, n: int, title: str, text: str) -> Item:
        return Item(
            source=source, key=f"k{n}", uid=f"urn:{source}:{n}", link=f"https://{source}.example/{n}",
            canonical=f"https://{source}.example/{n}", title=title, summary_html=escape(text),
            content_html="", published=NOW, updated=NOW,
            content_hash=str(n),
        )  # fmt: skip

    policy = Dedupe(window=72 * 3600, similarity=0.8)
    config = Config(
        path=Path("config.toml"), settings=Settings(database=tmp_path / "x.db", output_dir=tmp_path),
        disclaimers={}, default_language="en", dedupe=policy, sources=(), tags=(), feeds=(),
    )  # fmt: skip
    outcomes = []
    for rebuild in (True, False):
        store = Store(tmp_path / f"{rebuild}.db")
        assert reindex_if_keys_changed(config, store, NOW) == 0  # a new database: nothing
        with store.transaction():
            wire = item("wire", 1, "Nvidia to invest $5bn in France", lead)
            store_items(store, [wire], now=NOW, cutoff=NOW - timedelta(days=30), near=policy)
            store.db.execute("UPDATE near_keys SET keys = '00000001'")  # of another version
            store.set_meta("near_keys", "0")
        store.close()  # the new version starts
        store = Store(tmp_path / f"{rebuild}.db")
        if rebuild:
            assert reindex_if_keys_changed(config, store, NOW) == 1
        with store.transaction():
            paper = item("paper", 2, "Nvidia plans $5 billion French AI campus", lead)
            cutoff = NOW - timedelta(days=30)
            (intent,) = store_items(store, [paper], now=NOW, cutoff=cutoff, near=policy)
        outcomes.append(intent.kind)
        store.close()
    assert outcomes == ["duplicate", "new"]


def test_a_common_key_does_not_flood_the_comparison(tmp_path):
    """Forty stored items share one key with a new item (a stock phrase); the copy sharing
    all its keys is still among the few compared."""
    from aggregator.dedupe.similarity import MAX_CANDIDATES
    from aggregator.model import Item
    from aggregator.storage.sqlite import Store

    store = Store(tmp_path / "x.db")

    def stored(n: int, keys: list[int]) -> None:
        item = Item(
            source=f"s{n}", key="k", uid=f"urn:{n}", link="", canonical="", title=f"t{n}",
            summary_html="lead", content_html="",
            published=NOW, updated=NOW, story=f"urn:{n}",
        )  # fmt: skip
        rowid = store.insert_item(item, NOW)
        store.add_near_keys([(rowid, keys)])

    hot, own = 7, list(range(100, 119))
    with store.transaction():
        stored(0, [hot, *own])  # the real copy: every key
        for n in range(1, 41):
            stored(n, [hot, 1000 + n])
    found = store.near_candidates([hot, *own], NOW - timedelta(hours=1), MAX_CANDIDATES)
    assert len(found) == MAX_CANDIDATES
    assert "urn:0" in {c.uid for c, _ in found}
    assert len(store.near_candidates([hot], NOW - timedelta(hours=1), 100)) == 41


def test_fingerprints_are_stored_and_read_back():
    from aggregator.dedupe import similarity

    fp = fingerprint("Bitcoin tops $120,000 as ETF inflows surge", "Bitcoin rose to a record. " * 5)
    assert similarity.loads(similarity.dumps(fp)) == fp
    assert similarity.loads("0\x1ea\x1eb\x1e\x1e") is None  # written by another version
