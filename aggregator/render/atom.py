"""Atom 1.0 bytes with feedgen: HTML content typed as html, ids and dates stable."""

from __future__ import annotations

from feedgen.feed import FeedGenerator

from aggregator.render import FeedDoc
from aggregator.render.rss import GENERATOR


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
        if doc.content == "full":
            fe.content(e.html, type="html")
        else:
            fe.summary(e.html, type="html")
        fe.published(e.published)
        fe.updated(e.updated)
        for author in e.authors:
            fe.author(name=author)
        for tag in e.tags:
            fe.category(term=tag)
        if e.source_url and e.source_title:
            fe.source(url=e.source_url, title=e.source_title)
    return fg.atom_str(pretty=True)
