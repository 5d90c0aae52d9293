"""The writer's lock: one `run` (or daemon) per database, on one machine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.errors import StoreError

if TYPE_CHECKING:  # numpy, imported on first use: a cron run with nothing due never needs it
    pass


class Lock:
    """One writer per database: an exclusive lock on `<database>.lock`, held while open.

    The kernel drops the lock when the process dies, even by SIGKILL, so a crash never
    leaves a stale lock behind.
    """

    def __init__(self, database: Path):
        import fcntl
        import os

        self.path = database.with_name(database.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot use database {database}: its folder {self.path.parent} cannot be "
                f"created: {exc.strerror}"
            ) from None
        try:
            self._file = open(self.path, "a+")  # noqa: SIM115 - held for the lock's lifetime
        except OSError as exc:
            raise StoreError(
                f"cannot use database {database}: its lock file {self.path}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip()
            self._file.close()
            from aggregator.errors import LockedError

            who = f" by process {holder}" if holder.isdigit() else ""
            raise LockedError(
                f"database {database} is in use{who}: lock {self.path} is held "
                "(another `aggregator run` is running)"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        self._file.close()

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
