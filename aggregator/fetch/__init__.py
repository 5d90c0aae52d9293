"""One conditional GET per source, bounded in time, size and concurrency -> `Fetched`.

On aiohttp directly (fetch/transport.py says why not httpx). What a client library does
not give: each pull runs under one `asyncio.timeout` (per-phase
timeouts let a dripping server hold a pull forever); bodies are read raw and inflated with
`max_length` against the cap (gzip bombs); a semaphore per host sits under the global one;
redirects are followed here, at most MAX_REDIRECTS, to http(s) only, and unless
`allow_private_networks` is set every address actually dialled (redirects and DNS
rebinding included) is checked before any byte is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from aggregator.fetch import lean  # noqa: F401  # first: aiohttp without its default contexts

# isort: split
import aiohttp
from yarl import URL

from aggregator import __version__
from aggregator.errors import ErrorKind, FetchError, http_kind
from aggregator.fetch.transport import BlockedAddress, is_literal, open_session, ssl_context
from aggregator.model import Fetched, Settings, SourceState
from aggregator.text.urls import is_public, web_host

MAX_REDIRECTS = 5
REDIRECTS = frozenset((301, 302, 303, 307, 308))
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
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
        self._admits: Allow | None = None
        if not settings.allow_private_networks:

            def admits(ip: str, port: int) -> bool:
                return is_public(ipaddress.ip_address(ip.split("%")[0])) or (
                    allow is not None and allow(ip, port)
                )

            self._admits = admits
        self._headers = {
            "User-Agent": settings.user_agent or f"aggregator/{__version__}",
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        }
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.timeout, sock_read=settings.timeout
        )
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (a fetcher opened without `async with` closes so)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str, state: SourceState | None = None) -> Fetched:
        """The source's document, or 304; FetchError with a short `kind` otherwise."""
        host = (urlsplit(url).hostname or "").lower()
        async with self._global, self._hosts[host], self._bounded():
            return await self._get(url, state, time.monotonic())

    async def post(self, url: str, form: dict[str, str]) -> int:
        """POST a form (a WebSub ping) through the same guarded pool, redirects not
        followed; the status, or FetchError as for `fetch`."""
        async with self._bounded():
            headers = {"User-Agent": self._headers["User-Agent"]}
            response = await self._send(url, headers, "POST", form)
            response.close()  # a hub's answer is its status
            return response.status

    @contextlib.asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        """One deadline for a whole exchange, and any failure as a FetchError of its kind."""
        try:
            async with asyncio.timeout(self.settings.timeout):
                yield
        except TimeoutError:
            raise FetchError(
                ErrorKind.TIMEOUT, f"no complete answer within {self.settings.timeout:g}s"
            ) from None
        except FetchError:
            raise
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise _classify(exc) from None

    async def _get(self, url: str, state: SourceState | None, started: float) -> Fetched:
        headers = self._headers
        if state and (state.etag or state.last_modified):
            headers = dict(headers)
            if state.etag:
                headers["If-None-Match"] = state.etag
            if state.last_modified:
                headers["If-Modified-Since"] = state.last_modified
        target, hops, permanent = url, 0, True
        while True:
            response = await self._send(target, headers)
            if response.status not in REDIRECTS or "Location" not in response.headers:
                break
            location = response.headers["Location"]
            response.close()  # a redirect's body is not read: its connection is not reused
            if hops == MAX_REDIRECTS:
                raise FetchError(ErrorKind.REDIRECT_LOOP, f"more than {MAX_REDIRECTS} redirects")
            hops += 1
            permanent = permanent and response.status in (301, 308)
            target = _resolve(target, location)
        try:
            return await self._answer(response, target, state, started, hops > 0 and permanent)
        finally:
            if response.content.at_eof():
                response.release()  # back to the pool
            else:
                response.close()  # a body left unread (an error, too large): dropped

    async def _send(
        self,
        url: str,
        headers: dict[str, str],
        method: str = "GET",
        form: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https"):  # a redirect to file:, ftp:, ...
            raise FetchError(
                ErrorKind.BAD_REDIRECT, f"redirected to a non-http(s) URL: {url[:200]}"
            )
        # the host as a browser reads it: "127.1", "017700000001", "[::7f00:1]" are literals
        host = web_host(url).strip("[]") or parsed.host or ""
        if self._admits is not None and is_literal(host):
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            if not self._admits(host, port):
                raise FetchError(
                    ErrorKind.BLOCKED_ADDRESS,
                    f"{host} is a private or local address (allow_private_networks = false)",
                )
        if self._session is None:
            self._session = open_session(self.settings.concurrency, 5.0, self._admits)
        return await self._session.request(
            method,
            parsed,
            headers=headers,
            data=form,
            allow_redirects=False,
            ssl=ssl_context() if parsed.scheme == "https" else True,
            timeout=self._timeout,
        )

    async def _answer(
        self,
        response: aiohttp.ClientResponse,
        url: str,
        state: SourceState | None,
        started: float,
        moved: bool,
    ) -> Fetched:
        etag = _header(response, "ETag")
        last_modified = _header(response, "Last-Modified")
        moved_to = url if moved else ""
        if response.status == 304:
            return Fetched(
                url=url,
                status=304,
                moved_to=moved_to,
                etag=etag or (state.etag if state else ""),
                last_modified=last_modified or (state.last_modified if state else ""),
                elapsed=time.monotonic() - started,
            )
        if response.status != 200:
            code = response.status
            raise FetchError(
                http_kind(code),
                f"HTTP {code} {response.reason or ''}".rstrip(),
                code,
                retry_after=_header(response, "Retry-After"),
            )
        body = await self._read_capped(response)
        return Fetched(
            url=url,
            status=200,
            body=body,
            content_type=_header(response, "Content-Type"),
            etag=etag,
            last_modified=last_modified,
            elapsed=time.monotonic() - started,
            moved_to=moved_to,
        )

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """The decoded body, refusing once it passes `max_feed_size` (gzip bombs included)."""
        cap = self.settings.max_feed_size
        too_large = FetchError(
            ErrorKind.TOO_LARGE, f"body larger than {cap} bytes", response.status
        )
        length = _header(response, "Content-Length")
        if length.isdigit() and int(length) > cap:
            raise too_large
        encoding = _header(response, "Content-Encoding").lower()
        inflater = _inflater(encoding)
        out = bytearray()
        stream = response.content
        while chunk := await stream.readany():
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


def _resolve(base: str, location: str) -> str:
    """A Location header against the URL that sent it (RFC 9110: may be relative)."""
    try:
        return str(URL(base).join(URL(location.strip())).with_fragment(None))
    except ValueError as exc:
        raise FetchError(
            ErrorKind.BAD_REDIRECT, f"unreadable Location {location[:200]!r}: {exc}"
        ) from None


def _inflater(encoding: str) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)  # zlib-wrapped, as RFC 9110 says
    if encoding in ("", "identity"):
        return None
    raise FetchError(ErrorKind.BAD_ENCODING, f"unsupported Content-Encoding {encoding!r}")


