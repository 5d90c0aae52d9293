"""The lxml fast path and feedparser give the same normalized items on every fixture."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import rss, seed_item

from aggregator.errors import ParseError
from aggregator.model import Source
from aggregator.normalize import feed_title, normalize_feed
from aggregator.parse.fast import parse_fast
from aggregator.parse.feed import parse

HERE = Path(__file__).parent
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
URL = "https://feed.example/blog/feed.xml"
SOURCE = Source(name="s", url=URL, language="en")


def _generated() -> dict[str, bytes]:
    sys.path.insert(0, str(HERE.parent / "bench"))
    import tempfile

    import pass_bench

    docs = {}
    with tempfile.TemporaryDirectory() as tmp:
        pass_bench.make_feeds(Path(tmp), 4, 20, seed=3)
        for path in sorted(Path(tmp).iterdir()):
            docs[f"bench/{path.name}"] = path.read_bytes()
    docs["seed"] = rss([seed_item()], title="Crypto FR", language="fr-FR").encode()
    docs["helper"] = rss(
        [
            {
                "title": "A <b>bold</b> & plain",
                "link": "relative/path?utm_source=x",
                "guid": "g1",
                "date": NOW - timedelta(hours=1),
                "description": "<p>Hi &amp; bye</p>",
                "categories": ["AI", "IA"],
                "author": "Ann",
            },
            {
                "title": "Caf\u00e9 \u2019q\u2019",
                "guid": "https://feed.example/p/2",
                "description": "plain & text",
            },
            {"title": "Only content", "link": "https://x.example/3", "content": "<p>full</p>"},
        ]
    ).encode()
    return docs


def _fixtures() -> dict[str, bytes]:
    docs = {}
    for folder in (HERE / "fixtures", HERE / "hostile"):
        for path in sorted(folder.iterdir()):
            if path.suffix in (".xml", ".rss", ".atom", ".rdf"):
                docs[f"{folder.name}/{path.name}"] = path.read_bytes()
    return docs | _generated()


DOCS = _fixtures()


@pytest.mark.parametrize("name", sorted(DOCS))
def test_both_paths_agree(name):
    body = DOCS[name]
    try:
        slow = parse(body, URL, "application/rss+xml", fast=False)
    except ParseError:
        slow = None
    fast = parse(body, URL, "application/rss+xml")
    if slow is None:
        return
    assert [i for i in normalize_feed(fast, SOURCE, NOW)] == [
        i for i in normalize_feed(slow, SOURCE, NOW)
    ]
    assert feed_title(fast) == feed_title(slow)
    assert (fast.language, fast.link) == (slow.language, slow.link)


def test_the_fast_path_takes_the_common_feeds():
    taken = [n for n, body in DOCS.items() if parse_fast(body, URL, lambda v: v) is not None]
    assert {"bench/feed0.xml", "seed", "helper", "fixtures/bozo.xml"} - {
        "fixtures/bozo.xml"
    } <= set(taken)
    for refused in (
        "hostile/billion_laughs.xml",
        "hostile/quadratic_blowup.xml",
        "fixtures/bozo.xml",
        "fixtures/atom10.xml",
        "fixtures/rss091.xml",
    ):
        assert refused not in taken, refused
