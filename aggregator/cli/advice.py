"""`check` warnings: what in a valid config is probably not what the editor meant.

Pure: the config, what the store holds and the clock come in, warnings go out. Each
warning names its place in config.toml like an error does, but `check` still exits 0.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from aggregator.model import Config, SourceRecord, is_acronym

if TYPE_CHECKING:  # what a pull makes (model/items.py): loaded when a pull runs
    from aggregator.model import CopyMeta

FAILING_FOR = timedelta(days=1)
NEVER_OK_FAILURES = 3
MIN_LOWERCASE_USES = 3
# Stored items read, newest first, light (what choosing a feed reads, and titles): `check`
# stays a few milliseconds whatever the store holds. Whole items and their texts took a
# second at 5,000 (and all 400,000 of a flooded store 25 s and 920 MB). The newest
# FIRST_LOOK are read first, and READ_AT_MOST only when they leave a warning possible: on
# a store of 10,000 items the 5,000 cost 40 ms of a `check` that should take under 80.
FIRST_LOOK = 1000
READ_AT_MOST = 5000


class Look(NamedTuple):
    """What the stored items read say, found once: the feeds none of them would enter, and
    how the titles write each keyword in capitals (`_acronym_uses`)."""

    read: str  # which items: "the 1000 stored items", "the newest 1000 ... (of 10200)"
    empty_feeds: list[int]
    acronyms: list[tuple[str, int, str, int, int]]

    def worth_more(self) -> bool:
        """Whether more items could change a warning: a feed none would enter, or a
        keyword in capitals they write only otherwise. A keyword the newest titles never
        write is not worth a warning either way."""
        return bool(self.empty_feeds) or any(
            uses and not in_capitals for _, _, _, in_capitals, uses in self.acronyms
        )


def look_at(
    config: Config, copies: list[CopyMeta], titles: list[str], stored: int | None = None
) -> Look:
    """The stored items' side of the advice: `copies` are the newest stored items (and
    `titles` theirs), of `stored` in all (when they are not all)."""
    read = (
        f"the newest {len(copies)} stored items (of {stored})"
        if stored is not None and stored > len(copies)
        else f"the {len(copies)} stored items"
    )
    return Look(read, list(_empty_feeds(config, copies)), list(_acronym_uses(config, titles)))


def advise(
    config: Config, look: Look | None, sources: Mapping[str, SourceRecord], now: datetime
) -> list[tuple[tuple[Any, ...], str]]:
    """(key path, message) for each thing worth a second look; `look` is None when the
    store holds no item."""
    found: list[tuple[tuple[Any, ...], str]] = []
    found += _unused_tags(config)
    found += _stray_source_tags(config)
    if look is not None:
        found += [
            (("feeds", n), f"would be empty: none of {look.read} matches it")
            for n in look.empty_feeds
        ]
        found += _acronyms_never_in_capitals(look)
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


def _empty_feeds(config: Config, copies: list[CopyMeta]) -> Iterable[int]:
    """Feeds that no story of `copies` would enter: its tags (over all its copies) fit the
    feed and one of its copies may stand for it (the rules of `select`, which also orders
    and counts; a feed with a story is known at its first)."""
    from aggregator.select import eligible, group, story_tags, tags_fit

    stories = group(copies)
    tags_of = story_tags(stories)
    sources = {s.name for s in config.sources}
    default = config.default_language
    for n, feed in enumerate(config.feeds):
        if feed.max_items <= 0 or not any(
            tags_fit(feed, tags_of[story])
            and any(eligible(c, feed, sources, default) for c in copies)
            for story, copies in stories.items()
        ):
            yield n


def _acronyms_never_in_capitals(look: Look) -> Iterable[tuple[tuple[Any, ...], str]]:
    """Keywords in capitals that the stored titles write only otherwise (lower case, as a
    word)."""
    for name, k, keyword, in_capitals, uses in look.acronyms:
        if not in_capitals and uses >= MIN_LOWERCASE_USES:
            yield (
                ("tags", name, "keywords", k),
                f'"{keyword}" is in capitals, so it matches only "{keyword}"; {look.read} '
                f"write it otherwise {uses} times and never in capitals",
            )


def _acronym_uses(config: Config, titles: list[str]) -> Iterable[tuple[str, int, str, int, int]]:
    """(tag, index, keyword, times the titles write it in capitals, times in any case) of
    each keyword in capitals: one pass over the titles for every such keyword at once."""
    keywords = [
        (rule.name, k, keyword)
        for rule in config.tags
        for k, keyword in enumerate(rule.keywords)
        if is_acronym(keyword) and not keyword.endswith("*")
    ]
    if not keywords or not titles:
        return
    if not all(keyword.isascii() for *_, keyword in keywords):
        from aggregator.tagging import fold  # accents: compared as the tagger folds them

        titles = [fold(t) for t in titles]
        keywords = [(name, k, fold(keyword)) for name, k, keyword in keywords]
    words = "|".join(sorted((re.escape(kw) for *_, kw in keywords), key=len, reverse=True))
    found = Counter(re.findall(rf"(?<!\w)(?:{words})(?!\w)", "\n".join(titles), re.IGNORECASE))
    anycase: Counter[str] = Counter()
    for written, times in found.items():
        anycase[written.casefold()] += times
    for name, k, keyword in keywords:
        yield name, k, keyword, found[keyword], anycase[keyword.casefold()]


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
