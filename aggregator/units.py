"""Durations ("90s", "15m", "2h", "7d", "1w") and sizes ("10MB", "512KB") as editors write them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError with the accepted forms when it is not a duration."""
    if not isinstance(text, str):
        raise ValueError(f'expected a duration string like "15m", got {text!r}')
    m = _DURATION.match(text)
    if not m:
        raise ValueError(
            f'not a duration: {text!r} (use a number and s, m, h, d or w: "90s", "15m")'
        )
    seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return seconds


def bounded(
    parse: Callable[[str], float], low: float, high: float, show: Callable[[float], str]
) -> Callable[[str], float]:
    """`parse`, refusing values outside [low, high] (a value past them breaks runs: an
    interval of 1ms pulls once, a retention of 99999999999w overflows every date)."""

    def check(text: str) -> float:
        value = parse(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {show(low)} and {show(high)}, got {text!r}")
        return value

    return check


def parse_size(text: str) -> int:
    """Bytes in `text`; a bare number is bytes."""
    if not isinstance(text, str):
        raise ValueError(f'expected a size string like "10MB", got {text!r}')
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f'not a size: {text!r} (use a number and B, KB, MB or GB: "10MB")')
    size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return size


def parse_http_date(text: str) -> datetime | None:
    """An HTTP date (Retry-After, If-Modified-Since) as aware UTC; None when unreadable."""
    from email.utils import parsedate_to_datetime  # 15 ms of imports every command paid

    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def format_size(size: float) -> str:
    """The shortest exact form in B, KB, MB or GB, for messages."""
    for unit in ("gb", "mb", "kb"):
        n = size / _SIZE_UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit.upper()}"
    return f"{int(size)}B"


def format_duration(seconds: float) -> str:
    """The shortest exact form, for messages and status tables."""
    for unit in ("w", "d", "h", "m", "s"):
        n = seconds / _DURATION_UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit}"
    return f"{seconds:g}s"
