"""The HTML allow-list and text cleaning: the last transform item text goes through.

Everything a source sends is hostile: HTML is re-sanitized with nh3 (ammonia) whatever
feedparser did, relative links are resolved against the entry's base while cleaning, and
every string is reduced to characters XML can hold so one bad item never breaks a feed.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import nh3
import regex

from aggregator.text.urls import LOCAL_SUFFIXES, names_local_host

ALLOWED_TAGS = (nh3.ALLOWED_TAGS - {"map", "area", "center", "acronym"}) | {"figure", "figcaption"}
ALLOWED_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "a": {"href", "hreflang", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "*": {"lang", "dir"},
}
URL_SCHEMES = {"http", "https", "mailto"}

# XML 1.0 characters minus the C0 controls; C1 controls are handled in clean_text.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_C1 = re.compile("[\x80-\x9f]")
_TAG = re.compile(r"<[^>]*>")
_TAG_LIKE = re.compile(r"</?[A-Za-z!?][^>]*>")
_BLOCK_END = re.compile(
    r"<br\s*/?>|</(?:p|div|li|h[1-6]|blockquote|pre|tr|figure|figcaption|dt|dd|table|ul|ol)\s*>",
    re.IGNORECASE,
)

# What ammonia changes in text without tags: escapes, CRs, no-break spaces, a leading BOM.
_HTML_SPECIAL = re.compile("[<>&\r\xa0\ufeff]")
# href and src values as written (before entities are read: "&#49;27.1" is not plain), and
# what a value that cannot name a local host looks like: http(s), then a domain name of
# ASCII letters (not all digits) ending the authority (no user@, no escape, no %).
_LINK_VALUE = re.compile(r"""\s*=\s*["']?([^"'\s>]*)""")
_PLAIN_URL = re.compile(
    r"https?://((?:[a-z0-9-]+\.)*[a-z0-9-]*[a-z][a-z0-9-]*\.?)(?::\d{1,5})?(?:[/?#\\].*)?$",
    re.IGNORECASE,
)


def _link_values(lowered: str) -> Iterator[str]:
    """The href and src values of a lower-cased fragment: C-speed finds of the names, a
    regex only at each (a regex scanning for either name took 110 us on 3 KB)."""
    for name in ("href", "src"):
        at = lowered.find(name)
        while at >= 0:
            if (m := _LINK_VALUE.match(lowered, at + len(name))) is not None:
                yield m.group(1)
            at = lowered.find(name, at + len(name))


def _may_name_local_host(fragment: str) -> bool:
    """Whether a link or image of `fragment` might name a local host, however spelled: any
    href/src value that is not a plain http(s) URL to a domain name, or a relative one.
    Most fragments have none, and skip the filter (a Python call per attribute)."""
    for value in _link_values(fragment.lower()):
        plain = _PLAIN_URL.match(value)
        if plain is None:
            if value.startswith(("//", "/\\", "\\")):
                return True  # another host, whatever the scheme ("//[::1]/")
            if value.startswith(("mailto:", "#")) or ":" not in value.split("/", 1)[0]:
                continue  # a path ("/a.jpg", "img/a.jpg"): the base decides, checked apart
            return True
        host = plain.group(1).lower().rstrip(".")
        if host == "localhost" or host.endswith(LOCAL_SUFFIXES):
            return True
    return False


def _c1_to_cp1252(match: re.Match[str]) -> str:
    # Text that was cp1252 read as latin-1 carries C1 controls where quotes and dashes were.
    return bytes([ord(match.group())]).decode("cp1252", errors="replace").replace("\ufffd", "")


# The Latin-1 characters clean_text changes: C0 controls but tab and line breaks, DEL, C1.
_LATIN1_CHANGED = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)])


def clean_text(text: str) -> str:
    """`text` with C1 controls mapped back to cp1252 and characters XML cannot hold dropped."""
    if not text:
        return ""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        # Printable characters (in Unicode's sense) are all XML characters and never C1:
        # most texts pass this C-speed test (newlines aside: XML holds them).
        if text.isprintable() or text.replace("\n", " ").isprintable():
            return text
    else:
        # Latin-1 text (most): looked up byte by byte in C, no-break spaces and all
        if len(raw.translate(None, _LATIN1_CHANGED)) == len(raw):
            return text
    text = _C1.sub(_c1_to_cp1252, text)
    return _NOT_XML.sub("", text)


def clean_html(fragment: str, base: str = "") -> str:
    """Allow-listed HTML with relative links resolved against `base` (dropped without one)."""
    fragment = clean_text(fragment)
    if not fragment.strip():
        return ""
    if not _HTML_SPECIAL.search(fragment):  # plain text: ammonia would give it back as is
        return fragment.strip()
    base = base if base.startswith(("http://", "https://")) else ""
    if base and _local_base(base):  # xml:base="http://192.168.0.1/": relative links go
        base = ""
    # the filter is a Python call per attribute: only when a local host could be named
    return _cleaner(base, _may_name_local_host(fragment)).clean(fragment).strip()


@functools.lru_cache(maxsize=256)
def _local_base(base: str) -> bool:
    """names_local_host, once per base URL (a document's items share one)."""
    return names_local_host(base)


