"""Body bytes + final URL -> `ParsedFeed`: feedparser for XML, a small adapter for JSON Feed.

Walls around feedparser: it only ever gets a file object (a `str` or `bytes` that looks
like a path would be opened, a URL fetched); the final URL goes in as content-location so
relative links resolve; DOCTYPEs declaring entities are cut before it sees them (its
lenient parser expands them without bound). Its own sanitizer and URI resolution are off:
`sanitize` does both, after, with an allow-list.

What a source sends costs at most the field or the entry it spoils, never the document:
a date out of range is no date, an entry that cannot be read is dropped (and counted in
the feed's warning), and every string that leaves here is valid Unicode (a lone surrogate,
legal in JSON and spelled `&#xD800;` in XML, becomes U+FFFD).
"""

from __future__ import annotations

import calendar
import html
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import feedparser

from aggregator.errors import ParseError
from aggregator.model import ParsedEntry, ParsedFeed
from aggregator.parse.fast import parse_fast, text_as_html

_DOCTYPE_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[.*?\]\s*>", re.DOTALL | re.IGNORECASE)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_PERSON = 512
_DECLARED = re.compile(rb"""<\?xml[^>]*encoding=["']([A-Za-z0-9_.-]+)["']""")
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
# Numeric character references XML cannot hold and feedparser would choke on (a UTF-16
# surrogate, past U+10FFFF): the candidates, checked one by one in _bad_reference.
_BIG_REFERENCE = re.compile(rb"&#(?:[xX]0*([0-9a-fA-F]{4,})|0*([0-9]{5,}));")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ITEM = re.compile(rb"<item\b.*?</item>", re.DOTALL)
_REAL_DESCRIPTION = re.compile(
    rb"<description\b[^>/]*>\s*[^<\s]|<description\b[^>/]*>\s*<!\[CDATA\[\s*\S"
)
_OTHER_DESCRIPTION = re.compile(
    rb"<(media|dc):description\b[^>]*?(?:/>|>.*?</\1:description>)", re.DOTALL
)
_EMPTY_DESCRIPTION = re.compile(rb"<dc:description\b[^>]*?(?:/>|>\s*</dc:description>)")
_LONG_PERSON = re.compile(
    rb"(<(?:author|dc:creator|itunes:author|managingEditor|webMaster|name|email)\b[^>]*>)"
    rb"([^<]{%d,})" % (MAX_PERSON + 1)
)


def parse(body: bytes, url: str, content_type: str = "", fast: bool = True) -> ParsedFeed:
    """The feed in `body`; ParseError when it holds no feed at all.

    Well-formed RSS 2.0 and Atom 1.0 take the lxml fast path (`parse_fast`); everything
    else, or with `fast=False`, goes through feedparser.
    """
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if "json" in content_type.lower() or head.startswith(b"{"):
        return parse_json_feed(body, url)
    return _parse_xml(body, url, content_type, fast)


