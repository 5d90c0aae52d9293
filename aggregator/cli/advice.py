"""`check` warnings: what in a valid config is probably not what the editor meant.

Pure: the config, what the store holds and the clock come in, warnings go out. Each
warning names its place in config.toml like an error does, but `check` still exits 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aggregator.model import Config, Item, SourceRecord
from aggregator.select import group, select
from aggregator.tagging import fold, is_acronym

FAILING_FOR = timedelta(days=1)
NEVER_OK_FAILURES = 3
MIN_LOWERCASE_USES = 3
# Stored items read, newest first: `check` stays a second and ~100 MB whatever the store
# holds (all 400,000 items of a flooded store took 25 s and 920 MB).
READ_AT_MOST = 5000


def advise(
    config: Config,
    items: list[Item],
    sources: Mapping[str, SourceRecord],
    now: datetime,
    stored: int | None = None,
) -> list[tuple[tuple[Any, ...], str]]:
    """(key path, message) for each thing worth a second look; `items` are the newest
    stored ones, of `stored` in all (when they are not all)."""
    found: list[tuple[tuple[Any, ...], str]] = []
    found += _unused_tags(config)
    found += _stray_source_tags(config)
    if items:
        read = (
            f"the newest {len(items)} stored items (of {stored})"
            if stored is not None and stored > len(items)
            else f"the {len(items)} stored items"
        )
        found += _empty_feeds(config, items, read)
        found += _acronyms_never_in_capitals(config, items, read)
    found += _failing_sources(config, sources, now)
    return found


def _unused_tags(config: Config) -> Iterable[tuple[tuple[Any, ...], str]]:
    used = {t for f in config.feeds for t in (*f.any_tags, *f.all_tags, *f.none_tags)}
    used |= {t for rule in config.tags for t in rule.implies}
    for rule in config.tags:
        if rule.name not in used:
            yield ("tags", rule.name), "no curated feed and no other tag uses this tag"


def _stray_source_tags(config: Config) -> Iterable[tuple[tuple[Any, ...], str]]:
    """A source tag no rule defines and no feed selects is most likely misspelt
    (`--tags crpyto`): it tags the source's items, and nothing ever reads it."""
    from aggregator.config.keys import closest
    from aggregator.config.load import tags_read

    known = tags_read(config)
    for n, source in enumerate(config.sources):
        for i, tag in enumerate(source.tags):
            if tag not in known:
                hint = closest(tag, known)
                yield (
                    ("sources", n, "tags", i),
                    f"tag {tag!r} has no rule and no curated feed selects it"
                    + (f" (did you mean {hint!r}?)" if hint else ""),
                )


def _empty_feeds(
    config: Config, items: list[Item], read: str
) -> Iterable[tuple[tuple[Any, ...], str]]:
    stories = group(items)
    sources = {s.name: s for s in config.sources}
    for n, feed in enumerate(config.feeds):
        if not select(stories, feed, sources, config.default_language):
            yield ("feeds", n), f"would be empty: none of {read} matches it"


def _acronyms_never_in_capitals(
    config: Config, items: list[Item], read: str
) -> Iterable[tuple[tuple[Any, ...], str]]:
    texts = [fold("\n".join((i.title, i.summary_text, i.content_text))) for i in items]
    for rule in config.tags:
        for k, keyword in enumerate(rule.keywords):
            if not is_acronym(keyword) or keyword.endswith("*"):
                continue
            word = re.escape(fold(keyword))
            exact = re.compile(rf"(?<!\w){word}(?!\w)")
            loose = re.compile(rf"(?<!\w){word}(?!\w)", re.IGNORECASE)
            capitals = sum(len(exact.findall(t)) for t in texts)
            anycase = sum(len(loose.findall(t)) for t in texts)
            if capitals == 0 and anycase >= MIN_LOWERCASE_USES:
                yield (
                    ("tags", rule.name, "keywords", k),
                    f'"{keyword}" is in capitals, so it matches only "{keyword}"; {read} '
                    f"write it otherwise {anycase} times and never in capitals",
                )


def _failing_sources(
    config: Config, rows: Mapping[str, SourceRecord], now: datetime
) -> Iterable[tuple[tuple[Any, ...], str]]:
    for n, source in enumerate(config.sources):
        row = rows.get(source.name)
        if not source.enabled or row is None or not row.consecutive_failures:
            continue
        error = f"{row.last_error_kind}: {row.last_error}".strip(": ")
        if row.last_ok is None:
            if row.consecutive_failures >= NEVER_OK_FAILURES:
                yield (
                    ("sources", n),
                    (
                        f"has never been pulled successfully ({row.consecutive_failures} "
                        f"failures; last: {error})"
                    ),
                )
        elif now - row.last_ok > FAILING_FOR:
            days = (now - row.last_ok).total_seconds() / 86400
            yield ("sources", n), f"has failed for {days:.1f} days (last: {error})"
