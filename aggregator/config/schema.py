"""The JSON Schema of config.toml, generated from the typed config (model + config key sets).

Shipped as config.schema.json and named on the first line of config.toml
(`#:schema ./config.schema.json`), so editors' TOML tools complete and check keys as they
type. `aggregator schema` prints it; a test keeps the shipped file equal to this output.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from aggregator.config.keys import (
    AGGREGATOR_KEYS,
    FEED_KEYS,
    LANGUAGE,
    NAME,
    NOTIFY_KEYS,
    SOURCE_KEYS,
    TAG_KEYS,
)
from aggregator.model import CuratedFeed, Dedupe, Notify, Settings, Source, TagRule

DURATION = {
    "type": "string",
    "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*$",
    "examples": ["90s", "15m", "2h", "7d"],
}
SIZE = {
    "type": "string",
    "pattern": r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$",
    "examples": ["10MB"],
}
URL = {"type": "string", "format": "uri", "pattern": "^https?://"}
NAME_S = {"type": "string", "pattern": NAME.pattern}
LANG_S = {"type": "string", "pattern": LANGUAGE.pattern.replace("[a-z]", "[a-zA-Z]")}

# Keys whose TOML form differs from their Python type (durations and sizes are strings).
SPECIAL: dict[str, dict[str, Any]] = {
    "interval": DURATION,
    "retention": DURATION,
    "timeout": DURATION,
    "parse_timeout": DURATION,
    "window": DURATION,
    "max_feed_size": SIZE,
    "url": URL,
    "base_url": URL,
    "hub": URL | {"pattern": "^(https?://.*)?$"},
    "name": NAME_S,
    "language": LANG_S,
    "database": {"type": "string"},
    "output_dir": {"type": "string"},
    "cron": {"type": "string", "examples": ["*/10 * * * *"]},
    "listen": {"type": "string", "pattern": r"^((\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):\d{1,5})?$"},
    "similarity": {"type": "number", "minimum": 0, "maximum": 1},
    "content": {"enum": ["summary", "full"]},
    "languages": {"type": "array", "items": LANG_S},
    "sources": {"type": "array", "items": NAME_S},
    "tags": {"type": "array", "items": NAME_S},
    "implies": {"type": "array", "items": NAME_S},
    "leans": {"type": "array", "items": NAME_S},
    "requires": {"type": "array", "items": NAME_S},
    "mentions": {"type": "integer", "minimum": 1, "maximum": 10},
    "failures": {"type": "integer", "minimum": 1},
    "keep_min_items": {"type": "integer", "minimum": 0, "maximum": 10000},
    "max_document_items": {"type": "integer", "minimum": 10, "maximum": 100000},
    "any_tags": {"type": "array", "items": NAME_S},
    "all_tags": {"type": "array", "items": NAME_S},
    "none_tags": {"type": "array", "items": NAME_S},
}
DESCRIPTIONS = {
    "database": "SQLite file, relative to this config's folder",
    "output_dir": "where the curated feeds are written",
    "base_url": "where output_dir is served; used for self links",
    "interval": "default pull interval of a source",
    "retention": "items older than this are pruned",
    "timeout": "total time one pull may take, redirects included",
    "max_feed_size": "larger documents are refused (gzip counted decoded)",
    "concurrency": "pulls in flight at once",
    "per_host": "pulls in flight at once to one host",
    "listen": 'host:port of the built-in server; "" turns it off',
    "hub": 'a WebSub hub to ping after a feed changes; "" for none',
    "allow_private_networks": "dial loopback, private and link-local addresses (off: refused)",
    "parse_timeout": "time budget to parse one document",
    "topic_model": "the topic model proposes ai and crypto beside the rules (false: rules only)",
    "site_title": "the title of index.html and of the OPML files",
    "public_source_health": "index.html shows each source's health, failures included",
    "max_document_items": "entries taken from one document, newest first (a 100,000-item feed)",
    "window": "how far back a new item is compared for near-duplicates",
    "similarity": "near-duplicate threshold, 0..1",
    "keep_min_items": "its newest items kept however old (a quiet source's back catalogue)",
    "webhook": "an http(s) URL the daemon POSTs its alerts to as JSON (docs/operations.md)",
    "failures": "failed pulls in a row after which a source's failure is announced",
    "title": "shown to readers",
    "priority": "higher wins when a story is seen in several sources",
    "enabled": "false: not pulled, its items not published",
    "keywords": (
        "whole words or phrases, case- and accent-insensitive; CAPITALS match only in "
        "capitals; a trailing * matches any ending"
    ),
    "patterns": "regular expressions, case-insensitive",
    "exclude": "phrases that veto the tag",
    "exclude_in_title": "phrases that veto the tag when the title says them",
    "categories": "the item's own feed categories that give the tag",
    "needs_context": (
        "names that count only beside a word of `context`; matched as written (a capital "
        "stays a capital)"
    ),
    "context": "words that show the tag's subject: needed by `needs_context`, evidence for `leans`",
    "mentions": "keywords count when in the title or this many times in the text",
    "requires": "the tag stands only when the item also has one of these tags",
    "passing": (
        'where a keyword or name is only named in passing, * standing for it ("former *", '
        '"like *", "* models"): such mentions do not count'
    ),
    "rivals": (
        'tags whose names listed beside this one\'s ("ChatGPT, Claude or Gemini") make a '
        "comparison or a choice: such mentions do not count"
    ),
    "leans": "tags given to an item of this source when it shows some evidence of them",
    "tags": "tags given to every item of this source",
    "max_items": "newest items kept in the feed",
}


def _json_type(annotation: object) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _json_type(args[0])
    if origin is tuple:
        return {"type": "array", "items": {"type": "string"}}
    scalars: dict[object, dict[str, str]] = {
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
    }
    return scalars.get(annotation, {"type": "string"})


def _table(cls: type, keys: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, dict[str, Any]] = {}
    for name in cls._fields:  # type: ignore[attr-defined]  # a NamedTuple of model/config.py
        if name not in keys:
            continue
        prop: dict[str, Any] = dict(SPECIAL.get(name) or _json_type(hints[name]))
        if name in DESCRIPTIONS:
            prop["description"] = DESCRIPTIONS[name]
        properties[name] = prop
    missing = keys - properties.keys()
    assert not missing, f"config keys without a field in {cls.__name__}: {missing}"
    table = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        table["required"] = list(required)
    return table


def json_schema() -> dict[str, Any]:
    source = _table(Source, SOURCE_KEYS, ("name", "url"))
    source["properties"]["cron"] = SPECIAL["cron"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "config.schema.json",
        "title": "aggregator config.toml",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "aggregator": _table(Settings, AGGREGATOR_KEYS),
            "disclaimer": {
                "type": "object",
                "description": "appended to every item in its language; `default`: the fallback",
                "properties": {"default": LANG_S},
                "patternProperties": {LANGUAGE.pattern: {"type": "string", "minLength": 1}},
                "additionalProperties": False,
            },
            "dedupe": _table(Dedupe, {"window", "similarity"}),
            "notify": _table(Notify, NOTIFY_KEYS),
            "sources": {"type": "array", "items": source},
            "tags": {"type": "object", "additionalProperties": _table(TagRule, TAG_KEYS)},
            "feeds": {"type": "array", "items": _table(CuratedFeed, FEED_KEYS, ("name", "title"))},
        },
    }


def render() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
