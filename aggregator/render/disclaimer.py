"""The investment disclaimer: in the item's language, the last paragraph, never twice.

Many crypto sites already end their articles with a disclaimer (the seed article does).
A block or line that already carries ours is removed, with the heading just before it
("AVIS DE NON RESPONSABILITÉ", "Disclaimer"), before ours is appended, so the text never
shows it twice and ours is always last.
"""

from __future__ import annotations

import html
import re

from aggregator.text.sanitize import boilerplate_probe, text_key

_BLOCK = re.compile(r"<(p|h[1-6]|div|blockquote)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_HEADINGS = (
    "disclaimer",
    "avis de non responsabilite",
    "avis de non-responsabilite",
    "clause de non-responsabilite",
    "avertissement",
    "haftungsausschluss",
    "aviso legal",
)


def disclaimer_for(language: str, texts: dict[str, str], default: str) -> str:
    """The disclaimer in `language` (`fr-CA` falls back to `fr`), else the default one."""
    language = (language or "").lower()
    return texts.get(language) or texts.get(language.split("-")[0]) or texts.get(default, "")


def _is_heading(text: str) -> bool:
    key = text_key(text).strip(" :.-")
    return len(key) < 60 and key in _HEADINGS


def with_disclaimer_html(fragment: str, disclaimer: str) -> str:
    if not disclaimer:
        return fragment
    probe = boilerplate_probe(disclaimer)
    blocks = list(_BLOCK.finditer(fragment))
    drop: list[tuple[int, int]] = []
    for n, m in enumerate(blocks):
        if probe in text_key(_TAG.sub(" ", m.group())):
            drop.append(m.span())
            if n and _is_heading(_TAG.sub(" ", blocks[n - 1].group())):
                drop.append(blocks[n - 1].span())
    kept = fragment
    for start, end in sorted(set(drop), reverse=True):
        kept = kept[:start] + kept[end:]
    if probe in text_key(_TAG.sub(" ", kept)):
        kept = _cut(kept, disclaimer)  # not in a block of its own: cut from where it starts
    kept = kept.strip()
    return (kept + "\n" if kept else "") + f"<p>{html.escape(disclaimer, quote=False)}</p>"


def with_disclaimer_text(text: str, disclaimer: str) -> str:
    if not disclaimer:
        return text
    probe = boilerplate_probe(disclaimer)
    lines = text.splitlines()
    keep = [True] * len(lines)
    for n, line in enumerate(lines):
        if probe in text_key(line):
            keep[n] = False
            if n and _is_heading(lines[n - 1]):
                keep[n - 1] = False
    body = "\n".join(line for line, k in zip(lines, keep, strict=True) if k).rstrip()
    return (body + "\n\n" if body else "") + disclaimer


def _cut(fragment: str, disclaimer: str) -> str:
    for needle in (disclaimer[:40], html.escape(disclaimer[:40], quote=False)):
        start = fragment.find(needle)
        if start != -1:
            return fragment[:start]
    return fragment
