"""parse + normalize on fixture documents of every supported format."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.model import Source
from aggregator.normalize import UID_NAMESPACE, feed_title, item_uid, normalize_feed
from aggregator.parse.feed import parse

FIX = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def items(name: str, url: str = "https://feed.example/feed", ctype: str = "", **src):
    parsed = parse((FIX / name).read_bytes(), url, ctype)
    return parsed, normalize_feed(parsed, Source(name="s", url=url, **src), NOW)


@pytest.mark.parametrize(
    ("name", "fmt", "title"),
    [
        ("rss091.xml", "rss091n", "Le bitcoin dépasse un seuil symbolique"),
        ("rss10.rdf", "rss10", "GPU shortage eases for AI labs"),
        ("atom03.xml", "atom03", "Ethereum developers schedule an upgrade"),
        ("atom10.xml", "atom10", "OpenAI ships a new model & API"),
        ("feed11.json", "json11", "Solana ETF gets a decision date"),
        ("feed10.json", "json1", "Stablecoin rules in Europe"),
    ],
)
def test_formats(name, fmt, title):
    parsed, its = items(name)
    assert parsed.format.startswith(fmt[:5])
    assert its[0].title == title


def test_atom_links_html_and_language():
    parsed, (first, second) = items("atom10.xml")
    assert first.link == "https://atom.example/blog/posts/new-model?utm_source=feed&id=7#top"
    assert first.canonical == "https://atom.example/blog/posts/new-model?id=7"
    assert '<a href="https://atom.example/docs/api"' in first.content_html
    assert 'src="https://atom.example/blog/img/chart.png"' in first.content_html
    for bad in ("<script", "onclick", "javascript:"):
        assert bad not in first.content_html
    assert first.published == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    assert first.authors == ("Grace",) and first.categories == ("Artificial Intelligence",)
    assert first.language == "en" and second.language == "fr"
    # an untyped Atom summary is text: shown, not interpreted
    assert "&lt;b&gt;pas du HTML&lt;/b&gt;" in second.summary_html
    assert "<b>pas du HTML</b>" in second.summary_text
    assert feed_title(parsed) == "AI & Markets"  # decoded once: "&amp;amp;" is "&amp;" in HTML


def test_json_feed_fields():
    _, (a, b) = items("feed11.json")
    assert a.language == "en" and a.authors == ("Lin",) and a.categories == ("ETF", "Solana")
    assert a.canonical == "https://json.example/solana-etf"
    assert b.content_html == "<p>Line one &amp; &lt;not html&gt;</p><p>Second paragraph.</p>"
    assert b.published == datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def test_rss_language_from_channel_and_missing_dates():
    _, (it,) = items("rss091.xml")
    assert it.language == "fr"
    assert it.published == NOW  # no date: first seen
    assert it.key == "https://oldschool.example/btc-seuil.html"  # no guid: the link


def test_source_language_when_the_feed_says_nothing():
    body = b'<rss version="2.0"><channel><title>t</title><item><title>x</title><link>https://a.example/x</link></item></channel></rss>'
    parsed = parse(body, "https://a.example/feed")
    (it,) = normalize_feed(
        parsed, Source(name="s", url="https://a.example/feed", language="fr"), NOW
    )
    assert it.language == "fr"


def test_bozo_with_entries_is_a_warning():
    parsed, its = items("bozo.xml")
    assert parsed.warning.startswith("malformed document")
    assert [i.title for i in its] == ["Bitcoin & friends rally"]


@pytest.mark.parametrize(
    "body",
    [
        (FIX / "page.html").read_bytes(),
        b"",
        b"{}",
        b'{"version": "https://jsonfeed.org/version/1.1"}',
        b"just text",
        b"/etc/passwd",
    ],
)
def test_not_a_feed(body):
    with pytest.raises(ParseError):
        parse(body, "https://x.example/")


def test_a_path_shaped_body_is_never_opened(tmp_path):
    local = tmp_path / "secret.xml"
    local.write_text('<rss version="2.0"><channel><title>SECRET</title></channel></rss>')
    with pytest.raises(ParseError):
        parse(str(local).encode(), "https://x.example/")


def test_entity_declarations_are_not_expanded():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "' + b"x" * 1000 + b'">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<rss version="2.0"><channel><title>t</title><item><title>&b;&b;&b;</title>'
        b"<link>https://x.example/1</link></item></channel></rss>"
    )
    parsed = parse(bomb, "https://x.example/")
    assert all(len(e.title) < 100 for e in parsed.entries)


def test_text_cleaning_and_dates():
    body = (
        '<rss version="2.0"><channel><title>t</title><language>EN-us</language>'
        "<item><title>Bad \x0b char \x85 and &#x1; ok</title><guid>1</guid>"
        "<link>javascript:alert(1)</link><pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate></item>"
        "<item><title>Future</title><guid>2</guid><pubDate>Sat, 01 Jan 3000 00:00:00 GMT</pubDate></item>"
        "</channel></rss>"
    ).encode()
    parsed = parse(body, "https://x.example/")
    a, b = normalize_feed(parsed, Source(name="s", url="https://x.example/"), NOW)
    assert "\x0b" not in a.title and "\x85" not in a.title
    assert a.link.startswith("https://") and a.language == "en"
    assert a.published == NOW and b.published == NOW  # epoch 0 and year 3000 are not dates


def test_stable_ids():
    _, first = items("atom10.xml")
    _, again = items("atom10.xml")
    assert [i.uid for i in first] == [i.uid for i in again]
    assert all(i.uid.startswith("urn:uuid:") for i in first)
    _, other = items("atom10.xml", url="https://feed.example/feed")
    assert other[0].uid == first[0].uid
    # published ids never change: the RFC 4122 uuid5 of (source, key), written out
    for source, key in [("s", "k"), ("journal-du-coin", "https://jdc.example/?p=1"), ("é", "😀")]:
        expected = uuid.uuid5(UID_NAMESPACE, f"{source}\n{key}")
        assert item_uid(source, key) == f"urn:uuid:{expected}"
    assert item_uid("s", "k") == "urn:uuid:8e6ff4a2-65f1-54e3-bcd6-0659464a9c1f"  # as in 0.1
