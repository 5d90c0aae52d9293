"""Bytes for the published files. Pure: a `FeedDoc` in, the same bytes out for the same doc.

`prepare()` turns selected stories into a `FeedDoc` (the disclaimer applied, dates from the
items, never the clock); `rss`, `atom` and `jsonfeed` serialize it.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aggregator.model import Config, CuratedFeed
from aggregator.render.disclaimer import disclaimer_for, with_disclaimer_html, with_disclaimer_text
from aggregator.select import Story

EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=UTC)  # an empty feed still needs a stable date
FEED_NAMESPACE = uuid.UUID("0b7d4a52-8f63-4e1e-9a55-5d6c3e0f2a91")


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    link: str
    published: datetime
    updated: datetime
    html: str  # sanitized, ends with the disclaimer
    text: str  # plain, ends with the disclaimer
    summary: str  # plain-text summary for JSON Feed (without disclaimer)
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    language: str
    source_title: str
    source_feed: str  # the source's feed URL (RSS <source url>, Atom source id and self link)
    source_home: str  # the source's home page, when its feed says


@dataclass(frozen=True)
class FeedDoc:
    name: str
    id: str  # stable Atom id, independent of where it is served
    title: str
    description: str  # ends with the disclaimer
    summary: str  # the editors' description alone, for index.html
    base_url: str
    home_url: str
    language: str  # "" when the feed mixes languages
    updated: datetime
    entries: tuple[Entry, ...]
    content: str  # "summary" or "full"
    hub: str = ""

    def url(self, suffix: str) -> str:
        return f"{self.base_url}{self.name}.{suffix}"


def prepare(
    feed: CuratedFeed,
    stories: list[Story[Any]],
    config: Config,
    source_titles: Mapping[str, str],
    source_links: Mapping[str, str],
    empty_since: datetime | None = None,
) -> FeedDoc:
    """The curated feed as a document, every entry carrying its language's disclaimer. An
    empty feed is dated `empty_since` (when it became empty), else EMPTY_FEED_DATE."""
    entries = []
    for story in stories:
        item = story.item
        language = item.language or config.default_language
        disclaimer = disclaimer_for(language, config.disclaimers, config.default_language)
        if feed.content == "full":
            body_html = item.content_html or item.summary_html
            body_text = item.content_text or item.summary_text
        else:
            body_html = item.summary_html or item.content_html
            body_text = item.summary_text or item.content_text
        src = config.source(item.source)
        source_feed = src.url if src else ""
        # other copies, each address once, never the item's own (two outlets may carry
        # one link: a shared wire page)
        seen = {item.canonical or item.link}
        others = []
        for o in story.others:
            link = o.canonical or o.link
            if link not in seen:
                seen.add(link)
                others.append((o.title, link, _source_title(o.source, config, source_titles)))
        if others:
            label = ALSO_REPORTED.get(language.split("-")[0], ALSO_REPORTED["en"])
            body_html = (body_html + "\n" + also_reported_html(label, others)).strip()
            body_text = (body_text + "\n\n" + also_reported_text(label, others)).strip()
        entries.append(
            Entry(
                id=story.id,
                title=item.title,
                link=item.canonical or item.link,
                published=item.published,
                updated=item.updated,
                html=with_disclaimer_html(body_html, disclaimer),
                text=with_disclaimer_text(body_text, disclaimer),
                summary=_first_words(item.summary_text or item.content_text, 60),
                authors=item.authors,
                tags=story.tags,
                language=language,
                source_title=_source_title(item.source, config, source_titles),
                source_feed=source_feed,
                source_home=source_links.get(item.source, ""),
            )
        )
    languages = {e.language for e in entries} | set(feed.languages)
    language = languages.pop() if len(languages) == 1 else ""
    feed_disclaimer = disclaimer_for(
        language or config.default_language, config.disclaimers, config.default_language
    )
    description = " ".join(filter(None, (feed.description or feed.title, feed_disclaimer)))
    updated = max((e.updated for e in entries), default=empty_since or EMPTY_FEED_DATE)
    base = config.settings.base_url
    return FeedDoc(
        name=feed.name,
        id="urn:uuid:" + str(uuid.uuid5(FEED_NAMESPACE, feed.name)),
        title=feed.title,
        description=description,
        summary=feed.description or feed.title,
        base_url=base,
        home_url=base,
        language=language,
        updated=updated,
        entries=tuple(entries),
        content=feed.content,
        hub=config.settings.hub,
    )


ALSO_REPORTED = {
    "en": "Also reported by:",
    "fr": "Également publié par :",
    "de": "Auch berichtet von:",
    "es": "También publicado por:",
    "it": "Pubblicato anche da:",
}


def also_reported_html(label: str, others: list[tuple[str, str, str]]) -> str:
    """The other outlets' copies of a story, linked, as one paragraph."""
    links = []
    for title, link, source in others:
        text = html.escape(title, quote=False)
        anchor = f'<a href="{html.escape(link)}">{text}</a>' if link else text
        links.append(f"{anchor} ({html.escape(source, quote=False)})")
    return f"<p>{html.escape(label, quote=False)} " + "; ".join(links) + "</p>"


def also_reported_text(label: str, others: list[tuple[str, str, str]]) -> str:
    lines = [label] + [f"- {title} ({source}) {link}".rstrip() for title, link, source in others]
    return "\n".join(lines)


def _source_title(name: str, config: Config, titles: Mapping[str, str]) -> str:
    """What readers see as a source's name: its configured title, else the feed's own."""
    src = config.source(name)
    return (src.title if src and src.title else "") or titles.get(name, "") or name


def _first_words(text: str, count: int) -> str:
    words = text.split()
    return " ".join(words[:count]) + ("…" if len(words) > count else "")
