"""Storage -> select -> render -> files: atomic writes, and untouched files when nothing changed.

A feed reader polling with If-Modified-Since, or a sync tool, sees a file change only when
its content did: bytes are compared before writing, and the feed's dates come from items.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aggregator.faults import crash_point
from aggregator.model import Config, SourceRecord
from aggregator.render import prepare
from aggregator.render.atom import render_atom
from aggregator.render.index import SourceRow, render_index
from aggregator.render.jsonfeed import render_json
from aggregator.render.opml import render_feeds_opml, render_sources_opml
from aggregator.render.rss import render_rss
from aggregator.select import Story, group, newest_first, select, story_tags
from aggregator.storage import Storage

log = logging.getLogger("aggregator.publish")
RENDERERS = (("rss", render_rss), ("atom", render_atom), ("json", render_json))


@dataclass(frozen=True)
class Published:
    feed: str
    items: int
    written: tuple[Path, ...]  # files whose bytes changed


LEFTOVER_AGE = 600.0  # seconds: a temporary file this old is a crash's, whoever wrote it


def _writer() -> str:
    """Who writes a temporary file, in its name: this host and process."""
    return f"{os.uname().nodename.replace('.', '_')}-{os.getpid()}"


def _remove_leftovers(out_dir: Path) -> None:
    """Temporary files a crash left between write and rename: those of a dead process of
    this host, and any older than LEFTOVER_AGE. Another writer's fresh one stays (a second
    node publishing to a shared folder renames it a few milliseconds later)."""
    import time

    host = _writer().rpartition("-")[0]
    for leftover in out_dir.glob(".*.tmp"):
        # ".all.rss.HOST-PID.RANDOM.tmp"; a name without a writer is an older version's
        who, _, pid = leftover.name.rsplit(".", 3)[-3].rpartition("-")
        with contextlib.suppress(OSError):  # gone meanwhile: renamed by its writer
            if (
                time.time() - leftover.stat().st_mtime > LEFTOVER_AGE
                or not pid.isdigit()
                or (who == host and not _alive(int(pid)))
            ):
                leftover.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def publish(store: Storage, config: Config) -> list[Published]:
    """Write every curated feed of `config` in every format; returns what was written."""
    out_dir = config.settings.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)
    stories = group(store.copies())
    tags_of = story_tags(stories)
    order = newest_first(stories)
    sources = {s.name: s for s in config.sources}
    rows = store.source_rows()
    titles = {r.name: r.feed_title for r in rows}
    links = {r.name: r.feed_link for r in rows}
    results = []
    docs = []
    for feed in config.feeds:
        light = select(stories, feed, sources, config.default_language, tags_of, order)
        full = store.items_by_uid([c.uid for story in light for c in (story.item, *story.others)])
        chosen = [
            Story(
                story.id,
                full[story.item.uid],
                story.tags,
                tuple(full[c.uid] for c in story.others),
            )
            for story in light
        ]
        doc = prepare(feed, chosen, config, titles, links, _empty_since(store, feed.name, chosen))
        docs.append(doc)
        written = []
        for suffix, render in RENDERERS:
            path = out_dir / f"{feed.name}.{suffix}"
            try:
                data = render(doc)
            except ValueError:  # a renderer's refusal costs this file, never the others
                log.exception("rendering %s failed; the previous file stays", path.name)
                continue
            if write_if_changed(path, data):
                written.append(path)
        results.append(Published(feed.name, len(chosen), tuple(written)))
    counts: dict[str, int] = {}
    for copies in stories.values():
        for item in copies:
            counts[item.source] = counts.get(item.source, 0) + 1
    health = source_rows(config, {r.name: r for r in rows}, counts)
    title = config.settings.site_title
    site = [
        (
            out_dir / "index.html",
            render_index(title, docs, health, config.settings.public_source_health),
        ),
        (out_dir / "sources.opml", render_sources_opml(f"{title}: sources", health)),
        (out_dir / "feeds.opml", render_feeds_opml(title, docs)),
    ]
    results.append(
        Published("index", len(docs), tuple(p for p, data in site if write_if_changed(p, data)))
    )
    return results


def _empty_since(store: Storage, feed: str, chosen: list[Any]) -> datetime | None:
    """When an empty feed became empty: its date, stable from one publish to the next (an
    empty feed had claimed to be last built in 2000)."""
    key = f"empty_since:{feed}"
    since = store.meta(key)
    if chosen:
        if since:
            with store.transaction():
                store.set_meta(key, "")
        return None
    if not since:
        since = datetime.now(UTC).replace(microsecond=0).isoformat()
        with store.transaction():
            store.set_meta(key, since)
    return datetime.fromisoformat(since)


def source_rows(
    config: Config, state: dict[str, SourceRecord], counts: dict[str, int]
) -> list[SourceRow]:
    """The sources as readers see them: title, links, health, items held."""
    out = []
    for s in config.sources:
        r = state.get(s.name)
        if not s.enabled:
            status = "disabled"
        elif r is None or r.last_pull is None:
            status = "never pulled"
        elif r.last_error_kind:
            status = f"failing: {r.last_error_kind}"
        else:
            status = "ok"
        title = s.title or (r.feed_title if r else "") or s.name
        home = r.feed_link if r else ""
        out.append(SourceRow(s.name, title, s.url, home, status, counts.get(s.name, 0), s.language))
    return out


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically replace `path` with `data` unless it already holds exactly that."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        crash_point(f"before-rename:{path.name}")
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
