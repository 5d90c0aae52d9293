"""Arguments -> one function per command -> exit codes.

The stages do the work; a command (run.py, status.py, sources.py, editors.py) opens the
config and the store, calls them and says what happened. `main` turns every error into
one line and an exit code: 2 for a config or a command line, 1 for the rest, 141 for a
closed pipe.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator import __version__
from aggregator.cli.common import EXIT_CONFIG, EXIT_FAILED
from aggregator.errors import AggregatorError, ConfigError, LockedError
from aggregator.storage import driver_errors

if TYPE_CHECKING:  # the pipeline (0.3 s of imports) is imported by the commands that run it
    pass


log = logging.getLogger("aggregator.cli.main")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser(argv).parse_args(argv)
    daemon = args.command == "serve" or (args.command == "run" and not args.once)
    _setup_logging(args.log_format, args.verbose, terse=not daemon)
    config_path = Path(args.config or os.environ.get("AGGREGATOR_CONFIG") or "config.toml")
    try:
        return int(_command(args.func)(args, config_path))
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
    except driver_errors() as exc:  # locked past busy_timeout, disk full, a lost server
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


def _command(where: str) -> Callable[[argparse.Namespace, Path], int]:
    """The function of a command, imported when it runs: "module:function" in `cli/`.
    A command loads only what it uses (a cron run with nothing due never imports the
    editors' tools, nor they the runner)."""
    module, name = where.split(":")
    command: Callable[[argparse.Namespace, Path], int]
    command = getattr(importlib.import_module(f"aggregator.cli.{module}"), name)
    return command


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Only the command that `argv` names is built with its
    options (all of them for help, or when no command is named): building the nineteen
    took 4 ms of every start, and `check` must answer in under 80."""
    p = argparse.ArgumentParser(
        prog="aggregator",
        description="Pull news feeds, drop duplicates, tag and republish curated feeds.",
        formatter_class=_Formatter,
    )
    # The global options work on either side of the command ("run --once --log-format
    # json", as README's cron line writes it): every command's parser knows them too, with
    # defaults suppressed so that one given before the command is not overwritten.
    common = argparse.ArgumentParser(add_help=False, formatter_class=_Formatter)
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
    named = _named_command(sys.argv[1:] if argv is None else argv)
    for name, (help_text, func, build) in _COMMANDS.items():
        if named is None or name == named:
            command = sub.add_parser(
                name, parents=[common], help=help_text, formatter_class=_Formatter
            )
            if func is not None:
                command.set_defaults(func=func)
            if build is not None:
                build(command, common)
    return p


def _named_command(argv: Sequence[str]) -> str | None:
    """The command `argv` names, read as argparse reads it (the values of --config and
    --log-format, abbreviated or not, skipped); None when it asks for help or names none."""
    takes_value = ("--config", "--log-format")
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--" or token == "-h" or (len(token) > 2 and "--help".startswith(token)):
            return None
        if token.startswith("-"):
            given = token.split("=", 1)[0]
            own = "=" not in token and len(given) > 2 and given.startswith("--")
            i += 2 if own and any(o.startswith(given) for o in takes_value) else 1
            continue
        return token if token in _COMMANDS else None
    return None


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, told the terminal's width: argparse asks shutil for it (3 ms
    of imports) each time an option is added, before any help is printed."""

    def __init__(self, prog: str) -> None:
        columns = 0  # as shutil.get_terminal_size reads it: $COLUMNS, the terminal, 80
        with contextlib.suppress(ValueError, OSError):
            columns = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size().columns
        super().__init__(prog, width=(columns or 80) - 2)


Build = Callable[[argparse.ArgumentParser, argparse.ArgumentParser], None]


def _run(run: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--once", action="store_true", help="one pass over the sources due, then exit (cron)"
    )
    run.add_argument(
        "--all", action="store_true", help="with --once: pull every source, due or not"
    )


def _serve(serve: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    serve.add_argument("--listen", help='host:port (default: the config\'s "listen")')


def _status(status: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    status.add_argument("--json", action="store_true", help="machine-readable output")


def _sources(sources: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sources_sub = sources.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = sources_sub.add_parser("export", parents=[common], help="print the sources as OPML")
    export.set_defaults(func="sources:cmd_sources_export")
    imp = sources_sub.add_parser(
        "import", parents=[common], help="add the feeds of an OPML file to config.toml"
    )
    imp.add_argument("file", type=Path)
    imp.set_defaults(func="sources:cmd_sources_import")
    add = sources_sub.add_parser(
        "add", parents=[common], help="check a feed (or a page announcing one) and add it"
    )
    add.add_argument("url")
    add.add_argument("--name", help="the source's name (default: from the feed's title)")
    add.add_argument("--tags", default="", help="tags for all its items, comma-separated")
    add.add_argument("--language", default="", help="when the feed does not say, e.g. fr")
    add.set_defaults(func="sources:cmd_sources_add")
    remove = sources_sub.add_parser(
        "remove", parents=[common], help="remove a source from config.toml"
    )
    remove.add_argument("name")
    remove.set_defaults(func="sources:cmd_sources_remove")


def _db(db: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    db_sub = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser(
        "upgrade", parents=[common], help="migrate the database to this version's schema"
    )
    upgrade.set_defaults(func="db:cmd_db_upgrade")
    copy = db_sub.add_parser(
        "copy", parents=[common], help="copy a store (SQLite or PostgreSQL) into a new one"
    )
    copy.add_argument("src", help="the database to copy: a SQLite file or a postgresql:// URI")
    copy.add_argument("dst", help="the database to fill (new or empty)")
    copy.set_defaults(func="db:cmd_db_copy")


def _backup(backup: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    backup.add_argument("path", metavar="PATH", help="the backup file to write")


def _restore(restore: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    restore.add_argument("path", metavar="PATH", help="a file `backup` wrote")


def _refresh(refresh: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    which = refresh.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="the source to pull")
    which.add_argument("--all", action="store_true", help="every enabled source")


def _reset(reset: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    reset.add_argument("name", help="the source")


def _preview(prev: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    prev.add_argument("--against", type=Path, help="preview this config file instead")
    prev.add_argument("--json", action="store_true", help="machine-readable output")


def _tags(tags: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    what = tags.add_mutually_exclusive_group(required=True)
    what.add_argument("text", nargs="?", help="the text to tag")
    what.add_argument("--file", type=Path, help="tag the text of this file")
    what.add_argument("--url", help="tag the stored item with this link")


def _explain(explain: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    explain.add_argument("url", help="the link of any copy (tracking parameters and all)")


# name -> (the help line `aggregator --help` lists, the "module:function" it runs (None: its
# actions say), what adds its options), in that order
_COMMANDS: dict[str, tuple[str, str | None, Build | None]] = {
    "check": ("validate the config and report every problem", "run:cmd_check", None),
    "run": ("pull, process and publish", "run:cmd_run", _run),
    "serve": ("serve the output folder only", "run:cmd_serve", _serve),
    "status": ("a table of sources and their last pull", "status:cmd_status", _status),
    "sources": ("the sources as OPML: export, import", None, _sources),
    "db": ("the database: upgrade, copy", None, _db),
    "backup": (
        "write a consistent copy of the database to PATH (a daemon may be running)",
        "db:cmd_backup",
        _backup,
    ),
    "restore": (
        "replace the database by the backup at PATH (no daemon may be running)",
        "db:cmd_restore",
        _restore,
    ),
    "refresh": ("pull a source now (asks the running daemon)", "run:cmd_refresh", _refresh),
    "reset": ("forget a source's failures (and 410) and pull it now", "run:cmd_reset", _reset),
    "preview": ("what the edited config would change, per feed", "editors:cmd_preview", _preview),
    "schema": ("print the JSON Schema of config.toml", "editors:cmd_schema", None),
    "tags": ("the tags the current rules give a text, and why", "editors:cmd_tags", _tags),
    "explain": ("why an item has its tags, and its story cluster", "editors:cmd_explain", _explain),
}


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
