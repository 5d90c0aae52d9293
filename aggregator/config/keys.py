"""What config.toml may hold: the keys of each table, names, languages, URLs, and the
bounds of durations and sizes."""

from __future__ import annotations

import re

from aggregator.units import bounded, format_duration, format_size, parse_duration, parse_size

DAY = 86400.0

# Every duration and size has bounds a run survives (`check` and the daemon refuse others).
INTERVAL = bounded(parse_duration, 1.0, 30 * DAY, format_duration)

RETENTION = bounded(parse_duration, 3600.0, 3650 * DAY, format_duration)

TIMEOUT = bounded(parse_duration, 1.0, 600.0, format_duration)

WINDOW = bounded(parse_duration, 60.0, 365 * DAY, format_duration)

FEED_SIZE = bounded(parse_size, 1000, 1000**3, format_size)

NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")

URL = re.compile(r"^https?://[^\s/?#@]+(:\d+)?([/?#]\S*)?$", re.IGNORECASE)


def listen_problem(listen: str) -> str:
    """Why `listen` is not a "host:port" the server can bind ("" when it is); shared by
    the config's `listen` and `serve --listen`."""
    if not re.match(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):\d{1,5}$", listen):
        return f'must be "host:port" (e.g. "127.0.0.1:8080"), got {listen!r}'
    if not 1 <= int(listen.rsplit(":", 1)[1]) <= 65535:
        return f"the port must be between 1 and 65535, got {listen!r}"
    return ""


NOTIFY_KEYS = {"webhook", "failures"}

AGGREGATOR_KEYS = {
    "database",
    "output_dir",
    "base_url",
    "interval",
    "retention",
    "user_agent",
    "timeout",
    "max_feed_size",
    "concurrency",
    "per_host",
    "listen",
    "hub",
    "allow_private_networks",
    "parse_timeout",
    "topic_model",
    "max_document_items",
    "site_title",
    "public_source_health",
}

SOURCE_KEYS = {
    "name",
    "url",
    "title",
    "tags",
    "leans",
    "language",
    "interval",
    "cron",
    "priority",
    "enabled",
    "retention",
    "keep_min_items",
}

TAG_KEYS = {
    "keywords",
    "patterns",
    "exclude",
    "exclude_in_title",
    "categories",
    "implies",
    "needs_context",
    "context",
    "mentions",
    "requires",
    "passing",
    "rivals",
}

MAX_MENTIONS = 10

FEED_KEYS = {
    "name",
    "title",
    "description",
    "any_tags",
    "all_tags",
    "none_tags",
    "languages",
    "sources",
    "max_items",
    "content",
}


def closest(word: str, options: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.75)
    return found[0] if found else None
