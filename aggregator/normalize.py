"""`ParsedEntry` -> `Item`: stable ids, absolute and canonical links, clean text without
publishers' boilerplate, sane dates."""

from __future__ import annotations

import functools
import hashlib
import sys
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.model import Item, ParsedEntry, ParsedFeed, Source
from aggregator.text.boilerplate import strip_tail
from aggregator.text.sanitize import clean_html, clean_text, html_to_text, plain_title
from aggregator.text.urls import absolute, canonical, is_web_url, unwrap

EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)  # before feeds existed: a broken date
FUTURE_SLACK = timedelta(days=1)
MAX_TITLE = 500
MAX_HTML = 200_000
MAX_FIELD = 200
UNTITLED = "(untitled)"
UID_NAMESPACE = uuid.UUID("6f1c2d8e-3b1a-4c57-9d0e-2a7b5e9f4c10")
_NAMESPACE_BYTES = UID_NAMESPACE.bytes


def item_uid(source: str, key: str) -> str:
    """The public id of an item: the same (source, key) always gives the same id.

    uuid5(UID_NAMESPACE, f"{source}\n{key}") written out (RFC 4122: SHA-1, version 5, the
    RFC's variant): 1.4 us instead of 3.6 for the uuid module's objects."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{source}\n{key}".encode()).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest[:16].hex()
    return f"urn:uuid:{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


@functools.cache
def code_print() -> str:
    """The code `normalize_entry` runs, as a digest: this module and the text toolkit's
    sources, and the versions of the HTML libraries under them. A change to any of them
    changes every entry's print, so no stored item outlives the code that made it
    unnormalized (its entry is normalized again at its next document, as before)."""
    import ada_url
    import lxml
    import nh3

    from aggregator.text import boilerplate, sanitize, urls

    digest = hashlib.blake2b(digest_size=8)
    for module in (sys.modules[__name__], sanitize, boilerplate, urls, ada_url):
        digest.update(Path(str(module.__file__)).read_bytes())
    for library in (nh3, lxml):  # their versions (importlib.metadata's lookup took 24 ms)
        digest.update(str(library.__version__).encode())
    return digest.hexdigest()


def entry_print(entry: ParsedEntry, feed: ParsedFeed, source: Source) -> int:
    """63 bits naming everything `normalize_entry` reads but the clock (which only dates an
    undated entry when first seen), and the code it runs: the same print is the same key
    and content."""
    parts = (
        code_print(),
        source.name,
        source.url,
        source.language,
        feed.language,
        entry.guid,
        entry.link,
        entry.title,
        entry.summary,
        entry.content,
        entry.base,
        entry.published.isoformat() if entry.published else "",
        entry.updated.isoformat() if entry.updated else "",
        "\x1e".join(entry.authors),
        "\x1e".join(entry.categories),
        entry.language,
        "1" if entry.title_is_html else "0",
    )
    digest = hashlib.blake2b(
        "\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") >> 1 or 1  # 0 is "no print" in the store


def normalize_feed(
    parsed: ParsedFeed,
    source: Source,
    now: datetime,
    problems: list[str] | None = None,
    known: Mapping[int, tuple[str, str, float]] | None = None,
    unchanged: list[tuple[str, float]] | None = None,
) -> list[Item]:
    """Every entry of one document; distinct entries sharing a guid keep distinct keys.

    An entry that fails here is dropped, with a line in `problems`: it costs that entry,
    never its neighbours. Each item keeps its entry's `entry_print`. `known` maps the
    prints of stored copies to (key, content hash, published): an entry carrying one is
    that copy unchanged, is not normalized again (most of a changed document's cost) and
    goes to `unchanged` as (key, published); its key is taken first, so that another
    entry sharing its guid is keyed apart as on the pull that stored it."""
    items: list[Item] = []
    seen: dict[str, str] = {}  # key -> content hash of the entry that took it
    fresh: list[tuple[ParsedEntry, int]] = []
    for entry in parsed.entries:
        mark = entry_print(entry, parsed, source)
        copy = known.get(mark) if known else None
        if copy is not None and copy[0] not in seen:
            seen[copy[0]] = copy[1]
            if unchanged is not None:
                unchanged.append((copy[0], copy[2]))
        else:
            fresh.append((entry, mark))
    for entry, mark in fresh:
        try:
            item = normalize_entry(entry, parsed, source, now)
        except Exception as exc:
            if problems is not None:
                problems.append(f"entry dropped: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if item is None:
            continue
        if item.key in seen:
            if seen[item.key] == item.content_hash:
                continue  # the same entry twice in one document
            key = f"{item.key}#{_digest(item.link, item.title)[:12]}"
            if key in seen:
                continue
            item = _rekey(item, key)
        seen[item.key] = item.content_hash
        items.append(replace(item, entry_print=mark))
    return items


def normalize_entry(
    entry: ParsedEntry, feed: ParsedFeed, source: Source, now: datetime
) -> Item | None:
    """One clean item, or None when the entry has nothing to show (no title, link or text)."""
    base = entry.base or source.url
    link = unwrap(absolute(entry.link, base))
    if not is_web_url(link):
        # a guid that is itself a web address (RSS permalinks) stands in for a missing link
        link = unwrap(absolute(entry.guid, "")) if is_web_url(entry.guid.strip()) else ""
    canon = canonical(link) if link else ""
    # a site's disclaimer and footers are no part of the item: never read, never published
    summary_html = strip_tail(clean_html(entry.summary[:MAX_HTML], base))
    content_html = strip_tail(clean_html(entry.content[:MAX_HTML], base))
    title = plain_title(entry.title, markup=entry.title_is_html)[:MAX_TITLE].strip()
    if not title:
        words = (html_to_text(summary_html) or html_to_text(content_html)).split()
        title = " ".join(words[:12]) + ("…" if len(words) > 12 else "")
    if not (title or link):
        return None
    title = title or UNTITLED  # every format needs one; readers show the link anyway
    seen = now.replace(microsecond=0)
    published = _sane(entry.published, now) or _sane(entry.updated, now) or seen
    updated = max(_sane(entry.updated, now) or published, published)
    guid = clean_text(entry.guid)[:1000]
    # Without guid or link, the title and the feed's own date (never the clock) identify it.
    raw_date = entry.published or entry.updated
    key = guid or canon or "hash:" + _digest(title, raw_date.isoformat() if raw_date else "")
    authors = tuple(
        a for a in (clean_text(" ".join(x.split()))[:MAX_FIELD] for x in entry.authors) if a
    )
    categories = tuple(
        dict.fromkeys(
            c for c in (plain_title(x, markup=False)[:MAX_FIELD] for x in entry.categories) if c
        )
    )[:30]
    language = entry.language or feed.language or source.language
    content_hash = _digest(title, link, summary_html, content_html, "|".join(categories))
    uid = item_uid(source.name, key)
    return Item(
        source=source.name,
        key=key,
        uid=uid,
        link=link,
        canonical=canon,
        title=title,
        summary_html=summary_html,
        content_html=content_html,
        published=published,
        updated=updated,
        authors=authors,
        categories=categories,
        language=language,
        content_hash=content_hash,
        story=uid,  # its own story, until it is found to be a copy of another
    )


def newest(items: list[Item], cap: int, problems: list[str] | None = None) -> list[Item]:
    """At most `cap` items, the newest (in document order): one source's 100,000-entry
    document must not add 100,000 items on every pull. Says so in `problems`."""
    if len(items) <= cap:
        return items
    kept = {id(i) for i in sorted(items, key=lambda i: i.published, reverse=True)[:cap]}
    if problems is not None:
        problems.append(
            f"the document holds {len(items)} entries: the newest {cap} taken "
            "([aggregator] max_document_items)"
        )
    return [i for i in items if id(i) in kept]


def lead_text(item: Item) -> str:
    """The text near-duplicate detection compares: the summary, else the content."""
    return item.summary_text or item.content_text


def feed_title(parsed: ParsedFeed) -> str:
    """The document's own title as plain text (shown when a source sets no `title`)."""
    return plain_title(parsed.title, markup=parsed.title_is_html)[:MAX_TITLE]


def feed_link(parsed: ParsedFeed, url: str) -> str:
    """The document's home page, when it is a web link."""
    link = absolute(parsed.link, url)
    return link if is_web_url(link) else ""


def _rekey(item: Item, key: str) -> Item:
    uid = item_uid(item.source, key)
    return replace(item, key=key, uid=uid, story=uid)


def _sane(value: datetime | None, now: datetime) -> datetime | None:
    """A date a reader can trust: None before 1995 or more than a day in the future."""
    if value is None or value < EARLIEST or value > now + FUTURE_SLACK:
        return None
    return value.astimezone(UTC).replace(microsecond=0)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
