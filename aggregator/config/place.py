"""Where a key is in config.toml: tomllib gives values without positions, so `_locate`
scans the text for table headers and `key =` lines to name the line of each key path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from aggregator.config.keys import NAME

Path_ = tuple[str | int, ...]


_KEY_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)')
_ARRAY_TABLE = re.compile(r"^\[\[\s*([^\]]+?)\s*\]\]")
_TABLE = re.compile(r"^\[\s*([^\]]+?)\s*\]")
_KEY_VALUE = re.compile(r'^((?:"[^"]*"|\'[^\']*\'|[A-Za-z0-9_.\s-])+?)\s*=\s*(.*)$')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _split_key(key: str) -> list[str]:
    return [a or b or c for a, b, c in _KEY_PART.findall(key)]


def _locate(text: str) -> dict[Path_, int]:
    """Line number of each table and key path (array-of-tables indexed from 0)."""
    lines: dict[Path_, int] = {}
    counts: dict[tuple[str, ...], int] = {}
    table: Path_ = ()
    depth = 0  # open brackets/braces of a multi-line value
    in_string = ""
    for n, line in enumerate(text.splitlines(), 1):
        if in_string:
            if in_string in line:
                in_string = ""
            continue
        if depth:
            depth += _bracket_balance(line)
            continue
        s = line.strip()
        if not s or s[0] == "#":
            continue
        if m := _ARRAY_TABLE.match(s):
            name = tuple(_split_key(m.group(1)))
            counts[name] = counts.get(name, -1) + 1
            table = (*name, counts[name])
            lines.setdefault(table, n)
        elif m := _TABLE.match(s):
            table = tuple(_split_key(m.group(1)))
            lines.setdefault(table, n)
        elif m := _KEY_VALUE.match(s):
            key = (*table, *_split_key(m.group(1)))
            lines.setdefault(key, n)
            value = m.group(2)
            for quote in ('"""', "'''"):
                if value.startswith(quote) and value.count(quote) == 1:
                    in_string = quote
            if not in_string:
                depth = max(0, _bracket_balance(value))
    return lines


def _bracket_balance(text: str) -> int:
    if "[" not in text and "{" not in text and "]" not in text and "}" not in text:
        return 0  # most values: a string or a number (a check of a long config reads them all)
    text = _STRING.sub("", text)
    text = text.split("#", 1)[0]
    return text.count("[") + text.count("{") - text.count("]") - text.count("}")


def place(
    path: Path, lines: dict[Path_, int], where: Path_, names: Mapping[Path_, str] | None = None
) -> str:
    """`config.toml:12: sources["coindesk"].url`: the file as given (a path that can be
    clicked from where the command ran), the nearest line known for a key path, and the
    key path with each source and feed named (`names`: ("sources", 2) -> "coindesk")."""
    line = None
    for i in range(len(where), 0, -1):
        if (line := lines.get(where[:i])) is not None:
            break
    shown = _show(where, names or {})
    return f"{path}:{line}: {shown}" if line else f"{path}: {shown}"


def entry_names(data: object) -> dict[Path_, str]:
    """("sources", 2) -> "coindesk" for each source and feed whose name is valid and unique
    (an index says more about a duplicate or a missing name)."""
    names: dict[Path_, str] = {}
    if not isinstance(data, dict):
        return names
    for section in ("sources", "feeds"):
        entries = data.get(section)
        if not isinstance(entries, list):
            continue
        found = [e.get("name") if isinstance(e, dict) else None for e in entries]
        for i, name in enumerate(found):
            if isinstance(name, str) and NAME.match(name) and found.count(name) == 1:
                names[(section, i)] = name
    return names


def key_lines(path: Path) -> dict[Path_, int]:
    """Line of each key path of the config file at `path` (for messages about it)."""
    try:
        return _locate(path.read_text(encoding="utf-8"))
    except OSError:
        return {}


def _show(path: Path_, names: Mapping[Path_, str]) -> str:
    out = ""
    for n, part in enumerate(path):
        if isinstance(part, int):
            name = names.get(path[: n + 1])
            out += f'["{name}"]' if name else f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _line_of(problem: str) -> int:
    m = re.match(r"^[^:]*:(\d+):", problem)
    return int(m.group(1)) if m else 0
