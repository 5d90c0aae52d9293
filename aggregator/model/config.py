"""What config.toml says, read and validated (config/): `Settings`, `Source`, `TagRule`,
`CuratedFeed`, `Config`; and what retention keeps at a given time.

Named tuples, not dataclasses: every command reads the config, and `check` must answer in
a blink; dataclasses (their import, and compiling each class's methods) were 14 ms of its
start. They are as frozen; `_replace` makes a changed copy. No `from __future__ import
annotations` here: typing turns each string annotation of a named tuple into a ForwardRef,
compiling it (3 ms for these seven)."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

DATABASE_URLS = ("postgresql://", "postgres://")  # libpq's URIs: a PostgreSQL database
USER_AGENT = "aggregator/0.1 (+https://example.org)"  # [aggregator] user_agent, unless set


def is_database_url(database: Path | str) -> bool:
    """A PostgreSQL connection URI, not a SQLite file."""
    return isinstance(database, str) and database.startswith(DATABASE_URLS)


def database_at(base: Path, value: str) -> Path | str:
    """`[aggregator] database` as written: a URI as it is, a file from the config's folder."""
    return value if is_database_url(value) else base / value


class Settings(NamedTuple):
    database: Path | str  # a SQLite file, or a postgresql:// URI (is_database_url)
    output_dir: Path
    base_url: str = "http://localhost:8080/"
    interval: float = 900.0
    retention: float = 30 * 86400.0
    user_agent: str = USER_AGENT
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


class Dedupe(NamedTuple):
    window: float = 72 * 3600.0
    similarity: float = 0.8


class Notify(NamedTuple):
    """[notify]: where the daemon POSTs its alerts (daemon/webhook.py), and after how many
    failed pulls in a row a source is said to be failing."""

    webhook: str = ""
    failures: int = 3


class Source(NamedTuple):
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


def is_acronym(keyword: str) -> bool:
    """Written in capitals (at least one letter, no lower-case): a rule's keyword that
    matches only in capitals (the tagger, and `check`'s advice, read it so)."""
    letters = [c for c in keyword if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters)


class TagRule(NamedTuple):
    name: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    # phrases that veto the tag when the title says them: the story is another one (an IPO
    # whose text quotes share prices is funding, not a market move)
    exclude_in_title: tuple[str, ...] = ()
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


class CuratedFeed(NamedTuple):
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


class Config(NamedTuple):
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
