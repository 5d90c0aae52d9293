import pytest

from aggregator.urls import absolute, canonical, is_web_url


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
