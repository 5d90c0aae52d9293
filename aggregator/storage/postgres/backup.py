"""Backups of a PostgreSQL store: `pg_dump`'s custom format (a consistent snapshot, taken
while nodes write), restored with `pg_restore --clean`. Both are the server's own tools
(Debian's postgresql-client); the password comes from the environment or ~/.pgpass as
for the store itself, never on a command line.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

from aggregator.errors import StoreError
from aggregator.storage.postgres.store import redact


def _tool(name: str) -> str:
    """`pg_dump` or `pg_restore`: on PATH, or Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4])
    )
    if not versions:
        raise StoreError(f"{name} not found: install PostgreSQL's client tools (postgresql-client)")
    return versions[-1]


def _without_password(url: str) -> tuple[str, dict[str, str]]:
    """The URI without its password, and the environment that gives it to libpq (a
    command line is visible to every user in `ps`)."""
    match = re.search(r"(://[^:/@]*):([^@/]*)@", url)
    env = dict(os.environ)
    if match is None:
        return url, env
    env["PGPASSWORD"] = unquote(match.group(2))
    return url[: match.start()] + match.group(1) + "@" + url[match.end() :], env


def _run(args: list[str], url: str, what: str, env: dict[str, str]) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    except OSError as exc:
        raise StoreError(f"cannot {what} {redact(url)}: {args[0]}: {exc.strerror}") from None
    if done.returncode != 0:
        reason = " ".join(done.stderr.replace(url, redact(url)).split())[:300]
        raise StoreError(f"cannot {what} {redact(url)}: {reason}")


def backup(url: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    bare, env = _without_password(url)
    try:
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={tmp}", bare], url,
             "back up", env)  # fmt: skip
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def restore(url: str, path: Path) -> None:
    if not path.is_file():
        raise StoreError(f"backup {path} does not exist")
    bare, env = _without_password(url)
    _run(
        [_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
         f"--dbname={bare}", str(path)],
        url, "restore into", env,
    )  # fmt: skip
