"""systemd's notify protocol, for deploy/aggregator.service (`Type=notify`, `WatchdogSec`).

`READY=1` once the feeds are served and every source's pull is scheduled, `WATCHDOG=1`
from the event loop (a loop stuck for the whole `WatchdogSec` gets no pet, and systemd
restarts the daemon), `RELOADING=1` around a SIGHUP reload, `STOPPING=1` at a stop, and a
`STATUS=` line `systemctl status` shows. Without `NOTIFY_SOCKET` (not under systemd) it
does nothing. The protocol is a datagram to a Unix socket, so no library is needed
(sd_notify(3)); an abstract socket's name starts with "@".
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("aggregator.daemon")


class Notifier:
    def __init__(self, env: Mapping[str, str] = os.environ):
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        # pet twice per period, as sd_watchdog_enabled(3) advises
        self.watchdog = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else 0.0
        self._said_failure = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> None:
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:  # systemd went away, or a wrong path: said once, never fatal
            if not self._said_failure:
                self._said_failure = True
                log.warning("systemd notify socket %s: %s", self.address, exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def reloaded(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def pet(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")
