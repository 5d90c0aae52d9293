"""Bytes of a document -> `model.ParsedFeed`.

feed.py  the entry point: the strict fast path first, feedparser when it declines,
         JSON Feed, and the limits a hostile document meets
fast.py  the fast path for well-formed RSS and Atom (about 5x feedparser)
"""
