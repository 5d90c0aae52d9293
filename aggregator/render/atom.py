"""Atom 1.0 bytes with feedgen: HTML content typed as html, ids and dates stable."""

from __future__ import annotations

from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator.render import FeedDoc
from aggregator.render.rss import GENERATOR

A = "{http://www.w3.org/2005/Atom}"


def render_atom(doc: FeedDoc) -> bytes:
    fg = FeedGenerator()
    fg.id(doc.id)
    fg.title(doc.title)
    fg.subtitle(doc.description)
    fg.link(href=doc.home_url, rel="alternate", type="text/html")
    fg.link(href=doc.url("atom"), rel="self", type="application/atom+xml")
    if doc.hub:
        fg.link(href=doc.hub, rel="hub")
    fg.author(name=doc.title)
    if doc.language:
        fg.language(doc.language)
    fg.generator(GENERATOR)
    fg.updated(doc.updated)
    for e in doc.entries:
        fe = fg.add_entry(order="append")
        fe.id(e.id)
        fe.title(e.title)
        if e.link:
            fe.link(href=e.link, rel="alternate", type="text/html")
        if doc.content == "full" or not e.link:  # an entry needs a link or a content
            fe.content(e.html, type="html")
        else:
            fe.summary(e.html, type="html")
        fe.published(e.published)
        fe.updated(e.updated)
        for author in e.authors:
            fe.author(name=author)
        for tag in e.tags:
            fe.category(term=tag)
    return _with_sources(fg.atom_str(pretty=True), doc)


def _with_sources(data: bytes, doc: FeedDoc) -> bytes:
    """Add each entry's atom:source: feedgen's lacks the id and updated validators want."""
    if not any(e.source_feed for e in doc.entries):
        return data
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    for node, e in zip(root.iterfind(f"{A}entry"), doc.entries, strict=True):
        if not (e.source_feed and e.source_title):
            continue
        source = etree.SubElement(node, f"{A}source")
        etree.SubElement(source, f"{A}id").text = e.source_feed
        etree.SubElement(source, f"{A}title").text = e.source_title
        etree.SubElement(source, f"{A}link", rel="self", href=e.source_feed)
        if e.source_home:
            etree.SubElement(
                source, f"{A}link", rel="alternate", type="text/html", href=e.source_home
            )
        etree.SubElement(source, f"{A}updated").text = e.updated.isoformat()
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
