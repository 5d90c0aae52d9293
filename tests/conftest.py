"""Shared test parts: a real HTTP server on 127.0.0.1, feed builders, configs, the CLI."""

from __future__ import annotations

import hashlib
import html
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


# ---------------------------------------------------------------- HTTP server


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    validators: bool = True  # send ETag/Last-Modified and answer 304s
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None


def send_feed(request: BaseHTTPRequestHandler, body: bytes) -> None:
    """Answer a route handler's request with an RSS document."""
    request.send_response(200)
    request.send_header("Content-Type", "application/rss+xml")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


class InFlight:
    """Route handlers answering after `delay` seconds, counting the requests in flight over
    all of them: `now`, and `most` at once (a fetch limit, a lease, seen from the server)."""

    def __init__(self, delay: float = 0.0):
        self.delay, self.now, self.most = delay, 0, 0
        self._lock = threading.Lock()

    def serving(self, body: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
        def handler(request: BaseHTTPRequestHandler) -> None:
            with self._lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                if self.delay:
                    import time

                    time.sleep(self.delay)
                send_feed(request, body)
            finally:
                with self._lock:
                    self.now -= 1

        return handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up mid-answer (size caps, deadlines) are what the tests provoke.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FeedServer:
    """Serves `routes` over real sockets; records every request (path and headers)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.posts: list[tuple[str, str]] = []  # (path, form body)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                server.posts.append((self.path, body))
                route = server.routes.get(self.path)
                status = route.status if route else 404
                self._send(status, b"", "text/plain", {})

            def do_GET(self) -> None:
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain", {})
                    return
                if route.handler is not None:
                    route.handler(self)
                    return
                headers = dict(route.headers)
                if route.validators and route.status == 200:
                    etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
                    headers.setdefault("ETag", etag)
                    headers.setdefault("Last-Modified", "Sat, 21 Nov 2026 10:00:00 GMT")
                    if self.headers.get("If-None-Match") == headers["ETag"]:
                        self._send(304, b"", None, headers)
                        return
                self._send(route.status, route.body, route.content_type, headers)

            def _send(self, status: int, body: bytes, ctype: str | None, headers: dict) -> None:
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes | str, **kw: object) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body=body, **kw)  # type: ignore[arg-type]
        return self.url(path)

    def hits(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer()
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


# ---------------------------------------------------------------- feed builders


def needs_tool(command: str, package: str) -> pytest.MarkDecorator:
    """Skip a test whose system tool is missing, saying how to install it; in CI, fail instead.

    `make test` never installs system packages: `.ci/run` installs them explicitly, so a CI
    run without the tool is a broken CI machine, not a reason to skip.
    """
    missing = shutil.which(command) is None
    if missing and os.environ.get("CI"):
        pytest.fail(f"{command} is missing in CI: .ci/run should have installed {package}")
    return pytest.mark.skipif(
        missing, reason=f"{command} is not installed (sudo apt-get install {package})"
    )


def run_in_pty(*args: str, columns: int = 80) -> str:
    """The CLI run to its end with a pseudo-terminal as its terminal (`columns` wide):
    everything it wrote there, as the operator's screen received it."""
    import pty

    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    env["COLUMNS"] = str(columns)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, the pty its stdin, stdout and stderr
        os.execve(sys.executable, [sys.executable, "-m", "aggregator", *args], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    os.close(fd)
    return out.decode("utf-8", "replace")


def rfc822(dt: datetime) -> str:
    return format_datetime(dt.astimezone(UTC), usegmt=True)


def rss(items: list[dict], title: str = "Test feed", language: str = "en") -> str:
    """An RSS 2.0 document; item keys: title, link, guid, date, description, content,
    categories, author."""
    out = []
    for it in items:
        parts = [f"<title>{html.escape(it['title'])}</title>"]
        if "link" in it:
            parts.append(f"<link>{html.escape(it['link'])}</link>")
        if "guid" in it:
            parts.append(f'<guid isPermaLink="false">{html.escape(it["guid"])}</guid>')
        if "date" in it:
            parts.append(f"<pubDate>{rfc822(it['date'])}</pubDate>")
        if "description" in it:
            parts.append(f"<description>{html.escape(it['description'])}</description>")
        if "content" in it:
            parts.append(f"<content:encoded><![CDATA[{it['content']}]]></content:encoded>")
        for c in it.get("categories", []):
            parts.append(f"<category>{html.escape(c)}</category>")
        if "author" in it:
            parts.append(f"<dc:creator>{html.escape(it['author'])}</dc:creator>")
        out.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{html.escape(title)}</title><link>https://{title.lower().replace(' ', '-')}.example/</link>"
        f"<description>{html.escape(title)}</description><language>{language}</language>"
        + "\n".join(out)
        + "</channel></rss>"
    )


def seed_item() -> dict:
    """The seed article as an item of a French crypto site's feed, disclaimer included."""
    lines = (FIXTURES / "seed_fr.txt").read_text(encoding="utf-8").strip().splitlines()
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines[2:])
    return {
        "title": lines[0],
        "link": "https://crypto-fr.example/openai-fermeture/?utm_source=rss&utm_medium=rss",
        "guid": "https://crypto-fr.example/?p=206",
        "date": datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        "description": lines[1],
        "content": body,
        "categories": ["Intelligence artificielle", "Actualités"],
        "author": "Rédaction",
    }


# ---------------------------------------------------------------- configs and the CLI

BASE_CONFIG = """
[aggregator]
database = "agg.db"
output_dir = "out"
base_url = "http://feeds.test/"
timeout = "{timeout}"
retention = "{retention}"
allow_private_networks = true
listen = ""

[disclaimer]
default = "en"
en = "Not investment advice. Do your own research."
fr = "Cet article ne constitue pas un conseil en investissement. Faites vos propres recherches."
"""


def write_config(tmp_path: Path, body: str, timeout: str = "5s", retention: str = "3650d") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(BASE_CONFIG.format(timeout=timeout, retention=retention) + body, "utf-8")
    return path


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A real PostgreSQL server (tests/pg.py); `.database()` makes a fresh database."""
    from pg import Server

    server = Server()
    yield server
    server.stop()
