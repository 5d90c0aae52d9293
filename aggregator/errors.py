"""One exception tree for the whole package.

    AggregatorError
    ├── ConfigError       every problem of a config file, each with its place
    ├── FetchError        a pull failed; `kind` is the class shown to operators
    ├── ParseError        the body is not a feed (kind "not_a_feed")
    │   └── BudgetExceeded    (workers.py) parsing took too long or too much memory
    ├── LockedError       another process holds the database's lock
    └── StoreError        the database cannot be used (corrupt, unreadable, newer, full)

A failing source is turned into a value (`PullOutcome`) by the pipeline; these
exceptions never escape a pass for one bad source.
"""

from __future__ import annotations


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

    kind = "not_a_feed"


class LockedError(AggregatorError):
    """The database is in use by another writer."""


class StoreError(AggregatorError):
    """The database cannot be used (corrupt, not a database, from a newer version, a disk
    error): raised by every storage backend, so no caller handles a driver's own errors."""