def valid_text(text: str) -> str:
    """`text` as valid Unicode: lone surrogates (which no encoder, SQLite's included, takes)
    become U+FFFD. Free for the usual text: one C-speed test."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


_Parsed = TypeVar("_Parsed", ParsedEntry, ParsedFeed)


def _valid_fields(value: _Parsed) -> _Parsed:
    """`value` with every string (and string of a tuple) made `valid_text`."""
    changes: dict[str, Any] = {}
    for f in fields(value):
        old = getattr(value, f.name)
        if isinstance(old, str):
            new: Any = valid_text(old)
        elif isinstance(old, tuple) and all(isinstance(x, str) for x in old):
            new = tuple(map(valid_text, old))
        else:
            continue
        if new != old:
            changes[f.name] = new
    return replace(value, **changes) if changes else value


def _entries(
    raw: Iterable[Any], read: Callable[[Any], ParsedEntry | None]
) -> tuple[tuple[ParsedEntry, ...], str]:
    """Each raw entry read on its own, valid Unicode: one that cannot be read is dropped and
    counted, its neighbours kept. Returns the entries and a warning ("" when none failed)."""
    entries, failed, reason = [], 0, ""
    for one in raw:
        try:
            entry = read(one)
        except Exception as exc:
            failed += 1
            reason = reason or f"{type(exc).__name__}: {exc}"
            continue
        if entry is not None:
            entries.append(_valid_fields(entry))
    warning = (
        f"{failed} unreadable entries dropped ({_short(valid_text(reason))})" if failed else ""
    )
    return tuple(entries), warning


def _repair_utf8(body: bytes, content_type: str) -> bytes:
    """A UTF-8 document with some invalid bytes keeps its good text: bad bytes become U+FFFD.

    feedparser would otherwise decode the whole document as windows-1252 ("cafÃ©"). A body
    with no valid multi-byte sequence at all is left alone: that is undeclared cp1252, which
    feedparser's fallback reads right.
    """
    declared = _DECLARED.search(body[:200])
    charset = (declared.group(1).decode("ascii", "replace") if declared else "") or (
        content_type.lower().partition("charset=")[2].strip(" \"';")
    )
    if charset.lower().replace("_", "-") not in ("", "utf-8", "utf8"):
        return body
    try:
        body.decode("utf-8")
        return body
    except UnicodeDecodeError:
        pass
    if not _UTF8_SEQUENCE.search(body):
        return body
    return body.decode("utf-8", errors="replace").encode("utf-8")


def _parse_xml(body: bytes, url: str, content_type: str, fast: bool = True) -> ParsedFeed:
    body = _repair_utf8(body, content_type)
    if b"&#" in body:
        body = _BIG_REFERENCE.sub(_bad_reference, body)
    if b"<!ENTITY" in body[:65536].upper():
        body = _DOCTYPE_SUBSET.sub(b"", body, count=1)
    # feedparser's author e-mail regex is quadratic (upstream #562): cap those fields first
    body = _LONG_PERSON.sub(lambda m: m.group(1) + m.group(2)[:MAX_PERSON], body)
    if fast and (quick := parse_fast(body, url, _lang)) is not None:
        return quick
    if b"description" in body:
        body = _ITEM.sub(_real_description_first, body)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    d = feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not d.get("version") and not d.entries:
        reason = str(d.get("bozo_exception") or "no RSS, Atom or JSON Feed document found")
        raise ParseError(f"not a feed: {_short(valid_text(reason))}")
    feed = d.get("feed", {})
    language = _lang(feed.get("language", ""))
    entries, warning = _entries(d.entries, lambda e: _xml_entry(e, url, language))
    if d.get("bozo"):
        malformed = f"malformed document, {len(entries)} entries recovered: " + _short(
            valid_text(str(d.get("bozo_exception", "")))
        )
        warning = "; ".join(filter(None, [malformed, warning]))
    parsed = ParsedFeed(
        format=d.get("version") or "unknown",
        title=feed.get("title", ""),
        title_is_html=_is_html(feed.get("title_detail")),
        link=feed.get("link", ""),
        language=language,
        entries=entries,
        warning=warning,
    )
    return _valid_fields(parsed)


def _real_description_first(match: re.Match[bytes]) -> bytes:
    """An RSS item as feedparser should read it: feedparser takes the first description-like
    element as the summary, so an image's `media:description` (its alt text) or an empty
    `<dc:description/>` would hide the real `<description>`. Where the item has a real
    one, those go (a media:description alone, as in video feeds, stays the summary)."""
    item = match.group()
    if _REAL_DESCRIPTION.search(item):
        item = _OTHER_DESCRIPTION.sub(b"", item)
    else:
        item = _EMPTY_DESCRIPTION.sub(b"", item)
    return item


def _bad_reference(match: re.Match[bytes]) -> bytes:
    """A numeric reference to a surrogate or past U+10FFFF becomes U+FFFD's; others stay."""
    hex_digits, decimal = match.groups()
    code = int(hex_digits, 16) if hex_digits else int(decimal)
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return b"&#xFFFD;"
    return match.group()


def _xml_entry(e: Any, url: str, feed_language: str) -> ParsedEntry:
    summary_detail = e.get("summary_detail") or {}
    contents = e.get("content") or []
    content = max(contents, key=lambda c: len(c.get("value", "")), default=None)
    summary = _html(summary_detail, e.get("summary", ""))
    content_html = _html(content, content.get("value", "")) if content else ""
    if summary and content_html and summary == content_html:
        summary = ""  # RSS puts the same text in both; keep it once, as content
    base = (content or summary_detail).get("base") or url
    language = _lang((content or {}).get("language") or summary_detail.get("language") or "")
    authors = tuple(
        name
        for a in e.get("authors") or []
        if (name := (a.get("name") or a.get("email") or "").strip())
    )
    if not authors and e.get("author"):
        authors = (e["author"].strip(),)
    categories = tuple(
        t["term"].strip() for t in e.get("tags") or [] if (t.get("term") or "").strip()
    )
    return ParsedEntry(
        guid=(e.get("id") or e.get("guid") or "").strip(),
        link=(e.get("link") or "").strip(),
        title=e.get("title", ""),
        title_is_html=_is_html(e.get("title_detail")),
        summary=summary,
        content=content_html,
        base=base,
        published=_struct(e.get("published_parsed")) or _struct(e.get("created_parsed")),
        updated=_struct(e.get("updated_parsed")),
        authors=authors,
        categories=categories,
        language=language if language != feed_language else "",
    )


def parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    """JSON Feed 1.0 and 1.1 (feedparser does not read it)."""
    try:
        doc = json.loads(body.decode("utf-8-sig", errors="replace"))
    except ValueError as exc:
        raise ParseError(f"not a feed: invalid JSON ({exc})") from None
    except RecursionError:
        raise ParseError("not a feed: JSON nested too deeply") from None
    version = doc.get("version", "") if isinstance(doc, dict) else ""
    if not isinstance(version, str) or not version.startswith("https://jsonfeed.org/version/"):
        raise ParseError("not a feed: JSON without a jsonfeed.org version")
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError("not a feed: JSON Feed without an items array")
    language = _lang(_str(doc.get("language")))
    entries, warning = _entries(items, lambda item: _json_entry(item, url))
    return _valid_fields(
        ParsedFeed(
            format="json" + version.rsplit("/", 1)[-1].replace(".", ""),
            title=_str(doc.get("title")),
            link=_str(doc.get("home_page_url")),
            language=language,
            entries=entries,
            warning=warning,
        )
    )


def _json_entry(item: Any, url: str) -> ParsedEntry | None:
    if not isinstance(item, dict):
        return None
    authors = item.get("authors") or (
        [item["author"]] if isinstance(item.get("author"), dict) else []
    )
    text = _str(item.get("content_text"))
    content = _str(item.get("content_html")) or (text_as_html(text) if text else "")
    tags = item.get("tags")
    return ParsedEntry(
        guid=_str(item.get("id")).strip(),
        link=_str(item.get("url") or item.get("external_url")).strip(),
        title=_str(item.get("title")),
        summary=html.escape(_str(item.get("summary")), quote=False),
        content=content,
        base=url,
        published=_iso(item.get("date_published")),
        updated=_iso(item.get("date_modified")),
        authors=tuple(
            _str(a.get("name")).strip()
            for a in (authors if isinstance(authors, list) else [])
            if isinstance(a, dict) and _str(a.get("name")).strip()
        ),
        categories=tuple(
            _str(t).strip() for t in (tags if isinstance(tags, list) else []) if _str(t).strip()
        ),
        language=_lang(_str(item.get("language"))),
    )


# ---------------------------------------------------------------- helpers


def _is_html(detail: Any) -> bool:
    """Whether a text field holds markup (normalize strips it) or plain text."""
    return (detail or {}).get("type", "text/plain") in _HTML_TYPES


def _html(detail: Any, value: str) -> str:
    """An HTML field; text/plain content is escaped so it is shown, not interpreted."""
    kind = (detail or {}).get("type", "text/html")
    if kind in _HTML_TYPES:
        return value or ""
    return text_as_html(value or "")


def _struct(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)
    except (ValueError, OverflowError):  # "0001-01-01T00:00:00+14:00" is before year 1 in UTC
        return None


def _lang(value: str) -> str:
    """`fr-FR` -> `fr`, `EN_us` -> `en`; "" when it is not a language code."""
    m = re.match(r"^\s*([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)*\s*$", value or "")
    return m.group(1).lower() if m else ""


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
)


def discover_feeds(body: bytes, url: str) -> list[tuple[str, str, str]]:
    """Feeds an HTML page announces with <link rel="alternate">: (url, type, title)."""
    from urllib.parse import urljoin

    from lxml import html as lxml_html

    try:
        doc = lxml_html.document_fromstring(body[:2_000_000])
    except (ValueError, TypeError, lxml_html.etree.ParserError):
        return []
    found = []
    for link in doc.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().split(";")[0].strip()
        href = (link.get("href") or "").strip()
        if "alternate" in rels and kind in FEED_TYPES and href:
            found.append((urljoin(url, href), kind, " ".join((link.get("title") or "").split())))
    return list(dict.fromkeys(found))


def looks_like_html(body: bytes, content_type: str) -> bool:
    head = body[:1024].lstrip().lower()
    return "html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))
