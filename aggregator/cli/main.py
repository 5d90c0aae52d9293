"""Arguments -> one function per command -> exit codes, and what each command prints.

The stages do the work; a command opens the config and the store, calls them and says
what happened. `main` turns every error into one line and an exit code: 2 for a config
or a command line, 1 for the rest, 141 for a closed pipe.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from aggregator import __version__
from aggregator.config.load import load
from aggregator.errors import AggregatorError, ConfigError, LockedError
from aggregator.model import Config, Item, PullOutcome, Source, SourceRecord, TagMatch
from aggregator.select import why_stand_in
from aggregator.storage import DRIVER_ERRORS, Storage, open_store
from aggregator.storage.sqlite import Lock
from aggregator.tagging import tagger_for
from aggregator.text.urls import canonical

if TYPE_CHECKING:  # the pipeline (0.3 s of imports) is imported by the commands that run it
    from aggregator.ingest.pipeline import PassResult
    from aggregator.model import Fetched
    from aggregator.schedule import Plan

T = TypeVar("T")
log = logging.getLogger("aggregator.cli.main")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_USAGE = 2  # a command line argparse could parse but that cannot work, as argparse's own


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop where it is installed (not on Windows): a pass of 304s is
    mostly event-loop work, 12-15% less wall time on uvloop (bench/, 200 sources)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    daemon = args.command == "serve" or (args.command == "run" and not args.once)
    _setup_logging(args.log_format, args.verbose, terse=not daemon)
    config_path = Path(args.config or os.environ.get("AGGREGATOR_CONFIG") or "config.toml")
    try:
        return int(args.func(args, config_path))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        n = len(exc.problems)
        print(f"{config_path}: {n} problem{'s' if n != 1 else ''}", file=sys.stderr)
        return EXIT_CONFIG
    except LockedError as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except AggregatorError as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except DRIVER_ERRORS as exc:  # locked past busy_timeout, disk full, corrupt page
        print(f"aggregator: database error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("aggregator: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `explain ... | head`: the reader has what it wanted
        # Python would complain again when it flushes stdout at exit: point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command the pipe stopped
    except Exception as exc:  # a bug: one line for the user, the traceback for a report
        log.debug("unexpected error", exc_info=True)
        print(
            f"aggregator: unexpected error: {type(exc).__name__}: {exc} "
            "(a bug: please report it with the output of the same command run with -v)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aggregator",
        description="Pull news feeds, drop duplicates, tag and republish curated feeds.",
    )
    # The global options work on either side of the command ("run --once --log-format
    # json", as README's cron line writes it): every command's parser knows them too, with
    # defaults suppressed so that one given before the command is not overwritten.
    common = argparse.ArgumentParser(add_help=False)
    for parser, defaults in ((p, True), (common, False)):
        parser.add_argument(
            "--config",
            default=None if defaults else argparse.SUPPRESS,
            help="config file (default: $AGGREGATOR_CONFIG, then ./config.toml)",
        )
        parser.add_argument(
            "--log-format",
            choices=("plain", "json"),
            default="plain" if defaults else argparse.SUPPRESS,
        )
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=False if defaults else argparse.SUPPRESS,
            help="log debug details",
        )
    p.add_argument("--version", action="version", version=f"aggregator {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check", parents=[common], help="validate the config and report every problem"
    )
    check.set_defaults(func=cmd_check)

    run = sub.add_parser("run", parents=[common], help="pull, process and publish")
    run.add_argument(
        "--once", action="store_true", help="one pass over the sources due, then exit (cron)"
    )
    run.add_argument(
        "--all", action="store_true", help="with --once: pull every source, due or not"
    )
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", parents=[common], help="serve the output folder only")
    serve.add_argument("--listen", help='host:port (default: the config\'s "listen")')
    serve.set_defaults(func=cmd_serve)

    status = sub.add_parser(
        "status", parents=[common], help="a table of sources and their last pull"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    sources = sub.add_parser(
        "sources", parents=[common], help="the sources as OPML: export, import"
    )
    sources_sub = sources.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = sources_sub.add_parser("export", parents=[common], help="print the sources as OPML")
    export.set_defaults(func=cmd_sources_export)
    imp = sources_sub.add_parser(
        "import", parents=[common], help="add the feeds of an OPML file to config.toml"
    )
    imp.add_argument("file", type=Path)
    imp.set_defaults(func=cmd_sources_import)
    add = sources_sub.add_parser(
        "add", parents=[common], help="check a feed (or a page announcing one) and add it"
    )
    add.add_argument("url")
    add.add_argument("--name", help="the source's name (default: from the feed's title)")
    add.add_argument("--tags", default="", help="tags for all its items, comma-separated")
    add.add_argument("--language", default="", help="when the feed does not say, e.g. fr")
    add.set_defaults(func=cmd_sources_add)
    remove = sources_sub.add_parser(
        "remove", parents=[common], help="remove a source from config.toml"
    )
    remove.add_argument("name")
    remove.set_defaults(func=cmd_sources_remove)

    refresh = sub.add_parser(
        "refresh", parents=[common], help="pull a source now (asks the running daemon)"
    )
    which = refresh.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="the source to pull")
    which.add_argument("--all", action="store_true", help="every enabled source")
    refresh.set_defaults(func=cmd_refresh)
    reset = sub.add_parser(
        "reset", parents=[common], help="forget a source's failures (and 410) and pull it now"
    )
    reset.add_argument("name", help="the source")
    reset.set_defaults(func=cmd_reset)

    prev = sub.add_parser(
        "preview", parents=[common], help="what the edited config would change, per feed"
    )
    prev.add_argument("--against", type=Path, help="preview this config file instead")
    prev.add_argument("--json", action="store_true", help="machine-readable output")
    prev.set_defaults(func=cmd_preview)

    schema = sub.add_parser("schema", parents=[common], help="print the JSON Schema of config.toml")
    schema.set_defaults(func=cmd_schema)

    tags = sub.add_parser(
        "tags", parents=[common], help="the tags the current rules give a text, and why"
    )
    what = tags.add_mutually_exclusive_group(required=True)
    what.add_argument("text", nargs="?", help="the text to tag")
    what.add_argument("--file", type=Path, help="tag the text of this file")
    what.add_argument("--url", help="tag the stored item with this link")
    tags.set_defaults(func=cmd_tags)

    explain = sub.add_parser(
        "explain", parents=[common], help="why an item has its tags, and its story cluster"
    )
    explain.add_argument("url", help="the link of any copy (tracking parameters and all)")
    explain.set_defaults(func=cmd_explain)
    return p


# ---------------------------------------------------------------- commands


def cmd_check(args: argparse.Namespace, path: Path) -> int:
    from aggregator.cli.advice import READ_AT_MOST, advise
    from aggregator.config.load import key_lines, place

    config = load(path)
    items: list = []
    rows: dict[str, SourceRecord] = {}
    stored = 0
    if config.settings.database.exists():
        store = open_store(config.settings.database)
        try:
            items = store.items(newest=READ_AT_MOST)
            stored = store.count_items()
            rows = {r.name: r for r in store.source_rows()}
        finally:
            store.close()
    warnings = advise(config, items, rows, datetime.now(UTC), stored)
    lines = key_lines(path) if warnings else {}
    names: dict[tuple[str | int, ...], str] = {
        ("sources", n): s.name for n, s in enumerate(config.sources)
    }
    names |= {("feeds", n): f.name for n, f in enumerate(config.feeds)}
    for where, message in warnings:
        print(f"{place(path, lines, where, names)}: warning: {message}")
    print(
        f"{path}: OK ({len(config.sources)} sources, {len(config.tags)} tags, "
        f"{len(config.feeds)} feeds)"
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace, path: Path) -> int:
    if args.all and not args.once:
        print("aggregator: --all goes with --once (the daemon keeps the schedule)", file=sys.stderr)
        return EXIT_USAGE
    config = load(path)
    with Lock(config.settings.database):
        store = open_store(config.settings.database)
        try:
            plan = None  # run --once: the sources due now, and those left for later
            if args.once:
                from aggregator.schedule import due_sources

                states, now = store.source_states(), datetime.now(UTC)
                plan = due_sources(config.sources, config.settings.interval, states, now, args.all)
            if plan is None or plan[0]:
                # the pass's own modules (numpy, feedgen, pebble: ~0.2 s) load before it
                # starts, as before; a cron run with nothing due never loads them
                pass
            if plan is None or _documents_likely(store, plan[0]):
                from aggregator.ingest.workers import start_server

                start_server()  # its imports run on the other core while this one starts
            # What a pull creates dies by reference counting: a young-generation collection
            # every 10,000 allocations rather than 700 (they were 3% of this process's CPU
            # in a bench pass), and what lives as long as the process is frozen, not walked.
            gc.freeze()
            gc.set_threshold(10_000, 10, 10)
            if not args.once:
                from aggregator.daemon import Daemon

                return run_async(Daemon(path, config, store).run())
            assert plan is not None  # run --once
            result = _run_with_progress(config, store, plan)
        finally:
            store.close()
    if args.log_format == "json":
        _log_summary(config, result)  # a JSON log stays one JSON object per line
    else:
        _print_summary(config, result)
    if result.publish_error:
        print(
            f"aggregator: {result.publish_error}; the previous files stay, the next run "
            "publishes again",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_FAILED if result.all_failed else EXIT_OK


def _documents_likely(store: Storage, due: list[Source]) -> bool:
    """Some source due now was never pulled (this pass has a document to parse for sure),
    or its last pull brought new items (a live feed: it likely changed again). Started
    late, at the first document, the parse workers' imports delay the pass by ~0.4 s; a
    pass of 304s would only pay for starting them: +0.08 s on 200 sources."""
    rows = {r.name: r for r in store.source_rows()}
    for source in due:
        row = rows.get(source.name)
        if row is None or row.last_pull is None or row.last_new:
            return True
    return False


def cmd_serve(args: argparse.Namespace, path: Path) -> int:
    from aggregator.config.load import listen_problem

    config = load(path)
    listen = args.listen or config.settings.listen or "127.0.0.1:8080"
    if args.listen and (problem := listen_problem(args.listen)):
        print(f"aggregator: --listen {problem}", file=sys.stderr)
        return EXIT_USAGE

    async def serve_until_stopped() -> int:
        import signal

        from aggregator import serve

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = await serve.start(
            config.settings.output_dir,
            listen,
            lambda: {"status": "ok"},
            max_age=int(min(config.settings.interval, 3600)),
            hint="; choose another with --listen HOST:PORT" if args.listen else "",
        )
        await stop.wait()
        await runner.cleanup()
        return EXIT_OK

    return run_async(serve_until_stopped())


def cmd_status(args: argparse.Namespace, path: Path) -> int:
    """The sources and their last pull, from the database. With config.toml invalid (the
    moment an operator needs this most) it still shows them, and says so."""
    from aggregator.config.load import database_of

    refused_now: ConfigError | None = None
    try:
        config: Config | None = load(path)
    except ConfigError as exc:
        config, refused_now = None, exc
    database = config.settings.database if config else database_of(path)
    if refused_now is not None and (database is None or not database.exists()):
        raise refused_now  # nothing stored to show: the problems are all there is
    assert database is not None
    rows: dict[str, SourceRecord] = {}
    refused = ""
    if database.exists():
        store = open_store(database)
        try:
            rows = {r.name: r for r in store.source_rows()}
            refused = store.meta("config_refused")
        finally:
            store.close()
    sources = config.sources if config else ()
    names = [s.name for s in sources] + sorted(set(rows) - {s.name for s in sources})
    report = [_status_record(name, config, rows.get(name)) for name in names]
    notes = _status_notes(path, refused_now, refused, database)
    if args.json:
        print(json.dumps({"notes": notes, "sources": report}, ensure_ascii=False, indent=2))
    else:
        for note in notes:
            print(textwrap.fill(note, _width()) if _width() else note)
        if not database.exists():
            print("no pulls yet (the database does not exist)")
        else:
            _print_status(report)
    return EXIT_OK


def _status_notes(
    path: Path, refused_now: ConfigError | None, refused: str, database: Path
) -> list[str]:
    notes = []
    if refused_now is not None:
        n = len(refused_now.problems)
        notes.append(
            f"{path}: invalid ({n} problem{'s' * (n != 1)}: {refused_now.problems[0]}; "
            f"`aggregator check` lists them); the sources below are those in {database}"
        )
    if refused:
        data = json.loads(refused)
        notes.append(
            f"{path} refused by the running daemon at {data['at'][11:16]}Z "
            f"({data['first']}): it is running on the last good one"
        )
    return notes


def _status_record(name: str, config: Config | None, r: SourceRecord | None) -> dict:
    source = config.source(name) if config else None
    record: dict[str, Any] = {"source": name}
    if config is not None and source is None:
        record["note"] = "not in config.toml any more"
    elif source is not None and not source.enabled:
        record["note"] = "disabled"
    if r is None:
        return record | {"last_pull": None, "result": "never pulled", "next_reason": "first pull"}
    record |= {
        "last_pull": _iso(r.last_pull),
        "result": r.last_error_kind or "ok",
        ("message" if r.last_error_kind else "warning"): r.last_error,
        "http": r.last_status,
        "items": r.last_items,
        "failures": r.consecutive_failures,
        "next_pull": _iso(r.next_pull) if "note" not in record else None,
        "next_reason": record.get("note", r.next_reason),
    }
    if r.redirect_url and r.redirect_count >= 3:
        record["moved_to"] = r.redirect_url
    return record


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


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
    from aggregator.config.load import LANGUAGE, NAME, closest, tags_read
    from aggregator.errors import FetchError, ParseError
    from aggregator.fetch import Fetcher
    from aggregator.normalize import feed_title
    from aggregator.parse.feed import discover_feeds, looks_like_html, parse

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
        parsed = parse(fetched.body, fetched.url, fetched.content_type)
    except (FetchError, ParseError) as exc:
        kind = getattr(exc, "kind", "error")
        print(f"aggregator: refused: {url} is not a working feed ({kind}: {exc})", file=sys.stderr)
        return EXIT_FAILED
    if canonical(url) in {canonical(s.url) for s in config.sources}:
        print(f"aggregator: refused: {url} is already a source", file=sys.stderr)
        return EXIT_FAILED
    title = feed_title(parsed)
    newest = max(
        parsed.entries,
        key=lambda e: e.published or e.updated or datetime.min.replace(tzinfo=UTC),
        default=None,
    )
    print(f"title:  {title or '(none)'}\nformat: {parsed.format}\nitems:  {len(parsed.entries)}")
    if newest is not None:
        when = newest.published or newest.updated
        print(
            f"newest: {' '.join(newest.title.split())[:100]}"
            + (f" ({when:%Y-%m-%d})" if when else "")
        )
    name = args.name or slug(title or url, {s.name for s in config.sources})
    entry: dict = {"name": name, "url": url}
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


def cmd_preview(args: argparse.Namespace, path: Path) -> int:
    from aggregator.cli.preview import READ_AT_MOST, Entry, as_text, preview

    live = load(path)
    candidate = load(args.against) if args.against else live
    published: dict[str, list[Entry]] = {}
    for file in sorted(live.settings.output_dir.glob("*.json")):
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not str(doc.get("version", "")).startswith("https://jsonfeed.org/"):
            continue
        published[file.stem] = [
            Entry(i.get("id", ""), i.get("title", ""), (i.get("_source") or {}).get("title", ""))
            for i in doc.get("items", [])
        ]
    items, stored = [], 0
    if live.settings.database.exists():
        store = open_store(live.settings.database)
        try:
            items = store.items(newest=READ_AT_MOST)
            stored = store.count_items()
        finally:
            store.close()
    result = preview(candidate, items, published, stored)
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(as_text(result, args.against or path, path))
    return EXIT_OK


def cmd_refresh(args: argparse.Namespace, path: Path) -> int:
    return _control(path, "refresh", "*" if args.all else args.name)


def cmd_reset(args: argparse.Namespace, path: Path) -> int:
    return _control(path, "reset", args.name)


def _control(path: Path, action: str, name: str) -> int:
    """`refresh` and `reset`. With a daemon running (it holds the lock), the request goes
    through the database, which the daemon reads every second: no socket to secure, no
    signal to send across users, and it works on every machine sharing the database's
    folder. Without one, the command does the work itself."""
    from aggregator.config.load import closest
    from aggregator.errors import LockedError

    config = load(path)
    names = {s.name for s in config.sources}
    if name != "*" and name not in names:
        hint = closest(name, names)
        print(
            f"aggregator: no source named {name!r} in {path}"
            + (f" (did you mean {hint!r}?)" if hint else ""),
            file=sys.stderr,
        )
        return EXIT_USAGE
    source = config.source(name)
    if source is not None and not source.enabled:
        print(f"aggregator: {name} is disabled (enabled = false in {path})", file=sys.stderr)
        return EXIT_USAGE
    what = "every source" if name == "*" else name
    try:
        lock = Lock(config.settings.database)
    except LockedError:  # a daemon (or a run --once) is running: ask it
        store = open_store(config.settings.database)
        try:
            request = store.ask(action, name, time.time())
            deadline = time.monotonic() + 5
            while store.pending(request) and time.monotonic() < deadline:
                time.sleep(0.2)
            if store.pending(request):
                print(
                    f"asked the running aggregator to {action} {what}; it has not taken the "
                    "request within 5 s (a run --once ends without reading it; a daemon "
                    "takes it when it can)"
                )
            else:
                print(
                    f"the running daemon took the request: {what} is pulled now "
                    "(`aggregator status` shows how it went)"
                )
        finally:
            store.close()
        return EXIT_OK
    with lock:  # no daemon: do it here
        store = open_store(config.settings.database)
        try:
            if action == "reset":
                with store.transaction():
                    store.reset_source(name)
            from aggregator.ingest.pipeline import run_pass

            only = None if name == "*" else frozenset({name})
            result = run_async(run_pass(config, store, everything=True, only=only))
        finally:
            store.close()
    _print_summary(config, result)
    return EXIT_FAILED if result.all_failed else EXIT_OK


def cmd_schema(args: argparse.Namespace, path: Path) -> int:
    from aggregator.config.schema import render

    sys.stdout.write(render())
    return EXIT_OK


def cmd_tags(args: argparse.Namespace, path: Path) -> int:
    config = load(path)
    tagger = tagger_for(config)
    problems: list[str] = []
    passing: list[str] = []
    if args.url:
        found = _stored_item(config, args.url)
        if found is None:
            return EXIT_FAILED
        item, _ = found
        source = config.source(item.source)
        matches = tagger.tag(
            item,
            source.tags if source else (),
            problems,
            source.leans if source else (),
            passing,
        )
        print(f"{item.title} ({item.source})")
    else:
        text = _read_text(args.file) if args.file else args.text
        matches = tagger.tag_text(text, problems=problems, passing=passing)
        from aggregator.language import decide

        print(f"{'language':<16} {decide(text, '', '').reason}")
        print(f"{'topic model':<16} {_topic_scores(config, text)}")
    by_tag: dict[str, list[str]] = {}
    for m in matches:
        by_tag.setdefault(m.tag, []).append(_reason(m))
    for tag, reasons in by_tag.items():
        print(f"{tag:<16} {'; '.join(reasons)}")
    if not by_tag:
        print("no tag")
    if passing:
        print(f"{'in passing':<16} {'; '.join(passing)} (not counted: see `passing`)")
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return EXIT_OK


def _read_text(path: Path) -> str:
    """The text of `--file`: "-" is standard input."""
    if str(path) == "-":
        return sys.stdin.buffer.read().decode("utf-8", errors="replace")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise AggregatorError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _reason(m: TagMatch) -> str:
    if m.rule in ("name", "lean"):
        first, _, word = m.matched.partition(" + ")
        if m.rule == "name":
            return f'name "{first}" beside "{word}"'
        return f'source {first} leans to it, "{word}" in the text'
    return {
        "keyword": f'keyword "{m.matched}"',
        "pattern": f'pattern matched "{m.matched}"',
        "category": f'feed category "{m.matched}"',
        "implied": f"implied by {m.matched}",
        "source": f"every item of source {m.matched}",
        "model": f"the topic model ({m.matched})",
    }.get(m.rule, f"{m.rule} {m.matched}")


def cmd_explain(args: argparse.Namespace, path: Path) -> int:
    config = load(path)
    found = _stored_item(config, args.url)
    if found is None:
        return EXIT_FAILED
    print(explain_text(*found, config))
    return EXIT_OK


def _stored_item(config: Config, url: str) -> tuple[Item, list[Item]] | None:
    """The stored item a link (any copy's, tracking parameters and all) names, with its
    story's copies; None, after saying why, when there is none."""
    if not config.settings.database.exists():
        print("no pulls yet (the database does not exist)", file=sys.stderr)
        return None
    store = open_store(config.settings.database)
    try:
        url = url.strip()
        found = []
        if url.startswith("urn:uuid:"):  # the id a reader sees in the published feed
            found = list(store.items_by_uid([url]).values())
        for variant in _link_variants(url) if not found else ():
            if found := store.items_by_link(canonical(variant), variant):
                break
        if not found:
            print(f"unknown: no stored item links to {url}", file=sys.stderr)
            return None
        return found[0], store.story_items(found[0].story)
    finally:
        store.close()


def _link_variants(url: str) -> list[str]:
    """The link as given, then with the other scheme and the trailing slash toggled: a link
    copied from a browser is often the https, slash-less form of the one the feed gave."""
    variants = [url]
    for scheme_of in (
        url,
        url.replace("https://", "http://", 1),
        url.replace("http://", "https://", 1),
    ):
        for slash in (scheme_of, scheme_of[:-1] if scheme_of.endswith("/") else scheme_of + "/"):
            if slash not in variants:
                variants.append(slash)
    return variants


def _topic_scores(config: Config, text: str) -> str:
    """What the topic model makes of a text: each topic's probability (rules decide)."""
    if not config.settings.topic_model:
        return "off ([aggregator] topic_model = false)"
    from aggregator.topics import EVIDENCE, PROPOSE
    from aggregator.topics import load as topic_model

    scores = topic_model().scores(text)
    return (
        ", ".join(f"{topic} {score:.2f}" for topic, score in scores.items())
        + f" (gives a topic at {PROPOSE}, evidence for a leaning source at {EVIDENCE})"
    )


def _language_why(item: Item, sources: dict[str, Source]) -> str:
    """How the language is decided for this item's text, as it would be now."""
    from aggregator.language import decide

    source = sources.get(item.source)
    return decide(_item_text(item), "", source.language if source else "").reason


def _item_text(item: Item) -> str:
    """The title and text that the language and the topic model read."""
    return f"{item.title}\n{item.summary_text or item.content_text}"


def explain_text(item: Item, copies: list[Item], config: Config) -> str:
    sources = {s.name: s for s in config.sources}
    lines = [
        item.title,
        f"  source:    {item.source}",
        f"  link:      {item.canonical or item.link}",
        f"  published: {item.published.isoformat()}",
        f"  language:  {item.language or config.default_language} ({_language_why(item, sources)})",
        f"  story id:  {item.story}",
        f"  topics:    {_topic_scores(config, _item_text(item))}",
        "",
        "Tags:",
    ]
    by_tag: dict[str, list[str]] = {}
    for m in item.tags:
        by_tag.setdefault(m.tag, []).append(_reason(m))
    lines += [f"  {tag}: {'; '.join(reasons)}" for tag, reasons in by_tag.items()] or ["  (none)"]
    passing: list[str] = []
    source = sources.get(item.source)
    tagger_for(config).tag(
        item, source.tags if source else (), None, source.leans if source else (), passing
    )
    if passing:
        lines.append(f"  in passing (not counted): {'; '.join(passing)}")
    best, why = why_stand_in(copies, sources)
    lines += ["", f"Story: {len(copies)} cop{'y' if len(copies) == 1 else 'ies'}"]
    by_uid = {c.uid: c for c in copies}
    for c in copies:
        mark = "*" if c.uid == best.uid else " "
        if c.matched and c.matched in by_uid:
            score = f"{c.similarity:.2f}" if c.similarity is not None else "?"
            how = f"joined: {c.match_reason}, similarity {score} with {by_uid[c.matched].source}"
        elif c.uid == item.story:
            how = "first copy seen"
        else:
            how = f"joined: {c.match_reason or 'same story'}"
        lines.append(f" {mark} {c.source:<20} {c.title}")
        lines.append(f"   {'':<20} {c.canonical or c.link}  ({how})")
    lines += ["", f"Stands for the story: {best.source} ({why})."]
    return "\n".join(lines)


def _print_status(report: list[dict]) -> None:
    """One line a source, fit to the terminal's width; what went wrong is wrapped on the
    lines below, never cut (the fix is often at its end: "(allow_private_networks ...)")."""
    width = _width()
    table = [("source", "last pull", "result", "http", "items", "fails", "next pull")]
    details = []
    for rec in report:
        nxt = _when_short(_from_iso(rec["next_pull"])) if rec.get("next_pull") else "-"
        why = rec.get("next_reason") or ""
        table.append(
            (
                rec["source"],
                _when_short(_from_iso(rec["last_pull"])) if rec.get("last_pull") else "never",
                rec["result"],
                str(rec.get("http") or "-"),
                str(rec.get("items", "-")),
                str(rec.get("failures", "-")),
                f"{nxt} {why}".strip(),
            )
        )
        said = [x for x in (rec.get("message"), rec.get("note")) if x]
        if rec.get("warning"):
            said.append(f"warning: {rec['warning']}")
        if rec.get("moved_to"):
            said.append(f"moved to {rec['moved_to']}")
        details.append("; ".join(said))
    _print_table(table, width, details)


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------- output


def _run_with_progress(config: Config, store: Storage, plan: Plan) -> PassResult:
    from aggregator.ingest.pipeline import run_pass

    if not sys.stderr.isatty():
        return run_async(run_pass(config, store, plan=plan))
    due = plan[0]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]pulling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(due))

        def advance(o: PullOutcome) -> None:
            what = "ok" if o.ok else f"failed: {o.error_kind}"
            progress.update(task, advance=1, description=f"{o.source} {what}")

        # rich redirects sys.stderr while the bar is live; the log handler took the real
        # stream at start: point it at rich's, so a log line prints above the bar instead
        # of over it, then back
        handlers = [h for h in logging.root.handlers if isinstance(h, logging.StreamHandler)]
        before = [h.setStream(sys.stderr) for h in handlers]
        try:
            return run_async(run_pass(config, store, on_outcome=advance, plan=plan))
        finally:
            for h, stream in zip(handlers, before, strict=True):
                if stream is not None:
                    h.setStream(stream)


