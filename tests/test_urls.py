from pathlib import Path

import pytest

from aggregator.text.urls import absolute, canonical, is_web_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM:443/Path?b=2&a=1#frag", "https://example.com/Path?b=2&a=1"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://x.example/a?utm_source=rss&utm_medium=feed&id=7", "https://x.example/a?id=7"),
        (
            "https://x.example/a?fbclid=1&gclid=2&mc_cid=3&xtor=RSS-1&UTM_Campaign=z",
            "https://x.example/a",
        ),
        ("https://x.example/a?mc_eid=1&_hsenc=2&ref_src=twsrc", "https://x.example/a"),
        ("https://x.example/a?q=bitcoin&utm_term=x", "https://x.example/a?q=bitcoin"),
        ("https://bücher.example/a", "https://xn--bcher-kva.example/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("javascript:alert(1)", ""),
        ("ftp://example.com/a", ""),
        ("not a url", ""),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
    ],
)
def test_canonical(url, expected):
    assert canonical(url) == expected


def test_canonical_is_idempotent():
    url = "https://X.example:443/a/b?z=1&utm_source=s#top"
    assert canonical(canonical(url)) == canonical(url)


def test_absolute():
    assert absolute("../b", "https://x.example/a/c/") == "https://x.example/a/b"
    assert absolute("/p?q=1", "https://x.example/a/") == "https://x.example/p?q=1"
    assert absolute(" https://y.example/\n", "https://x.example/") == "https://y.example/"
    assert absolute("", "https://x.example/") == ""


def test_is_web_url():
    assert is_web_url("https://x.example/a")
    assert not is_web_url("https://user:pw@x.example/a")
    assert not is_web_url("javascript:alert(1)")
    assert not is_web_url("data:text/html,hi")
    assert not is_web_url("/relative")


# ---------------------------------------------------------------- local hosts (issue 21, item 9)

LOCAL_SPELLINGS = [
    "http://127.1/",
    "http://localhost./",
    "http://017700000001/",
    "http:\\\\127.0.0.1\\",
    "http:/127.0.0.1/",
    "http://%31%32%37.0.0.1/",
    "http://127\uff0e0\uff0e0\uff0e1/",  # full-width dots
    "http://127\u30020\u30020\u30021/",  # ideographic dots
    "http://\u2460\u2461\u2466.0.0.1/",  # circled digits
    "http://\u217cocalhost/",  # U+217C, a look-alike l
    "http://[::7f00:1]/",  # IPv4-compatible IPv6
    "http://[::ffff:127.0.0.1]/",
    "http://0x7f.1/",
    "http://192.168.0.1/",
    "http://printer.local/",
]


def test_every_spelling_of_a_local_host_is_one(tmp_path):
    from aggregator.text.sanitize import clean_html
    from aggregator.text.urls import names_local_host

    for url in LOCAL_SPELLINGS:
        assert names_local_host(url), url
        html = clean_html(
            f'<p>a <a href="{url}x">link</a> <img src="{url}i.png"></p>', "https://s.example/"
        )
        assert "href=" not in html and "src=" not in html, (url, html)
    for url in ("https://example.com/a", "https://10.0.0.1.nip.io/", "http://[2001:4860::1]/"):
        assert not names_local_host(url), url


def test_a_private_xml_base_never_makes_relative_links_absolute():
    from aggregator.parse.feed import parse

    doc = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://192.168.0.1/">'
        '<title>t</title><entry><title>a</title><id>1</id><link href="https://pub.example/a"/>'
        '<content type="html">&lt;p&gt;x &lt;img src="/cam.jpg"&gt; &lt;a href="admin"&gt;y&lt;/a&gt;&lt;/p&gt;</content>'
        "</entry></feed>"
    )
    from datetime import UTC, datetime

    from aggregator.model import Source
    from aggregator.normalize import normalize_feed

    parsed = parse(doc.encode(), "https://pub.example/feed")
    (item,) = normalize_feed(
        parsed, Source(name="s", url="https://pub.example/feed"), datetime.now(UTC)
    )
    assert "192.168" not in item.content_html and "src=" not in item.content_html


def test_the_fetcher_and_the_hub_ping_refuse_local_addresses(caplog):
    import asyncio
    import ipaddress

    from aggregator.fetch import websub
    from aggregator.text.urls import is_public

    assert not is_public(ipaddress.ip_address("::7f00:1"))  # was dialled as public
    assert not is_public(ipaddress.ip_address("::a00:1"))  # ::10.0.0.1
    assert is_public(ipaddress.ip_address("2001:4860::1"))
    from aggregator.model import Settings

    feeds = ["https://f.example/a.rss", "https://f.example/a.atom"]
    for hub in ("http://127.1:9/hub", "http://localhost:9/hub"):  # as written, as resolved
        caplog.clear()
        result = asyncio.run(websub.ping(Settings(Path("db"), Path("out"), hub=hub), feeds))
        assert result == dict.fromkeys(feeds, False)
        # refused before any connection (a try would retry for seconds and say "retrying")
        messages = [r.getMessage() for r in caplog.records]
        said = [m for m in messages if "private or local address" in m and "not pinged" in m]
        assert len(said) == 1, messages
        assert not any("retrying" in m for m in messages)
