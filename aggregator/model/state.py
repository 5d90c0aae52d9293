"""What the store remembers of each source between pulls, and what `status` shows; and the
light copy of a stored item that choosing a feed's stories (and `check`) reads. Named
tuples with their annotations evaluated, as in config.py, for the same reason."""

from datetime import datetime
from typing import NamedTuple


class SourceState(NamedTuple):
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


class SourceRecord(NamedTuple):
    """A source's state with its last pull's outcome, as `status`, health and publishing
    read it: SourceState's fields (a named tuple cannot extend another's; a test holds the
    two lists together), then the outcome's."""

    name: str
    etag: str = ""
    last_modified: str = ""
    feed_title: str = ""
    feed_link: str = ""
    body_hash: str = ""
    consecutive_failures: int = 0
    next_pull: datetime | None = None
    next_reason: str = ""
    gone_print: str = ""
    redirect_url: str = ""
    redirect_count: int = 0
    redirect_print: str = ""
    url: str = ""  # the URL last pulled
    last_pull: datetime | None = None
    last_ok: datetime | None = None
    last_status: int | None = None
    last_error_kind: str = ""
    last_error: str = ""
    last_new: int = 0
    last_items: int = 0


class CopyMeta(NamedTuple):
    """What choosing a feed's stories reads of a stored copy; the chosen ones are then read
    whole (a pass of 10,000 stored copies publishes 50 a feed). A tuple, not a dataclass:
    built up to 5,000 at a time by `check` and 10,000 by a pass, with no model of a pull
    loaded."""

    uid: str
    story: str
    source: str
    language: str
    published: datetime
    tag_names: frozenset[str]
