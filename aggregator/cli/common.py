"""What the commands share: exit codes, the event loop, and how times and tables print."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # what a pull makes (aggregator.model.items) loads when a pull runs
    from aggregator.model import TagMatch


T = TypeVar("T")


EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


EXIT_USAGE = 2  # a command line argparse could parse but that cannot work, as argparse's own


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop where it is installed (not on Windows): a pass of 304s is
    mostly event-loop work, 12-15% less wall time on uvloop (bench/, 200 sources)."""
    import asyncio  # here: a cron run with nothing due needs no event loop

    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def reason(m: TagMatch) -> str:
    if m.rule in ("name", "lean", "once"):
        first, _, word = m.matched.partition(" + ")
        if m.rule == "name":
            return f'name "{first}" beside "{word}"'
        if m.rule == "once":
            return f'keyword "{first}" said once, and the topic model agrees ({word})'
        return f'source {first} leans to it, "{word}" in the text'
    return {
        "keyword": f'keyword "{m.matched}"',
        "pattern": f'pattern matched "{m.matched}"',
        "category": f'feed category "{m.matched}"',
        "implied": f"implied by {m.matched}",
        "source": f"every item of source {m.matched}",
        "model": f"the topic model ({m.matched})",
    }.get(m.rule, f"{m.rule} {m.matched}")


def print_table(
    rows: Sequence[tuple[str, ...]], width: int = 0, details: list[str] | None = None
) -> None:
    """Rows in aligned columns, each row's `details` (one per row after the header) below
    it, indented. With a terminal's `width`, details are wrapped to it, and a table wider
    than it moves its last column into the details."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if width and details is not None and sum(widths) + 2 * (len(widths) - 1) > width:
        # too wide: the last column goes below each row, with the details
        header, *body = rows
        details = [
            f"{header[-1]}: {row[-1]}" + (f"; {d}" if d else "")
            for row, d in zip(body, details, strict=True)
        ]
        rows = [r[:-1] for r in rows]
        widths.pop()
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        if width:
            cells[-1] = cells[-1][: max(0, width - sum(widths[:-1]) - 2 * (len(widths) - 1))]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
        elif details and details[n - 1]:
            if not width:  # a file or a pipe: one line, for grep
                print(f"    {details[n - 1]}")
                continue
            for line in textwrap.wrap(details[n - 1], max(20, width - 4)):
                print(f"    {line}")


def when_short(at: datetime) -> str:
    """12:44Z today, else 2026-12-07 12:44Z: when a skipped source is next due."""
    if at.date() == datetime.now(UTC).date():
        return at.strftime("%H:%MZ")
    return at.strftime("%Y-%m-%d %H:%MZ")


def terminal_width() -> int:
    """The terminal's width when stdout is one, else 0: files and pipes get whole lines."""
    if not sys.stdout.isatty():
        return 0
    import shutil  # here: 3 ms of every command's start (it imports bz2 and lzma)

    return shutil.get_terminal_size((80, 24)).columns
