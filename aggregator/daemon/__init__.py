"""`aggregator run`: scheduled pulls, debounced publishing, live config, clean stops.

APScheduler (3.x, AsyncIOScheduler) runs one date-triggered job per source,
re-armed after each pull at the time `schedule` decides (interval or cron, backoff,
Retry-After, or never for a 410), and kept in the database so a restart resumes instead
of pulling everything at once. A job per source id never runs twice at once; the
Fetcher's semaphores bound pulls in flight. The store is only touched from the event
loop's thread; parsing runs in worker processes and re-tagging's pure part in a thread.

    core.py   the daemon's life: start, scheduled pulls through the Runner, commits,
              debounced publishing, background re-tagging, /healthz, clean stops
    watch.py  the live config and operators' requests
"""

from aggregator.daemon.core import Daemon, raise_file_limit, supervised

__all__ = ["Daemon", "raise_file_limit", "supervised"]
