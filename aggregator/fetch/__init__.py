"""One conditional GET per source, bounded in time, size and concurrency -> `Fetched`.

httpx alone is not enough (design/pitfalls.md): its timeouts are per phase, so each pull
runs under one `asyncio.timeout`; it decodes gzip in unbounded chunks, so we read raw bytes
and inflate with `max_length` against the cap; it has no per-host limit, so a semaphore per
host sits under the global one; and it dials whatever a name resolves to, so unless
`allow_private_networks` is set, the transport (fetch/transport.py: aiohttp under httpx)
checks every address actually dialled (redirects and DNS rebinding included) before any
byte is sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from aggregator import __version__
from aggregator.errors import FetchError
from aggregator.fetch.transport import AiohttpTransport, BlockedAddress
from aggregator.model import Fetched, Settings, SourceState

MAX_REDIRECTS = 5
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A globally routable address, after unwrapping IPv4 hidden inside IPv6 forms."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and not is_public(inner):
            return False
    return ip.is_global and not ip.is_multicast


Allow = Callable[[str, int], bool]


class Fetcher:
    """One HTTP client for a pass (or the daemon's life); use as `async with`."""

    def __init__(self, settings: Settings, allow: Allow | None = None):
        """`allow(ip, port)` admits private addresses one by one (tests; operators have the
        all-or-nothing `allow_private_networks`)."""
        self.settings = settings
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host)
        )
        admits = None
        if not settings.allow_private_networks:

            def admits(ip: str, port: int) -> bool:
                return is_public(ipaddress.ip_address(ip.split("%")[0])) or (
                    allow is not None and allow(ip, port)
                )

        transport = AiohttpTransport(settings.concurrency, keepalive_expiry=5.0, admits=admits)
        self.client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            trust_env=False,
            timeout=httpx.Timeout(settings.timeout),
            headers={
                "User-Agent": settings.user_agent or f"aggregator/{__version__}",
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.client.aclose()

    async def fetch(self, url: str, state: SourceState | None = None) -> Fetched:
        """The source's document, or 304; FetchError with a short `kind` otherwise."""
        host = (urlsplit(url).hostname or "").lower()
        async with self._global, self._hosts[host]:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.settings.timeout):
                    return await self._get(url, state, started)
            except TimeoutError:
                raise FetchError(
                    "timeout", f"no complete answer within {self.settings.timeout:g}s"
                ) from None
            except httpx.TimeoutException as exc:
                raise FetchError("timeout", f"timed out: {exc or type(exc).__name__}") from None
            except httpx.TooManyRedirects:
                raise FetchError("redirect_loop", f"more than {MAX_REDIRECTS} redirects") from None
            except httpx.UnsupportedProtocol as exc:
                raise FetchError(
                    "bad_redirect", f"redirected to a non-http(s) URL: {exc}"
                ) from None
            except httpx.TransportError as exc:
                raise _classify(exc) from None

    async def _get(self, url: str, state: SourceState | None, started: float) -> Fetched:
        headers = {}
        if state and state.etag:
            headers["If-None-Match"] = state.etag
        if state and state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        async with self.client.stream("GET", url, headers=headers) as response:
            etag = _header(response, "etag")
            last_modified = _header(response, "last-modified")
            moved_to = ""
            if response.history and all(r.status_code in (301, 308) for r in response.history):
                moved_to = str(response.url)
            if response.status_code == 304:
                return Fetched(
                    url=str(response.url),
                    status=304,
                    moved_to=moved_to,
                    etag=etag or (state.etag if state else ""),
                    last_modified=last_modified or (state.last_modified if state else ""),
                    elapsed=time.monotonic() - started,
                )
            if response.status_code != 200:
                code = response.status_code
                raise FetchError(
                    f"http_{code}",
                    f"HTTP {code} {response.reason_phrase}",
                    code,
                    retry_after=_header(response, "retry-after"),
                )
            body = await self._read_capped(response)
            return Fetched(
                url=str(response.url),
                status=200,
                body=body,
                content_type=_header(response, "content-type"),
                etag=etag,
                last_modified=last_modified,
                elapsed=time.monotonic() - started,
                moved_to=moved_to,
            )

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """The decoded body, refusing once it passes `max_feed_size` (gzip bombs included)."""
        cap = self.settings.max_feed_size
        too_large = FetchError("too_large", f"body larger than {cap} bytes", response.status_code)
        length = _header(response, "content-length")
        if length.isdigit() and int(length) > cap:
            raise too_large
        encoding = _header(response, "content-encoding").lower()
        inflater = _inflater(encoding)
        out = bytearray()
        async for chunk in response.aiter_raw():
            if inflater is None:
                out += chunk
            else:
                data = chunk
                while data:
                    out += inflater.decompress(data, cap + 1 - len(out))
                    if len(out) > cap:
                        raise too_large
                    data = inflater.unconsumed_tail
                    if inflater.eof and inflater.unused_data:  # the next gzip member
                        data = inflater.unused_data + data
                        inflater = _inflater(encoding)
            if len(out) > cap:
                raise too_large
        if inflater is not None:
            out += inflater.flush()
            if len(out) > cap:
                raise too_large
        return bytes(out)


def _inflater(encoding: str) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)  # zlib-wrapped, as RFC 9110 says
    if encoding in ("", "identity"):
        return None
    raise FetchError("bad_encoding", f"unsupported Content-Encoding {encoding!r}")


def _header(response: httpx.Response, name: str) -> str:
    value = response.headers.get(name, "")
    return value.strip() if value.isprintable() else ""


def _classify(exc: BaseException) -> FetchError:
    """A transport failure as an operator reads it: dns, refused, tls, blocked_address, ..."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, BlockedAddress) for e in chain):
        return FetchError(
            "blocked_address", str(next(e for e in chain if isinstance(e, BlockedAddress)))
        )
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        s in text
        for s in (
            "Name or service not known",
            "nodename nor servname",
            "name resolution",
            "No address associated",
            "cannot resolve",
        )
    ):
        return FetchError("dns", f"cannot resolve host: {_last_words(exc)}")
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text.lower():
        return FetchError("refused", "connection refused")
    if "SSL" in text or "certificate" in text.lower():
        return FetchError("tls", f"TLS error: {_last_words(exc)}")
    if isinstance(exc, httpx.ConnectError):
        return FetchError("connect", f"cannot connect: {_last_words(exc)}")
    return FetchError("network", f"{type(exc).__name__}: {_last_words(exc)}")


def _last_words(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
