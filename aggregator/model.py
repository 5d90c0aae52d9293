"""Frozen dataclasses every stage shares, named for their place in the flow.

Config side: `Settings`, `Source`, `TagRule`, `CuratedFeed`, `Config`.
Item side:   `Fetched` -> `ParsedFeed`/`ParsedEntry` -> `Item` (+ `TagMatch`) -> `PullOutcome`.
Datetimes are always timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

# ---------------------------------------------------------------- config


DATABASE_URLS = ("postgresql://", "postgres://")  # libpq's URIs: a PostgreSQL database


def is_database_url(database: Path | str) -> bool:
    """A PostgreSQL connection URI, not a SQLite file."""
    return isinstance(database, str) and database.startswith(DATABASE_URLS)


def database_at(base: Path, value: str) -> Path | str:
    """`[aggregator] database` as written: a URI as it is, a file from the config's folder."""
    return value if is_database_url(value) else base / value


@dataclass(frozen=True)
class Settings:
    database: Path | str  # a SQLite file, or a postgresql:// URI (is_database_url)
    output_dir: Path
    base_url: str = "http://localhost:8080/"
    interval: float = 900.0
    retention: float = 30 * 86400.0
    user_agent: str = "aggregator/0.1 (+https://example.org)"
    timeout: float = 20.0
    max_feed_size: int = 10_000_000
    concurrency: int = 16
    per_host: int = 2
    listen: str = "127.0.0.1:8080"
    hub: str = ""
    allow_private_networks: bool = False
    parse_timeout: float = 15.0  # one document's parse budget, in a worker process
    topic_model: bool = True  # the topic model's second signal (topics.py) beside the rules
    site_title: str = "Curated news feeds"  # index.html's and the OPML files' title
    public_source_health: bool = False  # index.html shows which sources are failing
    max_document_items: int = 1000  # entries taken from one document, newest first


@dataclass(frozen=True)
class Dedupe:
    window: float = 72 * 3600.0
    similarity: float = 0.8


@dataclass(frozen=True)
class Notify:
    """[notify]: where the daemon POSTs its alerts (daemon/webhook.py), and after how many
    failed pulls in a row a source is said to be failing."""

    webhook: str = ""
    failures: int = 3


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    title: str = ""
    tags: tuple[str, ...] = ()
    # tags its items lean to: given when the item shows some evidence of the tag (a word of
    # the rule's `context`, a `needs_context` name, ...), not to every item as `tags` are
    leans: tuple[str, ...] = ()
    language: str = ""
    interval: float | None = None
    cron: str = ""
    priority: int = 0
    enabled: bool = True
    order: int = 0  # place in the config; the last tie-breaker between copies of a story
    retention: float | None = None  # its items' retention (None: [aggregator] retention)
    keep_min_items: int = 0  # its newest items kept however old (a quiet source's last N)


@dataclass(frozen=True)
class TagRule:
    name: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()
    # names that count only beside a word of `context` ("Claude" with "model", "Anthropic")
    needs_context: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    mentions: int = 1  # keywords count in the title, or this many times in the text
    requires: tuple[str, ...] = ()  # the tag stands only beside one of these tags
    # where a keyword or name is only named in passing, `*` standing for it: "former *",
    # "* models" ("ex-OpenAI", "like bitcoin", "runs on Mistral models" do not count)
    passing: tuple[str, ...] = ()
    # tags whose names listed beside this rule's ("ChatGPT, Claude or Gemini") make a
    # comparison or a choice: such mentions do not count either
    rivals: tuple[str, ...] = ()


@dataclass(frozen=True)
class CuratedFeed:
    name: str
    title: str
    description: str = ""
    any_tags: tuple[str, ...] = ()
    all_tags: tuple[str, ...] = ()
    none_tags: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    max_items: int = 50
    content: str = "summary"


@dataclass(frozen=True)
class Config:
    path: Path
    settings: Settings
    disclaimers: dict[str, str]
    default_language: str
    dedupe: Dedupe
    sources: tuple[Source, ...]
    tags: tuple[TagRule, ...]
    feeds: tuple[CuratedFeed, ...]
    notify: Notify = Notify()

    def source(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)


# ---------------------------------------------------------------- items


@dataclass(frozen=True)
class SourceState:
    """What the store remembers of a source between pulls."""

    name: str
    etag: str = ""
    last_modified: str = ""
    feed_title: str = ""
    feed_link: str = ""
    body_hash: str = ""  # of the last document parsed: the same bytes again are not re-parsed
    consecutive_failures: int = 0
    next_pull: datetime | None = None
    next_reason: str = ""  # why then: "interval 30m", "Retry-After 1h (HTTP 429)", ...
    gone_print: str = ""  # the config entry (schedule.source_print) that answered 410
    redirect_url: str = ""  # where 301/308s lead, and how many pulls in a row they did
    redirect_count: int = 0
    redirect_print: str = ""


@dataclass(frozen=True)
class SourceRecord(SourceState):
    """A source's state with its last pull's outcome, as `status`, health and publishing
    read it."""

    url: str = ""  # the URL last pulled
    last_pull: datetime | None = None
    last_ok: datetime | None = None
    last_status: int | None = None
    last_error_kind: str = ""
    last_error: str = ""
    last_new: int = 0
    last_items: int = 0


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


@dataclass(frozen=True, slots=True)
class CopyMeta:
    """What choosing a feed's stories reads of a stored copy; the chosen ones are then read
    whole (a pass of 10,000 stored copies publishes 50 a feed)."""

    uid: str
    story: str
    source: str
    language: str
    published: datetime
    tag_names: frozenset[str]


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


def retention_at(config: Config, now: datetime) -> tuple[datetime, list[tuple[str, datetime, int]]]:
    """What pruning keeps at `now`: the cutoff of `[aggregator] retention`, and for each
    source with its own `retention` or `keep_min_items`, (name, its cutoff, how many of its
    newest items to keep whatever their age)."""
    default = timedelta(seconds=config.settings.retention)
    own = [
        (s.name, now - timedelta(seconds=s.retention) if s.retention else now - default,
         s.keep_min_items)
        for s in config.sources
        if s.retention is not None or s.keep_min_items
    ]  # fmt: skip
    return now - default, own
