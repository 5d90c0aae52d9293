"""`check`, `run`, `serve`, and `refresh`/`reset` sent to a running daemon: the commands
that pull and publish, with the summary they print."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    print_table,
    run_async,
    terminal_width,
    when_short,
)
from aggregator.config.load import load
from aggregator.errors import LockedError
from aggregator.model import Config, Source, SourceRecord
from aggregator.storage import Storage, database_exists, is_url, open_store, writer_lock

if TYPE_CHECKING:  # the pipeline (0.3 s of imports) is imported by the commands that run it
    from aggregator.ingest.pipeline import PassResult
    from aggregator.model import PullOutcome
    from aggregator.schedule import Plan


def cmd_check(args: argparse.Namespace, path: Path) -> int:
    from aggregator.cli.advice import FIRST_LOOK, READ_AT_MOST, Look, advise, look_at
    from aggregator.config.place import key_lines, place

    config = load(path)
    look: Look | None = None  # the stored items' side of the advice, when there are some
    rows: dict[str, SourceRecord] = {}
    if database_exists(config.settings.database):
        store = open_store(config.settings.database)
        try:
            copies = store.copies(newest=FIRST_LOOK)
            if copies:
                stored = store.count_items()
                look = look_at(config, copies, store.titles(FIRST_LOOK), stored)
                if stored > FIRST_LOOK and look.worth_more():
                    copies = store.copies(newest=READ_AT_MOST)
                    look = look_at(config, copies, store.titles(READ_AT_MOST), stored)
            rows = {r.name: r for r in store.source_rows()}
        finally:
            store.close()
    warnings = advise(config, look, rows, datetime.now(UTC))
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
    leadership = None
    guard: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if is_url(config.settings.database):
        # nodes sharing a PostgreSQL store: each pulls the sources it claims; the one holding
        # the leader's lock also re-tags, prunes and pings the hub
        from aggregator.storage.postgres import Leadership

        leadership = Leadership(str(config.settings.database))
        leadership.try_acquire()
    else:
        guard = writer_lock(config.settings.database)
    maintain = leadership is None or leadership.held
    with guard:
        store = open_store(config.settings.database)
        try:
            plan = None  # run --once: the sources due now, and those left for later
            if args.once:
                from aggregator.schedule import due_sources

                states, now = store.source_states(), datetime.now(UTC)
                plan = due_sources(config.sources, config.settings.interval, states, now, args.all)
            if plan is None or _documents_likely(store, plan[0]):
                # the pass's own modules (numpy, feedgen) load when first used: a pass that
                # turns out all 304s never pays for them (17 MB, bench/)
                from aggregator.ingest.workers import start_server

                start_server()  # its imports run on the other core while this one starts
            # What a pull creates dies by reference counting: a young-generation collection
            # every 10,000 allocations rather than 700 (they were 3% of this process's CPU
            # in a bench pass), and what lives as long as the process is frozen, not walked.
            gc.freeze()
            gc.set_threshold(10_000, 10, 10)
            if not args.once:
                from aggregator.daemon import Daemon

                return run_async(Daemon(path, config, store, leadership=leadership).run())
            assert plan is not None  # run --once
            if plan[0]:
                result = _run_with_progress(config, store, plan, maintain, args.all)
            else:
                from aggregator.ingest.pipeline import quiet_pass

                result = quiet_pass(config, store, plan, maintain=maintain)
        finally:
            store.close()
            if leadership is not None:
                leadership.release()
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
    if not due:  # a cron run with nothing due reads no source's row for it
        return False
    rows = {r.name: r for r in store.source_rows()}
    for source in due:
        row = rows.get(source.name)
        if row is None or row.last_pull is None or row.last_new:
            return True
    return False


def cmd_serve(args: argparse.Namespace, path: Path) -> int:
    from aggregator.config.keys import listen_problem

    config = load(path)
    listen = args.listen or config.settings.listen or "127.0.0.1:8080"
    if args.listen and (problem := listen_problem(args.listen)):
        print(f"aggregator: --listen {problem}", file=sys.stderr)
        return EXIT_USAGE

    async def serve_until_stopped() -> int:
        import asyncio
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


def cmd_refresh(args: argparse.Namespace, path: Path) -> int:
    return _control(path, "refresh", "*" if args.all else args.name)


def cmd_reset(args: argparse.Namespace, path: Path) -> int:
    return _control(path, "reset", args.name)


def _control(path: Path, action: str, name: str) -> int:
    """`refresh` and `reset`. With a daemon running (it holds the lock), the request goes
    through the database, which the daemon reads every second: no socket to secure, no
    signal to send across users, and it works on every machine sharing the database's
    folder. Without one, the command does the work itself."""
    from aggregator.config.keys import closest

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
        lock = writer_lock(config.settings.database)
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


def _run_with_progress(
    config: Config, store: Storage, plan: Plan, maintain: bool = True, everything: bool = False
) -> PassResult:
    """`run_pass` on the plan, with a progress bar on a terminal. `everything` (--all):
    on a shared store too, sources another node pulled since they fell due are pulled."""
    from aggregator.ingest.pipeline import run_pass

    if not sys.stderr.isatty():
        return run_async(
            run_pass(config, store, plan=plan, maintain=maintain, everything=everything)
        )
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
            return run_async(
                run_pass(
                    config,
                    store,
                    on_outcome=advance,
                    plan=plan,
                    maintain=maintain,
                    everything=everything,
                )
            )
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
        until = f"until {when_short(skip.until)}" if skip.until else "until its entry changes"
        table.append((skip.name, "elsewhere" if skip.elsewhere else "not due", "", "", "", "", ""))
        details.append(f"{until}: {skip.reason}")
    print_table(table, terminal_width(), details)
    failed = sum(not o.ok for o in result.outcomes)
    written = sum(len(p.written) for p in result.published)
    feeds = ", ".join(f"{p.feed} ({p.items})" for p in result.published) or "nothing changed"
    elsewhere = sum(k.elsewhere for k in result.skipped)
    waiting = f", {len(result.skipped) - elsewhere} not due (--all pulls them)"
    waiting = waiting if len(result.skipped) > elsewhere else ""
    if elsewhere:
        waiting += f", {elsewhere} pulled by other nodes"
    summary = (
        f"{len(result.outcomes)} sources, {failed} failed{waiting}; "
        f"{sum(o.new for o in result.outcomes)} new items; "
        f"published: {feeds}; {written} files written in {config.settings.output_dir}; "
        f"{result.elapsed:.1f}s"
    )
    print()
    print(textwrap.fill(summary, terminal_width()) if terminal_width() else summary)


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
            if not k.elsewhere
        },
        "elsewhere": {k.name: k.reason for k in result.skipped if k.elsewhere},
        "published": {p.feed: p.items for p in result.published},
        "files_written": sum(len(p.written) for p in result.published),
        "output_dir": str(config.settings.output_dir),
        "seconds": round(result.elapsed, 3),
        "publish_error": result.publish_error or None,
    }
    print(json.dumps(summary, ensure_ascii=False), flush=True)
