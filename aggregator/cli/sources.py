"""`sources export|import|add|remove`: config.toml's sources edited in place (comments
kept), a new feed checked by the same stages a pull runs before it is added."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aggregator.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, run_async
from aggregator.config.load import load
from aggregator.text.urls import canonical

if TYPE_CHECKING:  # the pipeline (0.3 s of imports) is imported by the commands that run it
    from aggregator.ingest.workers import Prepared
    from aggregator.model import Fetched


def cmd_sources_export(args: argparse.Namespace, path: Path) -> int:
    from aggregator.publish import source_rows
    from aggregator.render.opml import render_sources_opml

    config = load(path)
    rows = source_rows(config, {}, {})
    title = f"{config.settings.site_title}: sources"
    sys.stdout.write(render_sources_opml(title, rows).decode("utf-8"))
    return EXIT_OK


def cmd_sources_import(args: argparse.Namespace, path: Path) -> int:
    from aggregator.config.edit import import_sources, parse_opml

    load(path)  # refuse to edit a config that is already invalid
    try:
        outlines = parse_opml(args.file.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"aggregator: {args.file}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    added, skipped = import_sources(path, outlines)
    for name in added:
        print(f"added {name}")
    for o in skipped:
        print(f"skipped {o.url} (already a source)")
    print(f"{len(added)} sources added to {path}, {len(skipped)} already there")
    if added:  # checking hundreds of feeds one by one would take minutes: say so instead
        print(
            "their feeds were not fetched: the next pull tries each, and "
            "`aggregator status` shows how each one did"
        )
    return EXIT_OK


def cmd_sources_add(args: argparse.Namespace, path: Path) -> int:
    from aggregator.config.edit import add_source, slug
    from aggregator.config.keys import LANGUAGE, NAME, closest
    from aggregator.config.load import tags_read
    from aggregator.errors import FetchError, ParseError
    from aggregator.fetch import Fetcher
    from aggregator.model import Source
    from aggregator.normalize import feed_title
    from aggregator.parse.feed import discover_feeds, looks_like_html

    config = load(path)
    # everything that can be checked without the network first
    url = args.url.strip()
    if not url.lower().startswith(("http://", "https://")) or not urlsplit(url).hostname:
        print(f"aggregator: refused: {url!r} is not an http(s) URL", file=sys.stderr)
        return EXIT_USAGE
    if args.name and not NAME.match(args.name):
        print(
            f"aggregator: refused: --name {args.name!r}: lower-case letters, digits and "
            "hyphens, starting with a letter or digit",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.name and args.name in {s.name for s in config.sources}:
        print(f"aggregator: refused: a source is already named {args.name!r}", file=sys.stderr)
        return EXIT_FAILED
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    known = tags_read(config)
    for tag in tags:  # a near miss of a known tag is a typo; another new tag, a warning
        if tag not in known and (hint := closest(tag, known)):
            print(
                f"aggregator: refused: --tags {tag!r}: no tag rule and no curated feed has "
                f"it (did you mean {hint!r}?)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if tag not in known:
            print(f"warning: --tags {tag!r}: no tag rule and no curated feed has it yet")
    if args.language and not LANGUAGE.match(args.language.lower()):
        print(
            f"aggregator: refused: --language {args.language!r}: not a language code (fr, en-GB)",
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def get(url: str) -> Fetched:
        async with Fetcher(config.settings) as fetcher:
            return await fetcher.fetch(url)

    async def prepare(fetched: Fetched) -> Prepared:
        """The pull's own stages and limits, in a worker (parse, normalize, language,
        tag): a document a pull would refuse is refused here too."""
        from aggregator.ingest.workers import ParsePool

        pool = ParsePool(timeout=config.settings.parse_timeout)
        source = Source(name="new", url=url, language=(args.language or "").lower())
        try:
            return await pool.prepare_for(fetched, source, config, datetime.now(UTC))
        finally:
            pool.close()

    try:
        fetched = run_async(get(url))
        if looks_like_html(fetched.body, fetched.content_type):
            found = discover_feeds(fetched.body, fetched.url)
            if not found:
                print(
                    f"aggregator: refused: {url} is a web page that announces no feed",
                    file=sys.stderr,
                )
                return EXIT_FAILED
            choice = 0
            if len(found) > 1:
                for n, (feed_url, kind, title) in enumerate(found, 1):
                    print(f"  {n}. {title or '(untitled)'}  {kind}  {feed_url}")
                if sys.stdin.isatty():
                    answer = input(f"Which feed [1-{len(found)}, default 1]? ").strip() or "1"
                    choice = max(0, min(len(found), int(answer) if answer.isdigit() else 1) - 1)
            url = found[choice][0]
            print(f"found the feed {url} on the page")
            fetched = run_async(get(url))
        prepared = run_async(prepare(fetched))
    except (FetchError, ParseError) as exc:
        kind = getattr(exc, "kind", "error")
        print(f"aggregator: refused: {url} is not a working feed ({kind}: {exc})", file=sys.stderr)
        return EXIT_FAILED
    if canonical(url) in {canonical(s.url) for s in config.sources}:
        print(f"aggregator: refused: {url} is already a source", file=sys.stderr)
        return EXIT_FAILED
    parsed, items = prepared.parsed, prepared.items
    title = feed_title(parsed)
    newest = max(items, key=lambda i: i.published, default=None)
    print(f"title:  {title or '(none)'}\nformat: {parsed.format}\nitems:  {len(items)}")
    if newest is not None:
        print(f"newest: {' '.join(newest.title.split())[:100]} ({newest.published:%Y-%m-%d})")
    name = args.name or slug(title or url, {s.name for s in config.sources})
    entry: dict[str, Any] = {"name": name, "url": url}
    if title:
        entry["title"] = title
    if tags:
        entry["tags"] = tags
    if args.language:
        entry["language"] = args.language.lower()
    add_source(path, entry)
    print(f"added source {name} to {path}")
    return EXIT_OK


def cmd_sources_remove(args: argparse.Namespace, path: Path) -> int:
    from aggregator.config.edit import remove_source

    load(path)
    try:
        remove_source(path, args.name)
    except KeyError:
        print(f"aggregator: refused: no source is named {args.name!r}", file=sys.stderr)
        return EXIT_FAILED
    print(f"removed source {args.name} from {path}")
    return EXIT_OK
