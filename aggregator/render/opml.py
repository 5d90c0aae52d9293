"""OPML 2.0: the sources (sources.opml, `sources export`) and the curated feeds (feeds.opml)."""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

from aggregator.render import FeedDoc
from aggregator.render.index import SourceRow


def _opml(title: str, outlines: Iterable[str]) -> bytes:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{_text(title)}</title></head>",
        "  <body>",
        *(f"    {o}" for o in outlines),
        "  </body>",
        "</opml>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _text(value: str) -> str:
    return quoteattr(value)[1:-1]


def _outline(text: str, xml_url: str, html_url: str = "", language: str = "") -> str:
    attrs = [
        f"text={quoteattr(text)}",
        f"title={quoteattr(text)}",
        'type="rss"',
        f"xmlUrl={quoteattr(xml_url)}",
    ]
    if html_url:
        attrs.append(f"htmlUrl={quoteattr(html_url)}")
    if language:
        attrs.append(f"language={quoteattr(language)}")
    return f"<outline {' '.join(attrs)}/>"


def render_sources_opml(title: str, sources: Iterable[SourceRow]) -> bytes:
    return _opml(title, (_outline(s.title, s.url, s.home, s.language) for s in sources))


def render_feeds_opml(title: str, docs: Iterable[FeedDoc]) -> bytes:
    return _opml(title, (_outline(d.title, d.url("rss"), d.home_url, d.language) for d in docs))
