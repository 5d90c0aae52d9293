"""OPML in and out: export the sources, import a reader's subscriptions into config.toml."""

from __future__ import annotations

import shutil
import tomllib

from conftest import ROOT, run_cli
from lxml import etree

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My reader</title></head>
  <body>
    <outline text="Crypto">
      <outline type="rss" text="Cointelegraph" xmlUrl="https://cointelegraph.com/rss?utm_source=reader"/>
      <outline type="rss" text="Le Monde Pixels" title="Le Monde — Pixels" xmlUrl="https://www.lemonde.fr/pixels/rss_full.xml" language="fr-FR"/>
    </outline>
    <outline type="rss" text="Rest of World" xmlUrl="https://restofworld.org/feed/latest"/>
    <outline type="rss" text="Broken" xmlUrl="javascript:alert(1)"/>
    <outline text="Just a folder"/>
  </body>
</opml>
"""


def test_import_adds_new_sources_keeping_comments(tmp_path):
    config = tmp_path / "config.toml"
    shutil.copy(ROOT / "config.toml", config)
    before = config.read_text()
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML)
    result = run_cli("--config", str(config), "sources", "import", str(opml))
    assert result.returncode == 0, result.stderr
    assert "added le-monde-pixels" in result.stdout and "added rest-of-world" in result.stdout
    assert (
        "skipped https://cointelegraph.com/rss?utm_source=reader (already a source)"
        in result.stdout
    )
    after = config.read_text()
    assert after.startswith(before.rstrip("\n")[:2000])  # the editors' text is untouched
    assert "# keywords: whole words or phrases" in after
    data = tomllib.loads(after)
    added = {s["name"]: s for s in data["sources"]}
    assert added["le-monde-pixels"] == {
        "name": "le-monde-pixels",
        "url": "https://www.lemonde.fr/pixels/rss_full.xml",
        "title": "Le Monde — Pixels",
        "language": "fr",
    }
    assert run_cli("--config", str(config), "check").returncode == 0
    again = run_cli("--config", str(config), "sources", "import", str(opml))
    assert "0 sources added" in again.stdout and config.read_text() == after


def test_import_refuses_what_is_not_opml(tmp_path):
    config = tmp_path / "config.toml"
    shutil.copy(ROOT / "config.toml", config)
    bad = tmp_path / "bad.opml"
    bad.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><opml><body><outline xmlUrl="&e;"/></body></opml>'
    )
    result = run_cli("--config", str(config), "sources", "import", str(bad))
    assert result.returncode == 2 and "not an OPML file" in result.stderr
    assert "root:" not in config.read_text()  # no external entity ever read
    assert config.read_text() == (ROOT / "config.toml").read_text()


def test_export_lists_every_source():
    result = run_cli("--config", str(ROOT / "config.toml"), "sources", "export")
    assert result.returncode == 0
    root = etree.fromstring(result.stdout.encode())
    urls = [o.get("xmlUrl") for o in root.iter("outline")]
    shipped = tomllib.loads((ROOT / "config.toml").read_text())["sources"]
    assert urls == [s["url"] for s in shipped]
