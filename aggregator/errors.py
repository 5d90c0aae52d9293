"""One exception tree for the whole package.

    AggregatorError
    ├── ConfigError       every problem of a config file, each with its place
    ├── FetchError        a pull failed; `kind` is the class shown to operators
    ├── ParseError        the body is not a feed (kind "not_a_feed")
    │   └── BudgetExceeded    parsing took too long or too much memory, or crashed
    ├── LockedError       another process holds the database's lock
    └── StoreError        the database cannot be used (corrupt, unreadable, newer, full)
        └── LeaseLost     another node took over a source this one was pulling

A failing source is turned into a value (`PullOutcome`) by the pipeline; these
exceptions never escape a pass for one bad source.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """Why a pull failed, as `status`, the log and index.html show it: stable names an
    operator can grep and alert on. An HTTP error is `http_<status>` (`http_kind`)."""

    TIMEOUT = "timeout"
    DNS = "dns"
    CONNECT = "connect"
    REFUSED = "refused"
    TLS = "tls"
    NETWORK = "network"
    BLOCKED_ADDRESS = "blocked_address"
    REDIRECT_LOOP = "redirect_loop"
    BAD_REDIRECT = "bad_redirect"
    BAD_ENCODING = "bad_encoding"
    TOO_LARGE = "too_large"
    NOT_A_FEED = "not_a_feed"
    PARSE_ERROR = "parse_error"  # the parser failed on the document (a parser bug)
    PARSE_TIMEOUT = "parse_timeout"
    PARSE_MEMORY = "parse_memory"
    PARSE_CRASHED = "parse_crashed"
    GONE = "gone"  # HTTP 410: not pulled again until its config entry changes
    INTERNAL = "internal"  # a bug of ours, caught around one pull


def http_kind(status: int) -> str:
    """The kind of an HTTP error answer: `http_404`, `http_503`."""
    return f"http_{status}"


class AggregatorError(Exception):
    """Root of every error the package raises on purpose."""


class ConfigError(AggregatorError):
    """An invalid config: carries every problem, formatted `file:line: key.path: message`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class FetchError(AggregatorError):
    """A pull that did not bring a body; `kind` is a short stable class like `timeout`."""

    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: str = ""):
        self.kind = kind
        self.status = status
        self.retry_after = retry_after  # the raw Retry-After header of a 429/503
        super().__init__(message)


class ParseError(AggregatorError):
    """A body that holds no feed at all."""

    kind: str = ErrorKind.NOT_A_FEED


class BudgetExceeded(ParseError):
    """A document that took more than its time or memory, or crashed its parser: one
    failed source (`ingest/workers.py` enforces the budget)."""

    def __init__(self, kind: ErrorKind, message: str):
        self.kind = kind
        super().__init__(message)


class LockedError(AggregatorError):
    """The database is in use by another writer."""


class StoreError(AggregatorError):
    """The database cannot be used (corrupt, not a database, from a newer version, a disk
    error): raised by every storage backend, so no caller handles a driver's own errors."""


class LeaseLost(StoreError):
    """A pull's lease on its source is no longer this node's (it outlived the lease, and
    another node took the source over): what the pull would write is dropped, so a late
    node never overwrites a newer pull (storage/postgres/leases.py)."""
