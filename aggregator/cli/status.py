"""`status`: each source's health and schedule, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.cli.common import EXIT_OK, from_iso, iso, print_table, terminal_width, when_short
from aggregator.config.load import load
from aggregator.errors import ConfigError
from aggregator.model import Config, SourceRecord, retention_at
from aggregator.storage import Storage, database_exists, describe, leasing, open_store

if TYPE_CHECKING:  # the pipeline (0.3 s of imports) is imported by the commands that run it
    from aggregator.model import LeaseRow

    pass


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
    if refused_now is not None and (database is None or not database_exists(database)):
        raise refused_now  # nothing stored to show: the problems are all there is
    assert database is not None
    rows: dict[str, SourceRecord] = {}
    refused = ""
    nodes: list[dict[str, Any]] = []
    leases: list[dict[str, Any]] = []
    held: dict[str, Any] = {}
    if database_exists(database):
        store = open_store(database)
        try:
            rows = {r.name: r for r in store.source_rows()}
            refused = store.meta("config_refused")
            nodes = _nodes(store.metas("node:"))
            held = _store(store, config)
            if (shared := leasing(store)) is not None:
                leases = _leases(shared.leases())
        finally:
            store.close()
    sources = config.sources if config else ()
    names = [s.name for s in sources] + sorted(set(rows) - {s.name for s in sources})
    report = [_status_record(name, config, rows.get(name)) for name in names]
    notes = _status_notes(path, refused_now, refused, database)
    if args.json:
        shown = {"notes": notes, "sources": report} | ({"nodes": nodes} if nodes else {})
        shown |= {"leases": leases} if leases else {}
        shown |= {"store": held} if held else {}
        print(json.dumps(shown, ensure_ascii=False, indent=2))
    else:
        for note in notes:
            print(textwrap.fill(note, terminal_width()) if terminal_width() else note)
        for node in nodes:  # daemons sharing a PostgreSQL store
            print(f"node {node['node']}: {node['role']}, last seen {_ago(node['seen'])}")
        for lease in leases:  # pulls under way on a shared store, each node's
            print(_lease_line(lease))
        if held:
            print(_store_line(held))
        if not database_exists(database):
            print("no pulls yet (the database does not exist)")
        else:
            _print_status(report)
    return EXIT_OK


def _nodes(beats: dict[str, str]) -> list[dict[str, Any]]:
    """The daemons that share this store (their heartbeats, daemon/core.py), the pulling
    one first, then by when they were last seen."""
    nodes = []
    for key, value in beats.items():
        try:
            beat = json.loads(value)
            nodes.append({"node": key.removeprefix("node:"), "role": beat["role"],
                          "seen": beat["seen"]})  # fmt: skip
        except (ValueError, KeyError, TypeError):
            continue  # a heartbeat written by hand or cut short: not a node to list
    newest_first = sorted(nodes, key=lambda n: str(n["seen"]), reverse=True)
    return sorted(newest_first, key=lambda n: n["role"] != "leader")


def _store(store: Storage, config: Config | None) -> dict[str, Any]:
    """The store's size, and what the next prune drops (by the config's retention)."""
    held: dict[str, Any] = {
        "bytes": store.size_bytes(),
        "items": store.count_items(),
        "stories": store.count_stories(),
    }
    if config is not None:
        cutoff, own = retention_at(config, datetime.now(UTC))
        held["next_prune"] = store.prunable(cutoff, own)
    return held


def _store_line(held: dict[str, Any]) -> str:
    line = (
        f"store: {held['bytes'] / 1e6:.1f} MB, {held['items']:,} items in "
        f"{held['stories']:,} stories"
    )
    if "next_prune" in held:
        drop = held["next_prune"]
        line += (
            f"; the next prune drops {drop:,} past their retention"
            if drop
            else "; the next prune drops nothing"
        )
    return line


def _leases(rows: list[LeaseRow]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "source": r.source,
            "node": r.node,
            "since": r.since.isoformat(),
            "until": r.until.isoformat(),
            "fetching": r.fetching,
            "expired": r.until <= now,
        }
        for r in rows
    ]


def _lease_line(lease: dict[str, Any]) -> str:
    """ "lease: NAME pulled by NODE for 3 s (fetching), until 14:02:11Z" """
    since, until = datetime.fromisoformat(lease["since"]), datetime.fromisoformat(lease["until"])
    held = int((datetime.now(UTC) - since).total_seconds())
    doing = " (fetching)" if lease["fetching"] else ""
    end = f"until {until:%H:%M:%S}Z"
    if lease["expired"]:
        end = f"expired at {until:%H:%M:%S}Z: its node stopped or was cut off; another takes it"
    return f"lease: {lease['source']} pulled by {lease['node']} for {held} s{doing}, {end}"


def _ago(seen: str) -> str:
    """ "12 s ago"; a node silent for more than a few heartbeats is said to be gone."""
    try:
        age = (datetime.now(UTC) - datetime.fromisoformat(seen)).total_seconds()
    except (ValueError, TypeError):
        return seen
    if age > 30:
        return f"{seen[:19]}Z ({int(age)} s ago: stopped or cut off)"
    return f"{max(0, int(age))} s ago"


def _status_notes(
    path: Path, refused_now: ConfigError | None, refused: str, database: Path | str
) -> list[str]:
    notes = []
    if refused_now is not None:
        n = len(refused_now.problems)
        notes.append(
            f"{path}: invalid ({n} problem{'s' * (n != 1)}: {refused_now.problems[0]}; "
            f"`aggregator check` lists them); the sources below are those in {describe(database)}"
        )
    if refused:
        data = json.loads(refused)
        notes.append(
            f"{path} refused by the running daemon at {data['at'][11:16]}Z "
            f"({data['first']}): it is running on the last good one"
        )
    return notes


def _status_record(name: str, config: Config | None, r: SourceRecord | None) -> dict[str, Any]:
    source = config.source(name) if config else None
    record: dict[str, Any] = {"source": name}
    if config is not None and source is None:
        record["note"] = "not in config.toml any more"
    elif source is not None and not source.enabled:
        record["note"] = "disabled"
    if r is None:
        return record | {"last_pull": None, "result": "never pulled", "next_reason": "first pull"}
    record |= {
        "last_pull": iso(r.last_pull),
        "result": r.last_error_kind or "ok",
        ("message" if r.last_error_kind else "warning"): r.last_error,
        "http": r.last_status,
        "items": r.last_items,
        "failures": r.consecutive_failures,
        "next_pull": iso(r.next_pull) if "note" not in record else None,
        "next_reason": record.get("note", r.next_reason),
    }
    if r.redirect_url and r.redirect_count >= 3:
        record["moved_to"] = r.redirect_url
    return record


def _print_status(report: list[dict[str, Any]]) -> None:
    """One line a source, fit to the terminal's width; what went wrong is wrapped on the
    lines below, never cut (the fix is often at its end: "(allow_private_networks ...)")."""
    width = terminal_width()
    table = [("source", "last pull", "result", "http", "items", "fails", "next pull")]
    details = []
    for rec in report:
        nxt = when_short(from_iso(rec["next_pull"])) if rec.get("next_pull") else "-"
        why = rec.get("next_reason") or ""
        table.append(
            (
                rec["source"],
                when_short(from_iso(rec["last_pull"])) if rec.get("last_pull") else "never",
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
    print_table(table, width, details)
