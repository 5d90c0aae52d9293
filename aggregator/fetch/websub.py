"""WebSub: tell the hub which feeds changed, so subscribers get them pushed at once.

Pings run beside the work, never in its way: each changed feed's URL is posted to the hub
(`hub.mode=publish`, `hub.url=...`), retried with a growing delay when the hub fails, and
given up after a few attempts (the next change pings again).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.errors import ErrorKind, FetchError

if TYPE_CHECKING:
    from aggregator.fetch import Fetcher
    from aggregator.model import Settings

log = logging.getLogger("aggregator.fetch.websub")

ATTEMPTS = 3
DELAYS = (1.0, 3.0)  # seconds before the 2nd and 3rd attempts


async def ping(settings: Settings, urls: list[str]) -> dict[str, bool]:
    """Post each URL to `settings.hub`; returns which the hub accepted (2xx). The posts go
    through the fetcher's guarded client, so a hub on a private or local address (as
    written, or as its name resolves at the time of dialling) is not pinged unless
    `allow_private_networks`."""
    if not settings.hub or not urls:
        return {}
    from aggregator.fetch import Fetcher

    said: set[str] = set()  # a blocked hub is reported once, not once per feed
    async with Fetcher(settings) as client:
        results = await asyncio.gather(
            *(_ping_one(client, settings.hub, url, said) for url in urls)
        )
    return dict(zip(urls, results, strict=True))


async def _ping_one(client: Fetcher, hub: str, url: str, said: set[str]) -> bool:
    for attempt in range(ATTEMPTS):
        try:
            status = await client.post(hub, {"hub.mode": "publish", "hub.url": url})
            if 200 <= status < 300:
                log.info("websub: %s announced to %s", url, hub)
                return True
            problem = f"HTTP {status}"
        except FetchError as exc:
            if exc.kind == ErrorKind.BLOCKED_ADDRESS:  # no retry makes it public
                if not said:
                    said.add(hub)
                    log.warning("websub: %s: %s: not pinged", hub, exc)
                return False
            problem = str(exc)
        if attempt < ATTEMPTS - 1:
            log.warning("websub: %s: %s; retrying", hub, problem)
            await asyncio.sleep(DELAYS[min(attempt, len(DELAYS) - 1)])
        else:
            log.warning("websub: %s: %s; giving up for %s", hub, problem, url)
    return False


def changed_feed_urls(base_url: str, written: list[Path]) -> list[str]:
    """Public URLs of the feed files a publish rewrote (index and OPML are not feeds)."""
    return [base_url + path.name for path in written if path.suffix in (".rss", ".atom", ".json")]
