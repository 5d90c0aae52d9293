"""Rows <-> the package's frozen values: times as epoch seconds, tags and lists as JSON,
light items for the near-duplicate check, tombstone keys. No value leaves as a row."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aggregator import model
from aggregator.errors import StoreError
from aggregator.model import SourceRecord, SourceState

if TYPE_CHECKING:  # what a pull makes (model/items.py): loaded when a pull runs
    from aggregator.model import CopyText, Item, TagMatch


def _ts(dt: datetime) -> float:
    return dt.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _key_tomb(source: str, key: str) -> str:
    """The tombstone a pruned item leaves under its source and key."""
    return f"k:{source}\n{key}"


def _url_tomb(canonical: str) -> str:
    """The tombstone a pruned item leaves under its canonical link."""
    return f"u:{canonical}"


T = TypeVar("T")


def _chunks(values: list[T], size: int = 500) -> Iterator[list[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _tags_json(tags: Iterable[TagMatch]) -> str:
    """json.dumps([[tag, rule, matched], ...], ensure_ascii=False), written out: json.dumps
    builds an encoder on every call with a non-default option (three calls an item stored,
    a tenth of storing at 100,000 items)."""
    return "[" + ", ".join(map(_tag_json, tags)) + "]"


@functools.lru_cache(maxsize=4096)
def _tag_json(t: TagMatch) -> str:
    """One reason as JSON: a few dozen distinct reasons make most of a pass's thousands."""
    return f"[{_enc(t.tag)}, {_enc(t.rule)}, {_enc(t.matched)}]"


def _json_strings(values: Iterable[str]) -> str:
    """json.dumps(list(values), ensure_ascii=False), written out (see _tags_json)."""
    return "[" + ", ".join(map(_enc, values)) + "]"


_enc = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) quotes with


def _tag_columns(tags: Iterable[TagMatch]) -> tuple[str, str]:
    """The `tags` column (every reason, JSON) and `tag_names` (the names, for publishing)."""
    tags = tuple(tags)
    return _tags_json(tags), " ".join(dict.fromkeys(t.tag for t in tags))


_NEAR = (
    "rowid, uid, source, story, title, summary_html, summary_text, content_html, content_text, "
    "content_hash, first_seen, near_print"
)
# candidates: their texts are read only when no fingerprint was stored
_CANDIDATE = (
    "rowid, uid, source, story, title, '' AS summary_html, '' AS summary_text, "
    "'' AS content_html, '' AS content_text, '' AS content_hash, first_seen, near_print"
)


def _copy_text(row: sqlite3.Row) -> tuple[int, CopyText]:
    lead = _text(row, "summary") or _text(row, "content")
    return row["rowid"], model.CopyText(row["uid"], row["source"], row["story"], row["title"], lead)


def _text(row: sqlite3.Row, field: str) -> str:
    """A stored text, or (rows written since schema 6) the text of the stored HTML."""
    if text := row[f"{field}_text"]:
        return str(text)
    from aggregator.text.sanitize import html_to_text  # lxml and nh3: on the first read

    return html_to_text(row[f"{field}_html"])


def _item(row: sqlite3.Row) -> Item:
    """The Item a row holds; a row that cannot be read (garbled by hand, a disk error)
    is a StoreError naming the item and the column, not a bare JSON or type error."""
    try:
        return _read_item(row)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        column = next(
            (c for c in ("authors", "categories", "tags") if not _json_ok(row, c)),
            "published/updated" if isinstance(exc, (OverflowError, TypeError)) else "?",
        )
        uid = row["uid"] if "uid" in row.keys() else "?"  # noqa: SIM118 - a Row iterates values
        raise StoreError(
            f"a stored item cannot be read (uid {uid}, column {column}: "
            f"{type(exc).__name__}: {exc}): the row is damaged; `sqlite3 DATABASE "
            f"'PRAGMA integrity_check'` checks the file, and deleting the row (or restoring a "
            "backup) repairs it"
        ) from None


def _json_ok(row: sqlite3.Row, column: str) -> bool:
    try:
        json.loads(row[column])
    except (ValueError, TypeError, IndexError, KeyError):
        return False
    return True


def _read_item(row: sqlite3.Row) -> Item:
    return model.Item(
        source=row["source"],
        key=row["key"],
        uid=row["uid"],
        link=row["link"],
        canonical=row["canonical"],
        title=row["title"],
        summary_html=row["summary_html"],
        content_html=row["content_html"],
        published=_dt(row["published"]),
        updated=_dt(row["updated"]),
        authors=tuple(json.loads(row["authors"])),
        categories=tuple(json.loads(row["categories"])),
        language=row["language"],
        content_hash=row["content_hash"],
        tags=tuple(model.TagMatch(*t) for t in json.loads(row["tags"])),
        story=row["story"],
        similarity=row["similarity"],
        matched=row["matched"],
        match_reason=row["match_reason"],
        entry_print=row["entry_print"],
    )


def _encode(keys: Iterable[int]) -> str:
    from aggregator.storage.keyindex import encode

    return encode(keys)


_TIMES = frozenset({"next_pull", "last_pull", "last_ok"})  # stored as epoch seconds


def _column(row: sqlite3.Row, name: str) -> Any:  # the type of the field of that name
    value = row[name]
    return _dt(value) if name in _TIMES and value is not None else value


_RECORD = SourceRecord._fields
_STATE = SourceState._fields


def _record(row: sqlite3.Row) -> SourceRecord:
    """A `sources` row as the port's value: every field is the column of its name."""
    return SourceRecord(**{name: _column(row, name) for name in _RECORD})


def _state(row: sqlite3.Row) -> SourceState:
    return SourceState(**{name: _column(row, name) for name in _STATE})
