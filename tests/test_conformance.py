"""Published files hold to the standards: parsed strictly (lxml, no recovery) and checked
against the rules the W3C Feed Validation Service applies to RSS 2.0 and Atom 1.0, and the
JSON Feed 1.1 specification."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from conftest import FeedServer, rss, run_cli, seed_item, write_config
from lxml import etree

NOW = datetime.now(UTC).replace(microsecond=0)
ATOM = "{http://www.w3.org/2005/Atom}"
STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
CONFIG = """
[[sources]]
name = "fr"
url = "{fr}"
title = "Crypto FR"
tags = ["crypto"]

[[sources]]
name = "en"
url = "{en}"

[tags.ai]
keywords = ["AI", "IA", "OpenAI"]
[tags.crypto]
keywords = ["bitcoin"]

[[feeds]]
name = "all"
title = "Everything & more"
description = "Every story <once>."

[[feeds]]
name = "full"
title = "Full text"
content = "full"

[[feeds]]
name = "empty"
title = "Nothing matches"
any_tags = ["ai"]
languages = ["de"]
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("conformance")
    server = FeedServer()
    import threading

    threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
    try:
        fr = server.add("/fr.rss", rss([seed_item()], title="Crypto FR", language="fr-FR"))
        en = server.add(
            "/en.rss",
            rss(
                [
                    {
                        "title": "AI & bitcoin <b>miners</b>",
                        "link": "https://en.example/a?utm_source=x",
                        "guid": "a",
                        "date": NOW - timedelta(hours=1),
                        "description": "<p>Miners pivot to AI.</p>",
                        "author": "Ann",
                    },
                    {
                        "title": "No link item about bitcoin",
                        "guid": "b",
                        "date": NOW - timedelta(hours=2),
                        "description": "Text only.",
                    },
                ],
                title="EN News",
            ),
        )
        config = write_config(tmp, CONFIG.format(fr=fr, en=en))
        result = run_cli("--config", str(config), "run", "--once")
        assert result.returncode == 0, result.stderr
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    return tmp / "out"


def _no_empty_elements(root: etree._Element) -> None:
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        assert len(el) or (el.text or "").strip() or el.attrib, f"empty element {el.tag}"


def _rfc822(text: str) -> datetime:
    dt = parsedate_to_datetime(text)
    assert dt.tzinfo is not None, text
    return dt


@pytest.mark.parametrize("name", ["all", "full", "empty"])
def test_rss(out: Path, name: str):
    root = etree.fromstring((out / f"{name}.rss").read_bytes(), STRICT)
    assert root.tag == "rss" and root.get("version") == "2.0"
    _no_empty_elements(root)
    channel = root.find("channel")
    for tag in ("title", "link", "description"):
        assert channel.findtext(tag).strip()
    assert "Not investment advice" in channel.findtext("description")
    self_link = channel.find(f"{ATOM}link[@rel='self']")
    assert self_link.get("href") == f"http://feeds.test/{name}.rss"
    assert self_link.get("type") == "application/rss+xml"
    _rfc822(channel.findtext("lastBuildDate"))
    items = channel.findall("item")
    assert (len(items) == 0) == (name == "empty")
    for item in items:
        assert item.findtext("title").strip()
        guid = item.find("guid")
        assert guid.text.startswith("urn:uuid:") and guid.get("isPermaLink") == "false"
        _rfc822(item.findtext("pubDate"))
        assert item.findtext("description").rstrip().endswith("</p>")
        link = item.findtext("link")
        assert link is None or link.startswith("https://")
        source = item.find("source")
        assert source.get("url").startswith("http://127.0.0.1") and source.text.strip()
        assert item.findall("category")
    if name == "full":
        assert all(
            i.find("{http://purl.org/rss/1.0/modules/content/}encoded") is not None for i in items
        )


@pytest.mark.parametrize("name", ["all", "full", "empty"])
def test_atom(out: Path, name: str):
    root = etree.fromstring((out / f"{name}.atom").read_bytes(), STRICT)
    assert root.tag == f"{ATOM}feed"
    _no_empty_elements(root)
    assert root.findtext(f"{ATOM}id").startswith("urn:uuid:")
    assert root.findtext(f"{ATOM}title").strip()
    datetime.fromisoformat(root.findtext(f"{ATOM}updated"))
    assert root.find(f"{ATOM}author/{ATOM}name").text.strip()
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links["self"] == f"http://feeds.test/{name}.atom"
    assert links["alternate"] == "http://feeds.test/"
    for entry in root.findall(f"{ATOM}entry"):
        assert entry.findtext(f"{ATOM}id").startswith("urn:uuid:")
        assert entry.findtext(f"{ATOM}title").strip()
        datetime.fromisoformat(entry.findtext(f"{ATOM}updated"))
        datetime.fromisoformat(entry.findtext(f"{ATOM}published"))
        has_link = entry.find(f"{ATOM}link[@href]") is not None
        wanted = "content" if name == "full" or not has_link else "summary"
        assert entry.find(f"{ATOM}{wanted}").get("type") == "html"
        source = entry.find(f"{ATOM}source")
        for tag in ("id", "title", "updated"):
            assert source.findtext(f"{ATOM}{tag}").strip()
    ids = [e.findtext(f"{ATOM}id") for e in root.findall(f"{ATOM}entry")]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", ["all", "full", "empty"])
def test_json_feed(out: Path, name: str):
    feed = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] and feed["home_page_url"] == "http://feeds.test/"
    assert feed["feed_url"] == f"http://feeds.test/{name}.json"
    assert feed["authors"][0]["name"]
    for item in feed["items"]:
        assert item["id"].startswith("urn:uuid:") and isinstance(item["id"], str)
        assert item["content_html"] and item["content_text"]
        datetime.fromisoformat(item["date_published"])
        datetime.fromisoformat(item["date_modified"])
        assert item["tags"] and item["language"] in ("en", "fr")
        if "url" in item:
            assert item["url"].startswith("https://")
        for key in item:
            assert key in {
                "id",
                "url",
                "title",
                "content_html",
                "content_text",
                "summary",
                "date_published",
                "date_modified",
                "authors",
                "tags",
                "language",
                "_source",
            }, key


def test_index_and_opml(out: Path):
    html = (out / "index.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    for name in ("all", "full", "empty"):
        for suffix, mime in (
            ("rss", "application/rss+xml"),
            ("atom", "application/atom+xml"),
            ("json", "application/feed+json"),
        ):
            assert f'type="{mime}"' in html and f'href="http://feeds.test/{name}.{suffix}"' in html
    assert "Everything &amp; more" in html and "Every story &lt;once&gt;." in html
    assert "Crypto FR" in html and "EN News" in html
    for name in ("sources.opml", "feeds.opml"):
        root = etree.fromstring((out / name).read_bytes(), STRICT)
        assert root.tag == "opml" and root.get("version") == "2.0"
        outlines = root.findall("body/outline")
        assert outlines and all(o.get("xmlUrl") and o.get("text") for o in outlines)
    feeds = etree.fromstring((out / "feeds.opml").read_bytes(), STRICT)
    assert [o.get("xmlUrl") for o in feeds.findall("body/outline")] == [
        f"http://feeds.test/{n}.rss" for n in ("all", "full", "empty")
    ]
