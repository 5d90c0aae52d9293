"""Edits of config.toml made for editors (OPML import), keeping their comments and layout.

tomlkit edits the document in place, so comments, order and spacing survive; the result is
validated as a whole before it replaces the file, atomically, so a bad import never leaves
a broken config behind.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from lxml import etree

from aggregator.config.keys import NAME
from aggregator.config.load import parse
from aggregator.errors import ConfigError
from aggregator.text.urls import canonical

_SAFE_XML = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
)


@dataclass(frozen=True)
class Outline:
    url: str
    title: str
    language: str = ""


def parse_opml(data: bytes) -> list[Outline]:
    """Every outline with an http(s) xmlUrl, nested folders included."""
    try:
        root = etree.fromstring(data, _SAFE_XML)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not an OPML file: {exc}") from None
    if root.tag != "opml":
        raise ValueError(f"not an OPML file: root element is <{root.tag}>")
    found = []
    for node in root.iter("outline"):
        url = (node.get("xmlUrl") or node.get("xmlurl") or "").strip()
        if not canonical(url):
            continue
        title = " ".join((node.get("title") or node.get("text") or "").split())
        found.append(Outline(url, title, (node.get("language") or "").strip().lower()))
    return found


def slug(text: str, taken: set[str]) -> str:
    """A source name ([a-z0-9-]) from a title, unique among `taken`."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    base = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:40].strip("-") or "source"
    name, n = base, 2
    while name in taken or not NAME.match(name):
        name, n = f"{base}-{n}", n + 1
    return name


def import_sources(path: Path, outlines: list[Outline]) -> tuple[list[str], list[Outline]]:
    """Add the outlines whose feed config.toml lacks; returns (names added, skipped)."""
    text = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    if "sources" not in doc:
        doc.append("sources", tomlkit.aot())
    sources = doc["sources"]
    taken = {str(s.get("name", "")) for s in sources}
    known = {canonical(str(s.get("url", ""))) for s in sources}
    added, skipped = [], []
    for o in outlines:
        if canonical(o.url) in known:
            skipped.append(o)
            continue
        entry = tomlkit.table()
        name = slug(o.title or re.sub(r"^https?://(www\.)?", "", o.url), taken)
        entry.add("name", name)
        entry.add("url", o.url)
        if o.title:
            entry.add("title", o.title)
        if o.language and re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)*", o.language):
            entry.add("language", o.language.split("-")[0])
        sources.append(entry)
        taken.add(name)
        known.add(canonical(o.url))
        added.append(name)
    if added:
        new_text = tomlkit.dumps(doc)
        parse(new_text, path)  # the whole file must still be valid: ConfigError otherwise
        _write_atomically(path, new_text)
    return added, skipped


def add_source(path: Path, entry: dict[str, Any]) -> str:
    """Add one [[sources]] entry right after the last one; ConfigError (nothing written)
    when the result is invalid.

    Written into the text, not through tomlkit's document: tomlkit keeps the comments
    that follow the last source (the next section's heading, "# Topics") inside that
    source's table, and an entry appended to the array landed under them."""
    original = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(original)
    if "sources" not in doc:
        doc.append("sources", tomlkit.aot())
        table = tomlkit.table()
        for key, value in entry.items():
            table.add(key, value)
        doc["sources"].append(table)
        text = tomlkit.dumps(doc)
    else:
        block = tomlkit.dumps({"sources": [entry]})
        lines = original.splitlines(keepends=True)
        last = max(n for n, line in enumerate(lines) if line.strip().startswith("[[sources]]"))
        end = last  # the last line of that entry that is not blank or a comment
        for n in range(last + 1, len(lines)):
            stripped = lines[n].strip()
            if (
                stripped.startswith("[")
                and not stripped.startswith("[[sources]]")
                and "=" not in stripped
            ):
                break  # the next table's header
            if stripped and not stripped.startswith("#"):
                end = n
        head = "".join(lines[: end + 1])
        if not head.endswith("\n"):
            head += "\n"
        text = head + "\n" + block + "".join(lines[end + 1 :])
    parse(text, path)
    _write_atomically(path, text)
    return str(entry["name"])


def remove_source(path: Path, name: str) -> None:
    """Remove the [[sources]] entry called `name`; ConfigError when it would leave the file
    invalid (a curated feed still naming it), KeyError when there is none."""
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    sources = doc.get("sources")
    index = next((i for i, s in enumerate(sources or []) if s.get("name") == name), None)
    if sources is None or index is None:
        raise KeyError(name)
    del sources[index]
    text = tomlkit.dumps(doc)
    parse(text, path)
    _write_atomically(path, text)


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = [
    "ConfigError",
    "Outline",
    "add_source",
    "import_sources",
    "parse_opml",
    "remove_source",
    "slug",
]
