"""httpx's client on aiohttp's connections: the same API, a third of the CPU a request.

httpx 0.28 spends about 1 ms of CPU on each request in its own connection pool and h11
(design/performance.md), which is the whole cost of a pass of 304s. httpx keeps what we
use it for (redirects, headers, streaming, timeouts); aiohttp's C parser and pool carry
the bytes. Nothing is decoded here: bodies stay compressed for the capped inflater, and
the guard against private addresses checks every address dialled, by name or literal.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult


class BlockedAddress(OSError):
    """The name resolved to an address that `allow_private_networks = false` forbids."""


class _PublicOnlyResolver(AbstractResolver):
    """Resolves with the system and keeps only the addresses that may be dialled."""

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


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # back to the pool
        else:
            self._response.close()  # a body left unread (too large): drop the connection


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session behind an httpx client; `admits(ip, port)` guards every dial
    (None: any address)."""

    def __init__(
        self,
        max_connections: int,
        keepalive_expiry: float | None,
        admits: Callable[[str, int], bool] | None = None,
    ) -> None:
        self._max = max_connections
        self._keepalive = keepalive_expiry or 5.0
        self._admits = admits
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max,
                limit_per_host=0,  # the fetcher's per-host semaphores do that
                keepalive_timeout=self._keepalive,
                resolver=_PublicOnlyResolver(self._admits) if self._admits else None,
                ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:  # built on the first https request (~30 ms: the CA bundle)
            self._ssl = httpx.create_ssl_context(trust_env=False)
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):  # a redirect to file:, ftp:, ...
            raise httpx.UnsupportedProtocol(f"{url.scheme}: is not fetched", request=request)
        host = url.host
        if self._admits is not None and _is_literal(host):
            port = url.port or (443 if url.scheme == "https" else 80)
            if not self._admits(host, port):
                blocked = BlockedAddress(
                    f"{host} is a private or local address (allow_private_networks = false)"
                )
                raise httpx.ConnectError(str(blocked), request=request) from blocked
        timeout = request.extensions.get("timeout", {})
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        body = None if request.method in ("GET", "HEAD") else await request.aread()
        with _mapped(request):
            response = await self._get_session().request(
                request.method,
                str(url),
                headers=headers,
                data=body,
                allow_redirects=False,
                ssl=self._ssl_context() if url.scheme == "https" else True,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"), sock_read=timeout.get("read")
                ),
            )
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def _mapped(request: httpx.Request | None = None) -> Iterator[None]:
    """aiohttp's errors as httpx's, with the original as the cause (the fetcher reads the
    chain: a refused connection, a name that does not resolve, a blocked address)."""
    try:
        yield
    except httpx.HTTPError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
    except aiohttp.InvalidURL as exc:  # "127.1", "2130706433": legacy address forms
        raise httpx.ConnectError(f"not dialled: {exc}", request=request) from exc
    except aiohttp.ClientConnectorError as exc:  # its own text shows the SSL context's repr
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        raise httpx.ConnectError(f"{exc.host}:{exc.port}: {reason}", request=request) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.ClientResponseError as exc:  # a malformed answer
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc
