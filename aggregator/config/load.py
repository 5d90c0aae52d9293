"""Read `config.toml` into typed `Config`, reporting every problem at once with its place
(where a key is: place.py; what each value may be: validate.py and keys.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from aggregator.config.place import _line_of, entry_names
from aggregator.config.validate import _Validator
from aggregator.errors import ConfigError
from aggregator.model import Config, database_at


def load(path: str | Path) -> Config:
    """The config at `path`, or ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text: {exc}"]) from exc
    return parse(text, path)


def database_of(path: Path) -> Path | str | None:
    """Where the config at `path` keeps its database, read leniently from a config that may
    be invalid (`status` shows the sources from it then); None when it cannot be told."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8").removeprefix("\ufeff"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    section = data.get("aggregator")
    name = section.get("database", "aggregator.db") if isinstance(section, dict) else None
    if name is None and section is None:
        name = "aggregator.db"
    return database_at(path.parent, name) if isinstance(name, str) and name else None


def parse(text: str, path: Path) -> Config:
    """The config in `text`, or ConfigError: whatever the text holds, never another error
    (the daemon's watcher refuses it and goes on with the last good config)."""
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError([f"{path}: TOML nested too deeply to read"]) from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        where = f"{path}:{m.group(1)}" if m else str(path)
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError([f"{where}: TOML syntax error: {msg}"]) from None
    v = _Validator(path, text, entry_names(data))
    config = v.config(data)
    if v.problems:
        raise ConfigError(sorted(v.problems, key=_line_of))
    assert config is not None
    return config


def tags_read(config: Config) -> set[str]:
    """The tags something reads: those with a rule, and those a curated feed selects (a
    source tag outside them is most likely misspelt)."""
    selected = {t for f in config.feeds for t in (*f.any_tags, *f.all_tags, *f.none_tags)}
    return {r.name for r in config.tags} | selected
