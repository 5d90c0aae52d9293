"""What a pull makes, stage by stage: `Fetched` -> `ParsedFeed`/`ParsedEntry` -> `Item`
(+ `TagMatch`) -> `PullOutcome`; and what stories, leases and lookups read of the store.
Datetimes are always timezone-aware UTC."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple


@dataclass(frozen=True)
class Fetched:
    """One HTTP answer: a body (status 200) or not-modified (status 304)."""

    url: str  # final URL, after redirects
    status: int
    body: bytes = b""
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""
    elapsed: float = 0.0
    moved_to: str = ""  # final URL when every redirect on the way was permanent (301/308)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class ParsedEntry:
    guid: str
    link: str
    title: str
    summary: str  # HTML (plain text is escaped by the parser stage)
    content: str  # HTML
    base: str  # base URL for relative links in summary/content
    published: datetime | None
    updated: datetime | None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    language: str = ""
    title_is_html: bool = False  # the title holds markup and entities (normalize strips them)


@dataclass(frozen=True)
class ParsedFeed:
    format: str  # "rss20", "atom10", "json11", ... (feedparser's names; "json1x" for JSON Feed)
    title: str
    link: str
    language: str
    entries: tuple[ParsedEntry, ...]
    warning: str = ""  # set when the document was malformed but still yielded entries
    title_is_html: bool = False


class TagMatch(NamedTuple):
    """One tag and why: `rule` is keyword/pattern/category/implied/source, `matched` the text.

    A named tuple, not a dataclass: an item carries a dozen, built by the tagger, sent from
    the workers and read back from the store by the ten thousand (a third of the cost of
    pickling an item, as a frozen dataclass)."""

    tag: str
    rule: str
    matched: str


@dataclass(frozen=True)
class Item:
    """A normalized entry of one source."""

    source: str
    key: str  # identity within the source (guid, else link, else a hash)
    uid: str  # stable public id: urn:uuid derived from (source, key)
    link: str
    canonical: str
    title: str
    summary_html: str
    content_html: str
    published: datetime
    updated: datetime
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    language: str = ""
    content_hash: str = ""
    tags: tuple[TagMatch, ...] = ()
    story: str = ""  # uid of the story this copy belongs to (its own uid when first)
    similarity: float | None = None  # score against the copy it matched, when it joined one
    matched: str = ""  # uid of that copy
    match_reason: str = ""  # "same link", "lead overlap", "title similarity"
    # the print of the feed entry it was made from (normalize.entry_print): the same entry
    # in a later document is known stored unchanged without normalizing it again
    entry_print: int = field(default=0, compare=False)

    @property
    def tag_names(self) -> frozenset[str]:
        return frozenset(t.tag for t in self.tags)

    @property
    def summary_text(self) -> str:
        """The summary as plain text, one line per block: always derived from the HTML, so
        it is never stored, never sent from a worker and never out of step."""
        return _plain(self.summary_html)

    @property
    def content_text(self) -> str:
        """The content as plain text (as `summary_text`)."""
        return _plain(self.content_html)


@lru_cache(maxsize=1024)
def _plain(html: str) -> str:
    """html_to_text, remembered: a worker's stages (language, tags, fingerprint) each read
    an item's text, and `replace` makes a new item holding the same HTML. The parse
    worker forgets it after each document (`forget_texts`): it would hold 1,024 HTMLs."""
    from aggregator.text.sanitize import html_to_text

    return html_to_text(html)


forget_texts = _plain.cache_clear


@dataclass(frozen=True)
class Known:
    """What the store holds of one copy, enough to decide what a new one is (dedupe)."""

    uid: str
    source: str
    key: str
    canonical: str
    content_hash: str
    story: str


@dataclass(frozen=True)
class Lookups:
    """What storage holds under one document's keys: the copies stored under its items'
    keys (that source's) and canonical links (any source's), and which were pruned."""

    by_key: Mapping[str, Known] = field(default_factory=dict)
    by_url: Mapping[str, Known] = field(default_factory=dict)  # the earliest copy a link
    pruned_keys: frozenset[tuple[str, str]] = frozenset()  # (source, key)
    pruned_urls: frozenset[str] = frozenset()

    def pruned(self, source: str, key: str, canonical: str) -> bool:
        """Whether this item was stored once and pruned (it never comes back as new)."""
        return (source, key) in self.pruned_keys or (
            bool(canonical) and canonical in self.pruned_urls
        )


@dataclass(frozen=True, slots=True)
class CopyText:
    """A stored copy as the near-duplicate check reads it: who it is, and what it says
    (its title and lead), enough to fingerprint it again when no fingerprint is stored."""

    uid: str
    source: str
    story: str
    title: str
    lead: str  # the summary's text, else the content's (normalize.lead_text)

    @classmethod
    def of(cls, item: Item) -> CopyText:
        return cls(
            item.uid, item.source, item.story, item.title, item.summary_text or item.content_text
        )


class Candidate(NamedTuple):
    """A stored copy sharing near-duplicate keys with a new item: maybe the same story."""

    copy: CopyText
    near_print: str  # its serialized similarity fingerprint ("" when not stored)


class Kind(StrEnum):
    """What storing one item means; the pull's counts and the log use these names."""

    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"  # older than kept, or pruned before


@dataclass(frozen=True)
class Near:
    """An item's similarity fingerprint, serialized, and its near-duplicate index keys."""

    print: str = ""
    keys: tuple[int, ...] = ()


@dataclass(frozen=True)
class Intent:
    """A story decision: what to write for one item, and why (the item carries its story,
    the copy it matched and the reason)."""

    kind: Kind
    item: Item
    near: Near = Near()
    target: str = ""  # uid of the stored copy to replace, for UPDATED


@dataclass(frozen=True)
class Lease:
    """A node's claim on one source while it pulls it, on a store shared by several nodes:
    what the pull writes is kept only while `token` still holds the source's lease."""

    source: str
    token: str
    node: str
    fetching: bool = False  # it holds one of its host's fetch slots (Leasing.fetch_slot)


@dataclass(frozen=True)
class Busy:
    """A source a node did not claim: not due until `until` (another node pulled it), or
    being pulled by another node (whose lease ends at `until`)."""

    source: str
    until: datetime
    reason: str
    pulling: bool = False  # another node is pulling it now (else it pulled it already)


@dataclass(frozen=True)
class LeaseRow:
    """A lease as `status` shows it: which node pulls which source, since and until when."""

    source: str
    node: str
    since: datetime
    until: datetime
    fetching: bool


@dataclass(frozen=True)
class PullOutcome:
    """What one pull of one source did, for the summary, the log and `status`."""

    source: str
    ok: bool
    status: int | None = None
    error_kind: str = ""
    error: str = ""
    new: int = 0
    updated: int = 0
    duplicate: int = 0
    unchanged: int = 0
    skipped: int = 0  # too old or pruned before
    not_modified: bool = False
    elapsed: float = 0.0
    warning: str = ""
    url: str = ""  # the URL pulled (a moved source's new address)
    retry_after: float | None = None
    next_pull: datetime | None = None
    next_reason: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # CPU time by stage
    # failed pulls in a row as stored, after this one and before it (several nodes may
    # have pulled the source in between: alerts and metrics count them all)
    failures: int = 0
    failures_before: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.duplicate)
