"""A real PostgreSQL server for the tests: initdb in a temporary folder, `postgres` on a
Unix socket there, one fresh database per test. Debian's postgresql package provides the
binaries; `make test` never installs it (`.ci/run` does). Run as root (containers, CI), the
server runs as the `postgres` user, since PostgreSQL refuses to run as root."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def binaries() -> Path | None:
    """The folder of initdb and postgres: on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(versions[-1]).parent if versions else None


class Server:
    def __init__(self) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is missing in CI: .ci/run should have installed postgresql")
            pytest.skip("PostgreSQL is not installed (sudo apt-get install postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="aggregator-pg-"))
        user = None
        if os.geteuid() == 0:  # postgres refuses root: run it as its own user
            user = "postgres" if _has_user("postgres") else "nobody"
            entry = pwd.getpwnam(user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.user = user
        data = self.dir / "data"
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "aggregator", "--auth=trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            check=True, capture_output=True, user=user,
        )  # fmt: skip
        self.port = 5432
        self.bin_dir, self.data = bin_dir, data
        self._log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - the server's life
        self.admin = self.url("postgres")
        self.start()
        self._names = itertools.count(1)

    def start(self) -> None:
        """Start the server (again, after `halt`: the same data, the same socket)."""
        self.proc = subprocess.Popen(
            [str(self.bin_dir / "postgres"), "-D", str(self.data), "-k", str(self.dir), "-p",
             str(self.port), "-c", "listen_addresses=", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=subprocess.DEVNULL, stderr=self._log, user=self.user,
        )  # fmt: skip
        self._wait()

    def halt(self) -> None:
        """Stop the server, every session cut (a database going away under a daemon)."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)

    def url(self, database: str) -> str:
        return f"postgresql://aggregator@/{database}?host={self.dir}&port={self.port}"

    def _wait(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.admin, autocommit=True).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = (self.dir / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"postgres did not start: {err}") from None
                time.sleep(0.1)

    def database(self) -> str:
        """A new, empty database's URI."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: sessions ended, no wait
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
