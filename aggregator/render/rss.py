"""RSS 2.0 bytes with feedgen; every date comes from the items (see design/pitfalls.md)."""

from __future__ import annotations

from feedgen.feed import FeedGenerator

from aggregator.render import FeedDoc

GENERATOR = "aggregator"


def render_rss(doc: FeedDoc) -> bytes:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.title(doc.title)
    fg.link(href=doc.url("rss"), rel="self", type="application/rss+xml")
    if doc.hub:
        fg.link(href=doc.hub, rel="hub")
    fg.link(href=doc.home_url, rel="alternate")  # feedgen's RSS <link> is the last one set
    fg.description(doc.description)
    if doc.language:
        fg.language(doc.language)
    fg.generator(GENERATOR)
    fg.lastBuildDate(doc.updated)
    fg.pubDate(doc.updated)
    for e in doc.entries:
        fe = fg.add_entry(order="append")
        fe.title(e.title)
        if e.link:
            fe.link(href=e.link)
        fe.guid(e.id, permalink=False)
        fe.description(e.html)
        if doc.content == "full":
            fe.content(e.html, type="CDATA")
        fe.published(e.published)
        fe.updated(e.updated)
        for tag in e.tags:
            fe.category(term=tag)
        if e.source_feed and e.source_title:
            fe.source(url=e.source_feed, title=e.source_title)
        for author in e.authors:
            fe.dc.dc_creator(author)
    return fg.rss_str(pretty=True)
