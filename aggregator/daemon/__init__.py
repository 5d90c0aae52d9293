"""`aggregator run`: the daemon. Scheduled pulls through the Runner, debounced
publishing, the live config, clean stops; how the schedule is kept is in core.py.

    core.py     the daemon's life: start, scheduled pulls through the Runner, commits,
                debounced publishing, background re-tagging, /healthz, clean stops
    watch.py    the live config and operators' requests
    metrics.py  GET /metrics (Prometheus' text format)
    webhook.py  [notify] webhook: a JSON POST per alert, retried, never in a pull's way
    notify.py   systemd's notify protocol: READY, WATCHDOG, RELOADING, STOPPING
"""

from aggregator.daemon.core import Daemon, raise_file_limit, supervised

__all__ = ["Daemon", "raise_file_limit", "supervised"]