def _header(response: aiohttp.ClientResponse, name: str) -> str:
    value = response.headers.get(name, "")
    return value.strip() if value.isprintable() else ""


_DNS_WORDS = (
    "Name or service not known",
    "nodename nor servname",
    "name resolution",
    "No address associated",
    "cannot resolve",
)


def _classify(exc: BaseException) -> FetchError:
    """A transport failure as an operator reads it: dns, refused, tls, blocked_address, ..."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        where = f"{exc.host}:{exc.port}"
        reason = _last_words(cause) if cause is not None else _last_words(exc)
        if isinstance(cause, BlockedAddress):
            return FetchError(ErrorKind.BLOCKED_ADDRESS, str(cause))
        if (
            isinstance(exc, aiohttp.ClientConnectorDNSError)
            or isinstance(cause, socket.gaierror)
            or any(w in reason for w in _DNS_WORDS)
        ):
            return FetchError(ErrorKind.DNS, f"cannot resolve host: {where}: {reason}")
        if isinstance(cause, ConnectionRefusedError):
            return FetchError(ErrorKind.REFUSED, "connection refused")
        if isinstance(exc, aiohttp.ClientSSLError) or isinstance(cause, ssl.SSLError):
            return FetchError(ErrorKind.TLS, f"TLS error: {where}: {reason}")
        return FetchError(ErrorKind.CONNECT, f"cannot connect: {where}: {reason}")
    if isinstance(exc, BlockedAddress):
        return FetchError(ErrorKind.BLOCKED_ADDRESS, str(exc))
    if isinstance(exc, ssl.SSLError):
        return FetchError(ErrorKind.TLS, f"TLS error: {_last_words(exc)}")
    if isinstance(exc, aiohttp.InvalidURL):  # "127.1", "2130706433": legacy address forms
        return FetchError(ErrorKind.CONNECT, f"cannot connect: not dialled: {_last_words(exc)}")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return FetchError(ErrorKind.TIMEOUT, f"timed out: {_last_words(exc)}")
    if isinstance(exc, ConnectionRefusedError):
        return FetchError(ErrorKind.REFUSED, "connection refused")
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return FetchError(ErrorKind.NETWORK, f"the answer was cut: {_last_words(exc)}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return FetchError(ErrorKind.NETWORK, f"a malformed answer: {_last_words(exc)}")
    return FetchError(ErrorKind.NETWORK, f"{type(exc).__name__}: {_last_words(exc)}")


def _last_words(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
