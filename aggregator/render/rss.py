"""RSS 2.0 bytes with feedgen; every date comes from the items (feedgen would stamp the
time of rendering, and the bytes would change at every pass)."""

from __future__ import annotations

from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator.render import FeedDoc

GENERATOR = "aggregator"
ATOM = "{http://www.w3.org/2005/Atom}"


def render_rss(doc: FeedDoc) -> bytes:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.title(doc.title)
    fg.link(href=doc.url("rss"), rel="self", type="application/rss+xml")
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
    data = fg.rss_str(pretty=True)
    return _with_hub(data, doc.hub) if doc.hub else data


def _with_hub(data: bytes, hub: str) -> bytes:
    """feedgen writes no rel="hub" link in RSS: add the atom:link WebSub readers look for."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    channel = root.find("channel")
    self_link = None if channel is None else channel.find(f"{ATOM}link[@rel='self']")
    if self_link is None:  # feedgen always writes both; nothing to anchor the hub to
        return data
    self_link.addnext(etree.Element(f"{ATOM}link", href=hub, rel="hub"))
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
