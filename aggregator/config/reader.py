"""Reading one value of config.toml with its place: the typed getters the validator uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aggregator.config.keys import URL, closest
from aggregator.config.place import Path_, _locate, place


class Reader:
    """Typed getters over a TOML table: a wrong value is recorded with its place (file, line,
    key path) and the default returned, so reading goes on to the next problem."""

    def __init__(self, path: Path, text: str, names: dict[Path_, str]):
        self.path = path
        self.text = text
        self.names = names
        self.problems: list[str] = []
        self._lines: dict[Path_, int] | None = None

    @property
    def lines(self) -> dict[Path_, int]:
        """Each key path's line, found when a problem first needs one (a valid config is
        read without: scanning 200 sources' lines was a third of `check`'s reading)."""
        if self._lines is None:
            self._lines = _locate(self.text)
        return self._lines

    def err(self, where: Path_, message: str) -> None:
        self.problems.append(f"{place(self.path, self.lines, where, self.names)}: {message}")

    # typed getters: record a problem and return the default when the value is wrong

    def table(self, data: dict[str, Any], key: str, where: Path_ = ()) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.err((*where, key), "must be a table")
            return {}
        return value

    def unknown(self, data: dict[str, Any], allowed: set[str], where: Path_) -> None:
        for key in data:
            if key not in allowed:
                hint = closest(key, allowed)
                self.err(
                    (*where, key), "unknown key" + (f" (did you mean {hint!r}?)" if hint else "")
                )

    def get(
        self,
        data: dict[str, Any],
        key: str,
        kind: type | tuple[type, ...],
        where: Path_,
        default: Any,
    ) -> Any:
        if key not in data:
            return default
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_kind_name(k) for k in kinds)
            self.err((*where, key), f"must be {names}, got {value!r}")
            return default
        return value

    def strings(self, data: dict[str, Any], key: str, where: Path_) -> tuple[str, ...]:
        value = self.get(data, key, list, where, [])
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.err((*where, key, i), f"must be a non-empty string, got {item!r}")
            else:
                out.append(item)
        return tuple(out)

    def converted(
        self,
        data: dict[str, Any],
        key: str,
        where: Path_,
        default: Any,
        convert: Callable[[Any], Any],
    ) -> Any:
        if key not in data:
            return default
        try:
            return convert(data[key])
        except ValueError as exc:
            self.err((*where, key), str(exc))
            return default

    def url(
        self, data: dict[str, Any], key: str, where: Path_, default: str, required: bool = False
    ) -> str:
        if key not in data:
            if required:
                self.err((*where, key), "missing (an http(s) URL is required)")
            return default
        value = data[key]
        if not isinstance(value, str) or not URL.match(value):
            self.err((*where, key), f"not an http(s) URL: {value!r}")
            return default
        return value


def _kind_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "an array",
        dict: "a table",
    }.get(kind, kind.__name__)
