"""JSON Feed 1.1 bytes (feedgen has none): keys in a fixed order, so bytes are stable."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aggregator.render import FeedDoc


def _date(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def render_json(doc: FeedDoc) -> bytes:
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": doc.title,
        "home_page_url": doc.home_url,
        "feed_url": doc.url("json"),
        "description": doc.description,
        "authors": [{"name": doc.title}],
    }
    if doc.language:
        feed["language"] = doc.language
    if doc.hub:
        feed["hubs"] = [{"type": "WebSub", "url": doc.hub}]
    items = []
    for e in doc.entries:
        item: dict[str, Any] = {"id": e.id}
        if e.link:
            item["url"] = e.link
        item["title"] = e.title
        item["content_html"] = e.html
        item["content_text"] = e.text
        if e.summary:
            item["summary"] = e.summary
        item["date_published"] = _date(e.published)
        item["date_modified"] = _date(e.updated)
        if e.authors:
            item["authors"] = [{"name": a} for a in e.authors]
        if e.tags:
            item["tags"] = list(e.tags)
        item["language"] = e.language
        if e.source_title:
            source = {"title": e.source_title, "feed_url": e.source_feed}
            if e.source_home:
                source["home_page_url"] = e.source_home
            item["_source"] = source
        items.append(item)
    feed["items"] = items
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
