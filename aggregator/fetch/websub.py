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

if TYPE_CHECKING:  # imported when a hub is pinged: 56 ms of every run's start-up otherwise
    import httpx

log = logging.getLogger("aggregator.fetch.websub")

ATTEMPTS = 3
DELAYS = (1.0, 3.0)  # seconds before the 2nd and 3rd attempts
TIMEOUT = 10.0


async def ping(
    hub: str, urls: list[str], user_agent: str, allow_private: bool = False
) -> dict[str, bool]:
    """Post each URL to the hub; returns which the hub accepted (2xx). A hub on a private or
    local address is not pinged unless `allow_private` (allow_private_networks)."""
    if not hub or not urls:
        return {}
    if not allow_private and (why := await _private(hub)):
        log.warning("websub: %s: %s (allow_private_networks = false): not pinged", hub, why)
        return dict.fromkeys(urls, False)
    import httpx

    async with httpx.AsyncClient(
        timeout=TIMEOUT, trust_env=False, headers={"User-Agent": user_agent}
    ) as client:
        results = await asyncio.gather(*(_ping_one(client, hub, url) for url in urls))
    return dict(zip(urls, results, strict=True))


async def _ping_one(client: httpx.AsyncClient, hub: str, url: str) -> bool:
    import httpx

    for attempt in range(ATTEMPTS):
        try:
            response = await client.post(hub, data={"hub.mode": "publish", "hub.url": url})
            if response.is_success:
                log.info("websub: %s announced to %s", url, hub)
                return True
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if attempt < ATTEMPTS - 1:
            log.warning("websub: %s: %s; retrying", hub, problem)
            await asyncio.sleep(DELAYS[min(attempt, len(DELAYS) - 1)])
        else:
            log.warning("websub: %s: %s; giving up for %s", hub, problem, url)
    return False


async def _private(hub: str) -> str:
    """Why the hub may not be dialled ("" when it may): its address as written, or what
    its name resolves to, is loopback, private or local (the fetcher's rule)."""
    import ipaddress

    from aggregator.text.urls import is_public, names_local_host, web_host

    if names_local_host(hub):
        return "a private or local address"
    host = web_host(hub).strip("[]")
    try:
        ipaddress.ip_address(host)
        return ""  # a public literal
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError as exc:
        return f"cannot resolve: {exc}"
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    private = sorted(a for a in addresses if not is_public(ipaddress.ip_address(a)))
    return f"resolves to {', '.join(private)}" if private else ""


def changed_feed_urls(base_url: str, written: list[Path]) -> list[str]:
    """Public URLs of the feed files a publish rewrote (index and OPML are not feeds)."""
    return [base_url + path.name for path in written if path.suffix in (".rss", ".atom", ".json")]
