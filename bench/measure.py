"""Peak memory of a command and the processes it starts, for benchmarks and tests.

getrusage's ru_maxrss survives exec, so a child forked from a big process (pytest) starts
with its parent's peak; /proc's VmHWM belongs to the new program alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import subprocess
import threading
import time
from pathlib import Path
from typing import NamedTuple


def hwm_kb(pid: int) -> int:
    """Peak resident memory of a live process, in KB (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    """Resident memory of a live process now, in KB (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    """Proportional resident memory, in KB: a page shared by n processes counts 1/n in each
    (forked workers share their fork server's imports; RSS would count them in every one)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return rss_kb(pid)


def children(pid: int) -> list[int]:
    """Every descendant: parse workers are the children of a fork server, itself a child."""
    found = []
    with contextlib.suppress(OSError):  # the process may end while its tasks are listed
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found + [d for c in found for d in children(c)]


# PSS is read less often than RSS: reading it for a 200 MB process takes the kernel ~3 ms,
# and every 20 ms for 4 processes that took most of a core from the measured command.
PSS_EVERY = 0.25  # seconds


class Measured(NamedTuple):
    result: subprocess.CompletedProcess
    wall: float  # seconds
    peak_mb: float  # resident memory summed over the processes alive at one moment
    peak_pss_mb: float  # the same with shared pages split (sampled 4x a second)
    cpu: float = 0.0  # user + system seconds of the command and every process it started


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> bool:
    """Orphans of the measured command (a fork server outliving its parent for a moment)
    are re-parented to this process instead of init, so their CPU is reaped and counted."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return False


def _reap_orphans(keep: set[int], timeout: float = 10.0) -> None:
    """Wait for every child of this process but `keep` (the measured command's orphans)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = set(children(os.getpid())) - keep
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.005)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(cmd: list[str], env: dict | None = None) -> Measured:
    """Run `cmd`, sampling its memory and its descendants'.

    A peak is the largest sum, at one moment, of the processes alive then (workers that
    replace each other are not added up); the RSS one is never less than the main
    process's own peak.
    """
    subreaper = _become_subreaper()
    keep = set(children(os.getpid()))  # the bench's own long-lived children (its HTTP server)
    cpu_before = _children_cpu()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    main_peak = together = together_pss = 0
    pss_due = 0.0
    out: list[str] = []
    ended: list[float] = []

    def wait() -> None:  # the exit as it happens: the sampling below wakes every 20 ms
        out.extend(proc.communicate())
        ended.append(time.monotonic())

    reader = threading.Thread(target=wait, daemon=True)
    reader.start()
    while proc.poll() is None:
        main_peak = max(main_peak, hwm_kb(proc.pid))
        alive = [proc.pid, *children(proc.pid)]
        together = max(together, sum(rss_kb(pid) for pid in alive))
        if time.monotonic() >= pss_due:  # the kernel walks every page table for it: ~3 ms
            together_pss = max(together_pss, sum(pss_kb(pid) for pid in alive))
            pss_due = time.monotonic() + PSS_EVERY
        time.sleep(0.02)
    reader.join(30)
    # from the thread that waited for it: the loop's 20 ms sleeps once rounded a 70 ms
    # command up to 80 or 90
    wall = (ended[0] if ended else time.monotonic()) - started
    if subreaper:
        _reap_orphans(keep)
    result = subprocess.CompletedProcess(
        cmd, proc.returncode, out[0] if out else "", out[1] if len(out) > 1 else ""
    )
    peak, pss = max(main_peak, together) / 1024, together_pss / 1024
    return Measured(result, wall, peak, pss, _children_cpu() - cpu_before)