@functools.lru_cache(maxsize=64)
def _cleaner(base: str, filtered: bool) -> nh3.Cleaner:
    """The allow-list built once per base URL (a document's items share one): nh3.clean
    converts every option to Rust on each call, 2.4x the cost of the cleaning itself."""
    options: dict[str, Any] = dict(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        strip_comments=True,
        link_rel="noopener noreferrer",
        attribute_filter=_no_local_urls if filtered else None,
    )
    if base:
        try:
            return nh3.Cleaner(url_relative=("rewrite_with_base", base), **options)
        except (ValueError, TypeError):  # a base URL ammonia refuses: relative links dropped
            pass
    return nh3.Cleaner(url_relative="deny", **options)


def _no_local_urls(tag: str, attribute: str, value: str) -> str | None:
    """Drop links and images aimed at local or private hosts: readers of the republished
    feed would otherwise make requests into their own networks."""
    if attribute not in ("src", "href"):
        return value
    if value.lstrip().startswith(("//", "/\\", "\\")):  # protocol-relative: another host
        return None if names_local_host("http:" + value.strip()) else value
    return None if names_local_host(value) else value


def html_to_text(fragment: str) -> str:
    """Readable plain text of (sanitized) HTML: one line per block, spaces collapsed."""
    if not fragment:
        return ""
    text = _BLOCK_END.sub("\n", fragment)
    text = html.unescape(_TAG.sub("", text))
    lines = []
    printable = True
    for line in text.splitlines():
        # A printable line holds no whitespace but " " (isprintable is a C loop): most lines
        # need no split and join, which cost ~100 ns a word (60% of this function).
        if not line.isprintable():
            printable = False  # tabs, other spaces, or characters XML cannot hold
            line = " ".join(line.split())
        elif "  " in line or line[:1] == " " or line[-1:] == " ":
            line = " ".join(line.split())
        if line:
            lines.append(line)
    text = "\n".join(lines)
    return text if printable else clean_text(text)


def plain_title(text: str, markup: bool = True) -> str:
    """A title as plain text: markup dropped, entities decoded once, whitespace collapsed.

    `markup` says the text is HTML (tags and entities to resolve); plain text is kept as is.
    """
    if markup:
        text = html.unescape(_TAG.sub("", text))
    # Some readers show titles as HTML: nothing that looks like a tag survives, even in text.
    text = _TAG_LIKE.sub("", text)
    return clean_text(" ".join(text.split()))


def text_key(text: str) -> str:
    """A loose form for finding one text inside another: accents, case, spacing ignored."""
    text = html.unescape(text).replace("’", "'")
    if not text.isascii():
        text = strip_accents(text)
    return " ".join(text.casefold().split())


# Characters that are not \w, as spaces: splitting the result on spaces gives the tokens
# of `\w+` in a fifth of the regex's time, and positions in it are positions in the text.
_NON_WORD_ASCII = str.maketrans(
    {chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")}
)
# French text keeps « », ° and no-break spaces after folding; characters beyond Latin-1 that
# are not \w either (€, typographic signs) become "?" on the way: a non-word character too.
_NON_WORD_LATIN1 = bytes(b if chr(b).isalnum() or b == 0x5F else 0x20 for b in range(256))
_BEYOND_LATIN1 = re.compile("[^\x00-\xff]")


def words_spaced(text: str) -> str | None:
    r"""`text` with every character that is not \w made a space (same length), or None when
    it holds letters beyond Latin-1 (then only the `\w+` regex reads its words)."""
    if text.isascii():
        return text.translate(_NON_WORD_ASCII)
    if any(c.isalnum() or c == "_" for c in _BEYOND_LATIN1.findall(text)):
        return None
    raw = text.encode("latin-1", errors="replace")  # "?" for each other character: 1:1
    return raw.translate(_NON_WORD_LATIN1).decode("latin-1")


_MARKS = regex.compile(r"\p{Mn}+")


def _slow_strip_accents(text: str) -> str:
    return _MARKS.sub("", unicodedata.normalize("NFKD", text))


# Text within Latin-1 (most French once its typographic quotes and dashes are folded) takes
# a byte table built from the slow way, character by character: 13 us instead of 37 for a
# 2 KB article. The few Latin-1 characters whose form is not one Latin-1 character ("½",
# "µ") send the text the slow way.
_LATIN1 = [_slow_strip_accents(chr(b)) for b in range(256)]
_LATIN1_TABLE = bytes(ord(c) if len(c) == 1 and ord(c) < 256 else b for b, c in enumerate(_LATIN1))
# the bytes the table cannot stand for, found by deleting them (a C loop: a regex character
# class took 7 us on a 2 KB article)
_LATIN1_OTHERS = bytes(b for b, c in enumerate(_LATIN1) if len(c) != 1 or ord(c) > 255)


def strip_accents(text: str) -> str:
    """ "Débauchage" -> "Debauchage": NFKD, then combining marks dropped (in C, not per char)."""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return _slow_strip_accents(text)
    if len(raw.translate(None, _LATIN1_OTHERS)) != len(raw):
        return _slow_strip_accents(text)
    return raw.translate(_LATIN1_TABLE).decode("latin-1")


def boilerplate_probe(text: str) -> str:
    """The first sentence (at most 80 characters) of a boilerplate text, as a `text_key`.

    Enough to recognise a disclaimer a site already appends, even when the rest differs.
    """
    key = text_key(text)
    return re.split(r"(?<=[.!?])\s", key, maxsplit=1)[0][:80]
