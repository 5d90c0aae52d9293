"""Store -> select -> render -> files: atomic writes, and untouched files when nothing changed.

A feed reader polling with If-Modified-Since, or a sync tool, sees a file change only when
its content did: bytes are compared before writing, and the feed's dates come from items.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aggregator.model import Config
from aggregator.render import prepare
from aggregator.render.atom import render_atom
from aggregator.render.jsonfeed import render_json
from aggregator.render.rss import render_rss
from aggregator.select import group, select
from aggregator.store import Store

RENDERERS = (("rss", render_rss), ("atom", render_atom), ("json", render_json))


@dataclass(frozen=True)
class Published:
    feed: str
    items: int
    written: tuple[Path, ...]  # files whose bytes changed


def publish(store: Store, config: Config) -> list[Published]:
    """Write every curated feed of `config` in every format; returns what was written."""
    out_dir = config.settings.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    stories = group(s.item for s in store.items())
    sources = {s.name: s for s in config.sources}
    rows = store.source_rows()
    titles = {r["name"]: r["feed_title"] for r in rows}
    links = {r["name"]: r["feed_link"] for r in rows}
    results = []
    for feed in config.feeds:
        chosen = select(stories, feed, sources, config.default_language)
        doc = prepare(feed, chosen, config, titles, links)
        written = []
        for suffix, render in RENDERERS:
            path = out_dir / f"{feed.name}.{suffix}"
            if write_if_changed(path, render(doc)):
                written.append(path)
        results.append(Published(feed.name, len(chosen), tuple(written)))
    return results


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically replace `path` with `data` unless it already holds exactly that."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True
