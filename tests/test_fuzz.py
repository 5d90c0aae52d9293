"""Fuzzing: arbitrary bytes and arbitrary feed structures through parse, normalize, tag and
publish. Every input yields a ParseError or well-formed RSS, Atom and JSON, in bounded time."""

from __future__ import annotations

import html
import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator.errors import ParseError
from aggregator.model import (
    Config,
    CuratedFeed,
    Dedupe,
    Settings,
    Source,
    TagRule,
)
from aggregator.normalize import normalize_feed
from aggregator.parse.feed import parse
from aggregator.render import prepare
from aggregator.render.atom import render_atom
from aggregator.render.jsonfeed import render_json
from aggregator.render.rss import render_rss
from aggregator.select import group, select
from aggregator.tagging import Tagger

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
SOURCE = Source(name="fuzz", url="https://fuzz.example/feed", title="Fuzz")
CONFIG = Config(
    path=Path("config.toml"),
    settings=Settings(database=Path("x.db"), output_dir=Path("out")),
    disclaimers={"en": "Not advice.", "fr": "Pas un conseil."},
    default_language="en",
    dedupe=Dedupe(),
    sources=(SOURCE,),
    tags=(
        TagRule("ai", keywords=("AI", "IA")),
        TagRule("crypto", keywords=("bitcoin",), patterns=(r"\bBTC\b",)),
    ),
    feeds=(CuratedFeed(name="all", title="All"),),
)
TAGGER = Tagger(CONFIG.tags, tuple(CONFIG.disclaimers.values()))
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")),
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow],
)


def publish_all(body: bytes, content_type: str = "application/rss+xml") -> None:
    """The whole pure path; asserts the three outputs are well-formed."""
    try:
        parsed = parse(body, SOURCE.url, content_type)
    except ParseError:
        return
    items = [
        replace(i, tags=TAGGER.tag(i, SOURCE.tags)) for i in normalize_feed(parsed, SOURCE, NOW)
    ]
    stories = group(items)
    chosen = select(stories, CONFIG.feeds[0], {SOURCE.name: SOURCE}, "en")
    doc = prepare(CONFIG.feeds[0], chosen, CONFIG, {}, {})
    etree.fromstring(render_rss(doc), STRICT)
    etree.fromstring(render_atom(doc), STRICT)
    json.loads(render_json(doc))


@FUZZ
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(body):
    publish_all(body)
    publish_all(body, "application/json")


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
markup = st.one_of(
    text,
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "&#106;avascript:alert(1)",
            "<a href='javascript:x'>a</a>",
            "]]>",
            "<![CDATA[x]]>",
            "\x00\x0b\ufffe",
            "&amp;amp;",
            "\u0085\u0092",
            "<svg><script>1</script></svg>",
            "<p>BTC to the moon</p>",
            "l'IA",
        ]
    ),
)
entry = st.fixed_dictionaries(
    {
        "title": markup,
        "link": st.one_of(
            st.just(""),
            st.sampled_from(
                [
                    "https://x.example/a?utm_source=1",
                    "javascript:alert(1)",
                    "/relative",
                    "https://u:p@x.example/",
                ]
            ),
            text,
        ),
        "guid": st.one_of(st.just(""), text),
        "date": st.sampled_from(
            [
                "",
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "Mon, 23 Nov 2026 10:00:00 GMT",
                "garbage",
                "Sat, 01 Jan 3000 00:00:00 GMT",
            ]
        ),
        "description": markup,
        "category": text,
    }
)


def build_rss(entries: list[dict], language: str) -> bytes:
    def field(tag: str, value: str) -> str:
        return f"<{tag}>{html.escape(value)}</{tag}>" if value else ""

    items = "".join(
        "<item>"
        + field("title", e["title"])
        + field("link", e["link"])
        + field("guid", e["guid"])
        + field("pubDate", e["date"])
        + field("description", e["description"])
        + field("category", e["category"])
        + "</item>"
        for e in entries
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>F</title>'
        f"<language>{html.escape(language)}</language>{items}</channel></rss>"
    ).encode("utf-8", "surrogatepass")


@FUZZ
@given(st.lists(entry, max_size=8), st.sampled_from(["en", "fr-FR", "", "xx-YY-zz", "<b>"]))
def test_arbitrary_feed_structures(entries, language):
    publish_all(build_rss(entries, language))


@FUZZ
@given(st.lists(entry, max_size=6))
def test_arbitrary_json_feeds(entries):
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {
                "id": e["guid"],
                "url": e["link"],
                "title": e["title"],
                "content_html": e["description"],
                "date_published": e["date"],
                "tags": [e["category"]],
            }
            for e in entries
        ],
    }
    publish_all(json.dumps(doc).encode(), "application/feed+json")
