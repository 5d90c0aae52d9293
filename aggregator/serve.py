"""The HTTP server for `output_dir`: GET and HEAD of published files, 304s, gzip, /healthz,
and the daemon's /metrics.

Built on aiohttp: it parses requests and writes headers safely (no CR/LF smuggled into a
header) and runs inside the daemon's own event loop without taking over its signals, which
Python's `http.server` (not for production) and uvicorn (installs signal handlers) do not
offer. Files are small and change only on publish, so each is read once per change and
kept with its strong ETag and its gzip form.

Readers share the daemon's file descriptors and memory with pulls and publishing, so a
reader can hold neither for long: a connection that sends no complete request within
IDLE_TIMEOUT (slowloris) or stays idle that long is closed; connections beyond the cap (the
open-files limit less a reserve for pulls, the database and publishing) get a 503 and are
closed; a body is written in chunks of WRITE_CHUNK, so a reader that never reads holds at
most that much of our memory, and one whose buffer has not shrunk for WRITE_STALL seconds
is cut off.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aggregator.fetch import lean  # noqa: F401  # first: aiohttp without its default contexts

# isort: split
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from aggregator.errors import AggregatorError
from aggregator.units import parse_http_date

log = logging.getLogger("aggregator.serve")

CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
GZIP_MIN = 512
IDLE_TIMEOUT = 15.0  # seconds to send a whole request, and to stay idle between requests
WRITE_STALL = 30.0  # seconds a reader may leave our send buffer unread
WRITE_CHUNK = 64 * 1024  # bytes handed to a connection at a time
FD_RESERVE = 256  # descriptors kept for pulls, the database, workers and publishing
MAX_CONNECTIONS = 4096
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

Health = Callable[[], dict[str, Any]]
Metrics = Callable[[], tuple[bytes, str]]  # the exposition and its content type


@dataclass(frozen=True)
class _Cached:
    mtime_ns: int
    size: int
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime


class FeedFiles:
    """Serves the files of one folder; nothing outside it, no listings, no dotfiles."""

    def __init__(
        self, root: Path, health: Health, max_age: int = 300, metrics: Metrics | None = None
    ):
        self.root = root.resolve()
        self.health = health
        self.metrics = metrics  # the daemon's, for GET /metrics (daemon/metrics.py)
        self.max_age = max_age
        self._cache: dict[Path, _Cached] = {}

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return web.Response(
                status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD"}
            )
        if request.path == "/healthz":
            health = self.health()
            body = json.dumps(health, sort_keys=True).encode()
            return web.Response(
                status=200 if health.get("status") == "ok" else 503,
                body=body,
                content_type="application/json",
                headers={"Cache-Control": "no-store"},
            )
        if request.path == "/metrics" and self.metrics is not None:
            body, content_type = self.metrics()
            return web.Response(
                body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
            )
        path = self._resolve(request.path)
        if path is None:
            return web.Response(status=404, text="not found\n")
        cached = self._load(path)
        if cached is None:
            return web.Response(status=404, text="not found\n")
        use_gzip = accepts_gzip(request.headers.get("Accept-Encoding", "")) and bool(cached.gzipped)
        etag = cached.etag[:-1] + '-gz"' if use_gzip else cached.etag
        headers = {
            "ETag": etag,
            "Last-Modified": format_datetime(cached.last_modified, usegmt=True),
            "Cache-Control": f"public, max-age={self.max_age}",
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if self._not_modified(request, cached, {cached.etag, etag}):
            return web.Response(status=304, headers=headers)
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        body = cached.gzipped if use_gzip else cached.body
        headers["Content-Type"] = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        if len(body) <= WRITE_CHUNK or request.method == "HEAD":
            return web.Response(body=body, headers=headers)
        response = web.StreamResponse(headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        view = memoryview(body)
        try:
            for start in range(0, len(body), WRITE_CHUNK):  # each write waits for the buffer
                await response.write(view[start : start + WRITE_CHUNK])
            await response.write_eof()
        except ConnectionError:  # the reader left, or was cut off for not reading
            pass
        return response

    def _resolve(self, url_path: str) -> Path | None:
        """The file a URL path names, or None when it would leave the folder or is hidden."""
        rel = unquote(url_path).lstrip("/") or "index.html"
        parts = rel.split("/")
        if (
            "\\" in rel
            or "\0" in rel
            or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
        ):
            return None
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path

    def _load(self, path: Path) -> _Cached | None:
        try:
            st = path.stat()
            cached = self._cache.get(path)
            if cached and (cached.mtime_ns, cached.size) == (st.st_mtime_ns, st.st_size):
                return cached
            body = path.read_bytes()
        except OSError:
            return None
        digest = hashlib.sha256(body).hexdigest()[:24]
        cached = _Cached(
            mtime_ns=st.st_mtime_ns,
            size=st.st_size,
            body=body,
            gzipped=gzip.compress(body, mtime=0) if len(body) >= GZIP_MIN else b"",
            etag=f'"{digest}"',
            last_modified=datetime.fromtimestamp(int(st.st_mtime), UTC),
        )
        self._cache[path] = cached
        return cached

    @staticmethod
    def _not_modified(request: web.BaseRequest, cached: _Cached, etags: set[str]) -> bool:
        match = request.headers.get("If-None-Match")
        if match is not None:
            wanted = {t.strip().removeprefix("W/") for t in match.split(",")}
            return "*" in wanted or bool(wanted & etags)
        since = request.headers.get("If-Modified-Since")
        if since:
            when = parse_http_date(since)
            # a date in the future is invalid (RFC 9110 13.1.3): answer in full
            return when is not None and cached.last_modified <= when <= datetime.now(UTC)
        return False


def accepts_gzip(header: str) -> bool:
    """Whether Accept-Encoding accepts gzip: listed (or `*`) with a q above 0."""
    best = None
    for part in header.lower().split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding.strip() == "gzip":
            return q > 0
        if coding.strip() == "*":
            best = q > 0
    return bool(best)


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def connection_cap(open_files: int, pulls: int = 0) -> int:
    """How many readers may be connected at once with `open_files` descriptors, keeping
    FD_RESERVE and two for each of `pulls` pulls in flight (a socket, a redirect's)."""
    return max(16, min(MAX_CONNECTIONS, open_files - FD_RESERVE - 2 * pulls))


class _Guarded(web.Server):
    """aiohttp's server with a cap on connections and a watch on stalled writes."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        cap: int,
        stall: float,
        **kwargs: Any,
    ):
        super().__init__(handler, **kwargs)
        self.cap = cap
        self.stall = stall
        self.refused = 0
        self._unread: dict[asyncio.Transport, tuple[int, float]] = {}

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) > self.cap:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning(
                    "%d readers connected, the most this server takes: answering 503 (%d so far)",
                    self.cap,
                    self.refused,
                )
            transport.write(_BUSY)
            transport.close()

    def sweep(self, now: float) -> None:
        """Cut off the connections whose send buffer has not shrunk for `stall` seconds."""
        unread = {}
        for transport in list(self._connections.values()):
            size = transport.get_write_buffer_size()
            if not size or transport.is_closing():
                continue
            before, since = self._unread.get(transport, (0, now))
            if size < before:
                since = now
            if now - since >= self.stall:
                transport.abort()
                continue
            unread[transport] = (size, since)
        self._unread = unread


class _Runner(web.ServerRunner):
    """Runs the sweeps of its server for as long as it serves."""

    def __init__(self, server: _Guarded, every: float):
        super().__init__(server, shutdown_timeout=5.0)  # stopping waits for no slow reader
        self._guarded = server
        self._every = every
        self._sweeper: asyncio.Task[None] | None = None

    async def setup(self) -> None:
        await super().setup()
        self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._every)
            self._guarded.sweep(loop.time())

    async def cleanup(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._guarded.sweep(float("inf"))  # readers still not reading are not waited for
        await super().cleanup()


def _open_files() -> int:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_CONNECTIONS + FD_RESERVE if soft == resource.RLIM_INFINITY else soft


async def start(
    root: Path,
    listen: str,
    health: Health,
    max_age: int = 300,
    hint: str = "",
    idle: float = IDLE_TIMEOUT,
    stall: float = WRITE_STALL,
    cap: int | None = None,
    pulls: int = 0,
    metrics: Metrics | None = None,
) -> web.BaseRunner:
    """Serve `root` on `listen` ("host:port") in the running event loop; a listener that
    cannot be opened is one AggregatorError naming the address, the cause and `hint`.
    `cap` (readers at once) defaults to what the open-files limit allows beside `pulls`
    pulls in flight."""
    root.mkdir(parents=True, exist_ok=True)
    server = _Guarded(
        FeedFiles(root, health, max_age, metrics).handle,
        cap=cap if cap is not None else connection_cap(_open_files(), pulls),
        stall=stall,
        keepalive_timeout=idle,  # aiohttp closes a connection idle this long, from its start
        access_log=None,
    )
    runner = _Runner(server, every=min(1.0, stall / 4))
    await runner.setup()
    host, port = parse_listen(listen)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:  # port taken, address not on this machine, port below 1024
        await runner.cleanup()
        cause = {
            errno.EADDRINUSE: "the port is in use (another aggregator or server?)",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
            errno.EADDRNOTAVAIL: "the address is not one of this machine's",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise AggregatorError(f"cannot listen on {listen}: {cause}{hint}") from None
    log.info("serving %s on http://%s:%d/ (up to %d readers at once)", root, host, port, server.cap)
    return runner
