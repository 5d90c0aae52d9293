"""Frozen values every stage shares, named for their place in the flow.

config.py  what config.toml says: `Settings`, `Source`, `TagRule`, `CuratedFeed`, `Config`
state.py   what the store remembers of each source: `SourceState`, `SourceRecord`; and
           `CopyMeta`, the light copy of a stored item that choosing a feed reads
items.py   what a pull makes: `Fetched` -> `ParsedFeed`/`ParsedEntry` -> `Item` (+
           `TagMatch`) -> `PullOutcome`; and what stories, leases and lookups read

Each name is importable from here (`from aggregator.model import Item`); a module loads
when one of its names is first asked for, so that a command that reads only the config
(`check`, a cron run with nothing due) never builds the 17 classes of a pull (about 13 ms
of every start, dataclasses compiling their methods).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.model.config import (
        DATABASE_URLS,
        USER_AGENT,
        Config,
        CuratedFeed,
        Dedupe,
        Notify,
        Settings,
        Source,
        TagRule,
        database_at,
        is_acronym,
        is_database_url,
        retention_at,
    )
    from aggregator.model.items import (
        Busy,
        Candidate,
        CopyText,
        Fetched,
        Intent,
        Item,
        Kind,
        Known,
        Lease,
        LeaseRow,
        Lookups,
        Near,
        ParsedEntry,
        ParsedFeed,
        PullOutcome,
        TagMatch,
        _plain,
        forget_texts,
    )
    from aggregator.model.state import CopyMeta, SourceRecord, SourceState

__all__ = [
    "DATABASE_URLS",
    "USER_AGENT",
    "Busy",
    "Candidate",
    "Config",
    "CopyMeta",
    "CopyText",
    "CuratedFeed",
    "Dedupe",
    "Fetched",
    "Intent",
    "Item",
    "Kind",
    "Known",
    "Lease",
    "LeaseRow",
    "Lookups",
    "Near",
    "Notify",
    "ParsedEntry",
    "ParsedFeed",
    "PullOutcome",
    "Settings",
    "Source",
    "SourceRecord",
    "SourceState",
    "TagMatch",
    "TagRule",
    "_plain",
    "database_at",
    "forget_texts",
    "is_acronym",
    "is_database_url",
    "retention_at",
]
_WHERE = {
    "Busy": "items",
    "Candidate": "items",
    "Config": "config",
    "CopyMeta": "state",
    "CopyText": "items",
    "CuratedFeed": "config",
    "DATABASE_URLS": "config",
    "Dedupe": "config",
    "Fetched": "items",
    "Intent": "items",
    "Item": "items",
    "Kind": "items",
    "Known": "items",
    "Lease": "items",
    "LeaseRow": "items",
    "Lookups": "items",
    "Near": "items",
    "Notify": "config",
    "ParsedEntry": "items",
    "ParsedFeed": "items",
    "PullOutcome": "items",
    "Settings": "config",
    "Source": "config",
    "SourceRecord": "state",
    "SourceState": "state",
    "TagMatch": "items",
    "TagRule": "config",
    "USER_AGENT": "config",
    "_plain": "items",
    "database_at": "config",
    "forget_texts": "items",
    "is_acronym": "config",
    "is_database_url": "config",
    "retention_at": "config",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'aggregator.model' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"aggregator.model.{module}"), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted(_WHERE)