def _print_summary(config: Config, result: PassResult) -> None:
    table = [("source", "result", "new", "updated", "duplicate", "unchanged", "ms")]
    details = []
    for o in sorted(result.outcomes, key=lambda o: o.source):
        if not o.ok:
            what, detail = f"FAILED {o.error_kind}", o.error
        elif o.not_modified:
            what, detail = "not modified", ""
        else:
            what, detail = "ok", f"malformed, recovered: {o.warning}" if o.warning else ""
            if o.skipped:
                old = f"{o.skipped} items older than retention, not stored"
                detail = f"{detail}; {old}" if detail else old
        table.append(
            (
                o.source,
                what,
                str(o.new),
                str(o.updated),
                str(o.duplicate),
                str(o.unchanged),
                str(round(o.elapsed * 1000)),
            )
        )
        details.append(detail)
    for skip in sorted(result.skipped, key=lambda k: k.name):
        until = f"until {_when_short(skip.until)}" if skip.until else "until its entry changes"
        table.append((skip.name, "not due", "", "", "", "", ""))
        details.append(f"{until}: {skip.reason}")
    _print_table(table, _width(), details)
    failed = sum(not o.ok for o in result.outcomes)
    written = sum(len(p.written) for p in result.published)
    feeds = ", ".join(f"{p.feed} ({p.items})" for p in result.published) or "nothing changed"
    waiting = f", {len(result.skipped)} not due (--all pulls them)" if result.skipped else ""
    summary = (
        f"{len(result.outcomes)} sources, {failed} failed{waiting}; "
        f"{sum(o.new for o in result.outcomes)} new items; "
        f"published: {feeds}; {written} files written in {config.settings.output_dir}; "
        f"{result.elapsed:.1f}s"
    )
    print()
    print(textwrap.fill(summary, _width()) if _width() else summary)


