"""The built-in server over real sockets: types, validators, 304s, gzip, no escape."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket

import httpx
import pytest

from aggregator import serve


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_server(root, check):
    async def go():
        port = _port()
        runner = await serve.start(root, f"127.0.0.1:{port}", lambda: {"status": "ok"}, 60)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await check(client)
        finally:
            await runner.cleanup()

    asyncio.run(go())


@pytest.fixture
def root(tmp_path):
    out = tmp_path / "feeds"
    out.mkdir()
    (out / "ai.rss").write_text("<rss>" + "x" * 2000 + "</rss>")
    (out / "ai.atom").write_text("<feed/>")
    (out / "ai.json").write_text("{}")
    (out / "index.html").write_text("<html>index</html>")
    (out / ".ai.rss.123.tmp").write_text("partial")
    (tmp_path / "secret.txt").write_text("secret")
    return out


def test_types_validators_and_304(root):
    async def check(client: httpx.AsyncClient):
        r = await client.get("/ai.rss", headers={"Accept-Encoding": "identity"})
        assert (
            r.status_code == 200
            and r.headers["content-type"] == "application/rss+xml; charset=utf-8"
        )
        etag, modified = r.headers["etag"], r.headers["last-modified"]
        assert etag.startswith('"') and "max-age=60" in r.headers["cache-control"]
        again = await client.get(
            "/ai.rss", headers={"If-None-Match": etag, "Accept-Encoding": "identity"}
        )
        assert again.status_code == 304 and again.content == b""
        since = await client.get("/ai.rss", headers={"If-Modified-Since": modified})
        assert since.status_code == 304
        assert (
            (await client.get("/ai.atom"))
            .headers["content-type"]
            .startswith("application/atom+xml")
        )
        assert (
            (await client.get("/ai.json"))
            .headers["content-type"]
            .startswith("application/feed+json")
        )
        index = await client.get("/")
        assert index.text == "<html>index</html>" and index.headers["content-type"].startswith(
            "text/html"
        )
        head = await client.head("/ai.rss", headers={"Accept-Encoding": "identity"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len("<rss>" + "x" * 2000 + "</rss>"))
        health = await client.get("/healthz")
        assert health.json() == {"status": "ok"}

    with_server(root, check)


def test_gzip_when_asked(root):
    async def check(client: httpx.AsyncClient):
        r = await client.get("/ai.rss", headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip"
        assert r.text.startswith("<rss>")  # httpx decodes it
        raw = await client.send(
            client.build_request("GET", "/ai.rss", headers={"Accept-Encoding": "gzip"}), stream=True
        )
        body = b"".join([chunk async for chunk in raw.aiter_raw()])
        assert gzip.decompress(body).startswith(b"<rss>")
        await raw.aclose()

    with_server(root, check)


def test_nothing_outside_the_folder_and_no_writes(root):
    async def check(client: httpx.AsyncClient):
        for path in (
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/..%2fsecret.txt",
            "/.ai.rss.123.tmp",
            "/nope.rss",
            "/%00",
            "//etc/passwd",
        ):
            r = await client.get(path)
            assert r.status_code == 404, path
        assert (await client.post("/ai.rss")).status_code == 405
        assert (await client.delete("/ai.rss")).status_code == 405

    with_server(root, check)


def test_gzip_refused_with_q0_and_a_future_date_is_no_validator(root):
    """Issue 21, item 10: `gzip;q=0` still got gzip; an If-Modified-Since in the future
    answered 304."""
    assert serve.accepts_gzip("gzip, deflate") and serve.accepts_gzip("br;q=1, *;q=0.5")
    assert not serve.accepts_gzip("gzip;q=0") and not serve.accepts_gzip("gzip;q=0.0, *")
    assert not serve.accepts_gzip("identity") and not serve.accepts_gzip("*;q=0")

    async def check(client: httpx.AsyncClient):
        plain = await client.get("/ai.rss", headers={"Accept-Encoding": "gzip;q=0, identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        future = await client.get(
            "/ai.rss",
            headers={
                "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT",
                "Accept-Encoding": "identity",
            },
        )
        assert future.status_code == 200 and future.content.startswith(b"<rss>")

    with_server(root, check)


# ---------------------------------------------------------------- hostile readers (issue 21)


def with_guarded_server(root, check, **limits):
    async def go():
        port = _port()
        runner = await serve.start(root, f"127.0.0.1:{port}", lambda: {"status": "ok"}, **limits)
        try:
            await check(port, runner.server)
        finally:
            await runner.cleanup()

    asyncio.run(go())


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing the connection, which must happen in time."""
    return await asyncio.wait_for(reader.read(), seconds)


def test_a_silent_or_dripping_reader_is_closed_after_the_idle_timeout(root):
    async def check(port, server):
        silent = await asyncio.open_connection("127.0.0.1", port)
        drip_reader, drip = await asyncio.open_connection("127.0.0.1", port)
        drip.write(b"GET /ai.rss HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # slowloris: a header line now and then, never the blank line
            await asyncio.sleep(0.2)
            drip.write(b"X-Slow: 1\r\n")
        assert await _closed_within(silent[0], 3) == b""
        assert await _closed_within(drip_reader, 3) == b""
        await asyncio.sleep(0.1)
        assert server.connections == []
        silent[1].close()
        drip.close()
        # an ordinary reader is served as before
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/ai.rss")).status_code == 200

    with_guarded_server(root, check, idle=0.5)


def test_readers_beyond_the_cap_get_503_and_the_others_are_served(root):
    async def check(port, server):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ai.rss HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await _closed_within(reader, 3)
        assert answer.startswith(b"HTTP/1.1 503 ")
        writer.close()
        # one of the three asks: it is served
        r, w = held[0]
        w.write(b"GET /ai.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await _closed_within(r, 3)).startswith(b"HTTP/1.1 200 ")
        for _, w in held:
            w.close()
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as client:  # room again
            assert (await client.get(f"http://127.0.0.1:{port}/ai.rss")).status_code == 200

    with_guarded_server(root, check, cap=3)


def test_a_reader_that_never_reads_holds_little_memory_and_is_cut_off(root):
    (root / "big.json").write_bytes(os.urandom(8 * 1024 * 1024))  # no gzip: incompressible

    async def check(port, server):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        _, writer = await asyncio.open_connection(sock=sock, limit=4096)
        writer.write(b"GET /big.json HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.3)
        (transport,) = server._connections.values()
        buffered = transport.get_write_buffer_size()
        assert 0 < buffered <= 3 * serve.WRITE_CHUNK  # not the 8 MB body
        deadline = asyncio.get_running_loop().time() + 5
        while server.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert server.connections == []  # cut off after the stall
        writer.close()

    with_guarded_server(root, check, stall=0.5)


def test_the_connection_cap_keeps_a_reserve_of_descriptors():
    assert serve.connection_cap(1024) == 1024 - serve.FD_RESERVE
    assert serve.connection_cap(1_048_576) == serve.MAX_CONNECTIONS
    assert serve.connection_cap(100) == 16  # never none
    assert serve.connection_cap(1024, pulls=100) == 1024 - serve.FD_RESERVE - 200
