"""fetch against a real loopback server: validators, caps, redirects, classed errors."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import time
import zlib
from pathlib import Path

import pytest
from conftest import FeedServer, Route

from aggregator.errors import FetchError
from aggregator.fetch import Fetcher, is_public
from aggregator.model import Settings, SourceState


def settings(**kw) -> Settings:
    base = dict(
        database=Path("x.db"),
        output_dir=Path("out"),
        timeout=3.0,
        allow_private_networks=True,
        user_agent="agg-test/1.0",
    )
    return Settings(**(base | kw))


def fetch(url: str, state: SourceState | None = None, **kw):
    async def go():
        async with Fetcher(settings(**kw)) as f:
            return await f.fetch(url, state)

    return asyncio.run(go())


def fetch_error(url: str, **kw) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, **kw)
    return info.value


def test_conditional_get_and_user_agent(server: FeedServer):
    url = server.add("/f", "<rss/>")
    first = fetch(url)
    assert first.status == 200 and first.body == b"<rss/>" and first.etag
    headers = server.hits("/f")[0]
    assert headers["user-agent"] == "agg-test/1.0"
    assert "gzip" in headers["accept-encoding"]
    state = SourceState("s", etag=first.etag, last_modified=first.last_modified)
    second = fetch(url, state)
    assert second.not_modified and second.etag == first.etag and second.body == b""
    assert server.hits("/f")[1]["if-none-match"] == first.etag


def test_gzip_and_deflate_are_decoded(server: FeedServer):
    body = b"<rss>" + b"x" * 10000 + b"</rss>"
    url = server.add("/gz", gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert fetch(url).body == body
    url = server.add("/df", zlib.compress(body), headers={"Content-Encoding": "deflate"})
    assert fetch(url).body == body


def test_gzip_bomb_is_cut_at_the_cap(server: FeedServer):
    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=9)  # 200 MB in ~200 KB
    url = server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    started = time.monotonic()
    err = fetch_error(url, max_feed_size=1_000_000)
    assert err.kind == "too_large"
    assert time.monotonic() - started < 3


def test_declared_length_over_the_cap(server: FeedServer):
    url = server.add("/big", b"x" * 2000)
    assert fetch_error(url, max_feed_size=1000).kind == "too_large"


def test_redirects_followed_and_loops_refused(server: FeedServer):
    target = server.add("/new", "<rss/>")
    server.add("/old", "", status=301, headers={"Location": target}, validators=False)
    got = fetch(server.url("/old"))
    assert got.url == target and got.body == b"<rss/>"
    server.add("/loop", "", status=302, headers={"Location": "/loop"}, validators=False)
    assert fetch_error(server.url("/loop")).kind == "redirect_loop"


def test_http_errors_dns_and_refused(server: FeedServer):
    server.add("/missing", "", status=404)
    err = fetch_error(server.url("/missing"))
    assert (err.kind, err.status) == ("http_404", 404)
    server.add("/down", "", status=503)
    assert fetch_error(server.url("/down")).kind == "http_503"
    dns = fetch_error("https://does-not-exist.invalid/feed")
    assert dns.kind == "dns" and "does-not-exist.invalid:443" in str(dns)
    assert "object at 0x" not in str(dns)  # what operators read in `status`
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert fetch_error(f"http://127.0.0.1:{port}/").kind == "refused"


def test_total_deadline_beats_a_dripping_server(server: FeedServer):
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.end_headers()
        try:
            for _ in range(40):
                handler.wfile.write(b"<")
                handler.wfile.flush()
                time.sleep(0.25)
        except OSError:
            pass

    server.routes["/drip"] = Route(handler=drip)
    started = time.monotonic()
    err = fetch_error(server.url("/drip"), timeout=1.5)
    assert err.kind == "timeout"
    assert time.monotonic() - started < 3


def test_private_addresses_are_refused_by_default(server: FeedServer):
    url = server.add("/f", "<rss/>")
    err = fetch_error(url, allow_private_networks=False)
    assert err.kind == "blocked_address" and "127.0.0.1" in str(err)
    localhost = url.replace("127.0.0.1", "localhost")
    assert fetch_error(localhost, allow_private_networks=False).kind == "blocked_address"
    for legacy in ("http://2130706433/feed", "http://127.1/feed"):  # never dialled
        assert fetch_error(legacy, allow_private_networks=False).kind in (
            "connect",
            "blocked_address",
        )
    # and through a redirect from an allowed-looking start: the dial itself is checked
    assert server.hits("/f") == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::", False),
        ("2606:4700:4700::1111", True),
        ("fe80::1", False),
    ],
)
def test_is_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def test_concurrency_is_bounded_globally_and_per_host(server: FeedServer):
    import threading

    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(handler):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.3)
        with lock:
            active["now"] -= 1
        handler.send_response(200)
        handler.send_header("Content-Length", "6")
        handler.end_headers()
        handler.wfile.write(b"<rss/>")

    for n in range(6):
        server.routes[f"/slow{n}"] = Route(handler=slow)

    async def go(per_host: int, concurrency: int):
        async with Fetcher(settings(per_host=per_host, concurrency=concurrency)) as f:
            await asyncio.gather(*(f.fetch(server.url(f"/slow{n}")) for n in range(6)))

    asyncio.run(go(per_host=2, concurrency=16))
    assert active["max"] == 2  # one host: never more than per_host at once
    active["max"] = 0
    asyncio.run(go(per_host=10, concurrency=3))
    assert active["max"] == 3  # the global limit


def test_aiohttp_is_imported_without_its_default_contexts():
    """fetch/lean.py: aiohttp's import-time default contexts hold no CA (they cost 60-100
    ms of every pull's start and nothing uses them), so a request falling back on them
    would fail verification, never pass unverified; `ssl` is itself again after."""
    import subprocess
    import sys

    code = (
        "import ssl, certifi, aggregator.fetch, aiohttp.connector as c\n"
        "verified = c._SSL_CONTEXT_VERIFIED\n"
        "print(verified.cert_store_stats()['x509_ca'], verified.verify_mode.name,"
        " verified.check_hostname)\n"
        "print(ssl.create_default_context.__module__, ssl.SSLContext.set_default_verify_paths"
        ".__qualname__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "0 CERT_REQUIRED True", out
    assert out[1] == "ssl _SSLContext.set_default_verify_paths", out


def test_a_certificate_that_does_not_verify_is_a_tls_error(tmp_path: Path):
    """https sources are verified against certifi's bundle: a self-signed server fails
    with kind tls, never with the certificate silently accepted."""
    import shutil
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"<rss/>")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        err = fetch_error(f"https://127.0.0.1:{httpd.server_address[1]}/feed")
        assert err.kind == "tls", (err.kind, str(err))
        assert "object at 0x" not in str(err)
    finally:
        httpd.shutdown()
        httpd.server_close()
