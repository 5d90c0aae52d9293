"""The built-in server over real sockets: types, validators, 304s, gzip, no escape."""

from __future__ import annotations

import asyncio
import gzip
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