def _log_summary(config: Config, result: PassResult) -> None:
    """The summary of a pass as one JSON line on stdout (what `--log-format json` asks)."""
    summary = {
        "event": "summary",
        "sources": len(result.outcomes),
        "failed": sorted(o.source for o in result.outcomes if not o.ok),
        "new": sum(o.new for o in result.outcomes),
        "updated": sum(o.updated for o in result.outcomes),
        "duplicate": sum(o.duplicate for o in result.outcomes),
        "not_due": {
            k.name: {"until": k.until.isoformat() if k.until else None, "reason": k.reason}
            for k in result.skipped
        },
        "published": {p.feed: p.items for p in result.published},
        "files_written": sum(len(p.written) for p in result.published),
        "output_dir": str(config.settings.output_dir),
        "seconds": round(result.elapsed, 3),
        "publish_error": result.publish_error or None,
    }
    print(json.dumps(summary, ensure_ascii=False), flush=True)


def _print_table(
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


def _when_short(at: datetime) -> str:
    """12:44Z today, else 2026-12-07 12:44Z: when a skipped source is next due."""
    if at.date() == datetime.now(UTC).date():
        return at.strftime("%H:%MZ")
    return at.strftime("%Y-%m-%d %H:%MZ")


def _width() -> int:
    """The terminal's width when stdout is one, else 0: files and pipes get whole lines."""
    return shutil.get_terminal_size((80, 24)).columns if sys.stdout.isatty() else 0


# ---------------------------------------------------------------- logging


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data |= getattr(record, "fields", {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def _setup_logging(fmt: str, verbose: bool, terse: bool) -> None:
    """Plain or JSON lines on stderr. A daemon logs at INFO wherever it runs (on a terminal,
    its start-up lines, pulls and reloads are what the operator watches); a command on a
    terminal (`terse`) shows only warnings beside its own output and progress bar."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    # One handler, on the root logger: every line in one format, third-party loggers'
    # (apscheduler, aiohttp, asyncio) included, so a JSON log stays one object a line.
    logging.root.handlers[:] = [handler]
    logging.root.setLevel(logging.WARNING)
    ours = logging.getLogger("aggregator")
    quiet = terse and sys.stderr.isatty() and fmt == "plain" and not verbose
    ours.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
