"""aiohttp's connections, guarded: every address dialled is checked, by name or literal.

httpx 0.28 spends about 1 ms of CPU on each request in its own pool and h11, and its
client layer (request building, header merging, redirect bookkeeping) another quarter
of what is left on aiohttp (measured on the bench's pass of 304s, which is nothing else). The
fetcher drives aiohttp's C parser and pool directly and follows redirects itself. Nothing
is decoded here: bodies stay compressed for the capped inflater.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult


class BlockedAddress(OSError):
    """The name resolved to an address that `allow_private_networks = false` forbids."""


class _PublicOnlyResolver(AbstractResolver):
    """Resolves with the system and keeps only the addresses that may be dialled (DNS
    rebinding included: the check is on what is dialled, at each connection)."""

    def __init__(self, admits: Callable[[str, int], bool]) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._admits = admits

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await self._inner.resolve(host, port, family)
        allowed = [i for i in infos if self._admits(i["host"], port)]
        if not allowed:
            addresses = ", ".join(dict.fromkeys(i["host"] for i in infos))
            raise BlockedAddress(
                f"{host} resolves to {addresses}: a private or local address "
                "(allow_private_networks = false)"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def open_session(
    max_connections: int, keepalive: float, admits: Callable[[str, int], bool] | None
) -> aiohttp.ClientSession:
    """A session that decodes nothing, keeps no cookies and reads no proxy settings;
    `admits(ip, port)` guards every name resolved (None: any address). Must be called
    inside the event loop that will use it."""
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=0,  # the fetcher's per-host semaphores do that
        keepalive_timeout=keepalive,
        resolver=_PublicOnlyResolver(admits) if admits else None,
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )


_SSL: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    """certifi's CA bundle (what httpx used), built on the first https request (~30 ms)."""
    global _SSL
    if _SSL is None:
        import certifi

        _SSL = ssl.create_default_context(cafile=certifi.where())
    return _SSL


def is_literal(host: str) -> bool:
    """An IP address written in the URL: never resolved, so checked before dialling."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
