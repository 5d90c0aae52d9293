"""Editors' tag rules, compiled once per config, applied to an item with the reason for each tag.

How a keyword matches (docs/editing.md says the same for editors):
- whole words or phrases only: "Meta" is not in "métavers", "ETH" is not in "Ethernet";
- case- and accent-insensitive: "debauchage" matches "Débauchage";
- a keyword written in capitals is an acronym and matches only in capitals: "AI" matches
  "l'AI Act" but not "J'ai", "SEC" matches the SEC but not "sec";
- a trailing `*` matches any ending: "stablecoin*" matches "stablecoins".
`patterns` are regular expressions (case-insensitive) on the text as written, run by the
`regex` engine with a time limit per item, so a pattern that backtracks catastrophically
costs a reported miss, never a stalled pass. `exclude`
phrases veto the tag, whichever rule gave it, except a source's own `tags`. `implies` adds
tags transitively; a vetoed tag implies nothing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import regex

from aggregator.model import Item, TagMatch, TagRule
from aggregator.sanitize import boilerplate_probe, strip_accents, text_key

MAX_REASONS = 5
PATTERN_TIMEOUT = 0.1  # seconds one pattern may spend on one item
_FOLD_EXTRA = str.maketrans(
    {
        "œ": "oe",
        "Œ": "OE",
        "æ": "ae",
        "Æ": "AE",
        "ß": "ss",
        "’": "'",
        "‘": "'",
        "ʼ": "'",
        "‐": "-",
        "‑": "-",
        "–": "-",
        "—": "-",
        "\u00a0": " ",
        "\u202f": " ",
    }
)


def fold(text: str) -> str:
    """Accents removed and typographic variants unified; case kept (acronyms need it)."""
    text = text.translate(_FOLD_EXTRA)
    return text if text.isascii() else strip_accents(text)


def is_acronym(keyword: str) -> bool:
    """Written in capitals (at least one letter, no lower-case): matches only in capitals."""
    letters = [c for c in keyword if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters)


def _anchor(keyword: str) -> str:
    words = fold(keyword.rstrip("*")).split()
    return words[0] if words else ""


def _keyword_regex(keywords: list[str], flags: int) -> re.Pattern[str] | None:
    if not keywords:
        return None
    alternatives = []
    for kw in sorted(keywords, key=len, reverse=True):
        star = kw.endswith("*")
        words = fold(kw.rstrip("*")).split()
        body = r"\s+".join(re.escape(w) for w in words)
        alternatives.append(body + (r"\w*" if star else ""))
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", flags)


@dataclass(frozen=True)
class _Phrases:
    """Keywords split into case-insensitive words and capital-only acronyms."""

    words: re.Pattern[str] | None
    acronyms: re.Pattern[str] | None
    # The first word of each keyword: a regex scan runs only when one occurs as a substring
    # (a C-speed test), so a rule costs almost nothing on the many texts it cannot match.
    word_anchors: tuple[str, ...] = ()
    acronym_anchors: tuple[str, ...] = ()
    # The same words in lower case, matched case-sensitively on the lower-cased text: about
    # 1.5x faster than IGNORECASE (used when lower-casing kept the text's length).
    lower_words: re.Pattern[str] | None = None

    @classmethod
    def of(cls, keywords: tuple[str, ...]) -> _Phrases:
        acronyms = [k for k in keywords if is_acronym(k)]
        words = [k for k in keywords if not is_acronym(k)]
        return cls(
            _keyword_regex(words, re.IGNORECASE),
            _keyword_regex(acronyms, 0),
            tuple({_anchor(k).lower() for k in words}),
            tuple({_anchor(k) for k in acronyms}),
            _keyword_regex([k.lower() for k in words], 0),
        )

    def find(self, folded: str, original: str = "", lowered: str | None = None) -> list[str]:
        """Matched words, as written in `original` when folding kept the text's length."""
        source = original if len(original) == len(folded) else folded
        lowered = folded.lower() if lowered is None else lowered
        found: list[str] = []
        same_length = len(lowered) == len(folded)
        words = self.lower_words if same_length else self.words
        for compiled, anchors, text, scanned in (
            (words, self.word_anchors, lowered, lowered if same_length else folded),
            (self.acronyms, self.acronym_anchors, folded, folded),
        ):
            if compiled is None or not any(a in text for a in anchors):
                continue
            for n, m in enumerate(compiled.finditer(scanned)):
                found.append(source[m.start() : m.end()])
                if n >= 2 * MAX_REASONS:  # enough to give the reasons: stop scanning
                    break
        return found


@dataclass(frozen=True)
class _Compiled:
    name: str
    keywords: _Phrases
    patterns: tuple[regex.Pattern[str], ...]
    exclude: _Phrases
    categories: frozenset[str]
    implies: tuple[str, ...]


class Tagger:
    """The compiled form of a config's `[tags.*]`; `tag()` is pure and thread-safe."""

    def __init__(self, rules: tuple[TagRule, ...], boilerplate: tuple[str, ...] = ()):
        # Lines carrying boilerplate (our disclaimers, which sites often append themselves)
        # are not read: "régulations locales" in a disclaimer is not news about regulation.
        self.boilerplate = tuple(p for p in (boilerplate_probe(b) for b in boilerplate) if p)
        self.rules = tuple(
            _Compiled(
                name=r.name,
                keywords=_Phrases.of(r.keywords),
                patterns=tuple(regex.compile(p, regex.IGNORECASE | regex.V0) for p in r.patterns),
                exclude=_Phrases.of(r.exclude),
                categories=frozenset(_category_key(c) for c in r.categories),
                implies=r.implies,
            )
            for r in rules
        )
        self.by_name = {r.name: r for r in self.rules}

    def tag_text(
        self,
        text: str,
        categories: tuple[str, ...] = (),
        source_tags: tuple[str, ...] = (),
        source: str = "",
        problems: list[str] | None = None,
    ) -> tuple[TagMatch, ...]:
        """Tags for `text` (title, summary and content) and the entry's own categories."""
        if self.boilerplate and any(p in text_key(text) for p in self.boilerplate):
            text = "\n".join(
                line
                for line in text.splitlines()
                if not any(p in text_key(line) for p in self.boilerplate)
            )
        folded = fold(text)
        lowered = folded.lower()
        item_categories = {_category_key(c): c for c in categories}
        matches: dict[str, list[TagMatch]] = {}
        vetoed: set[str] = set()
        for rule in self.rules:
            found = [
                TagMatch(rule.name, "keyword", w)
                for w in _distinct(rule.keywords.find(folded, text, lowered))
            ]
            for pattern in rule.patterns:
                try:
                    hits = list(pattern.finditer(text, timeout=PATTERN_TIMEOUT))
                except TimeoutError:  # an editor's pattern that backtracks: no match, reported
                    if problems is not None:
                        problems.append(
                            f"tags.{rule.name}: pattern {pattern.pattern!r} gave up after "
                            f"{PATTERN_TIMEOUT}s on one item (it backtracks: rewrite it)"
                        )
                    continue
                found += [TagMatch(rule.name, "pattern", m.group()) for m in hits]
            found += [
                TagMatch(rule.name, "category", original)
                for key, original in item_categories.items()
                if key in rule.categories
            ]
            if rule.exclude.words or rule.exclude.acronyms:
                veto = rule.exclude.find(folded, "", lowered)
                if veto:
                    vetoed.add(rule.name)
                    continue
            if found:
                matches[rule.name] = _dedupe(found)[:MAX_REASONS]
        for tag in source_tags:
            matches.setdefault(tag, []).insert(0, TagMatch(tag, "source", source))
        self._imply(matches, vetoed)
        return tuple(m for tag in sorted(matches) for m in matches[tag])

    def tag(
        self, item: Item, source_tags: tuple[str, ...] = (), problems: list[str] | None = None
    ) -> tuple[TagMatch, ...]:
        text = "\n".join((item.title, item.summary_text, item.content_text))
        return self.tag_text(text, item.categories, source_tags, item.source, problems)

    def _imply(self, matches: dict[str, list[TagMatch]], vetoed: set[str]) -> None:
        queue = list(matches)
        while queue:
            tag = queue.pop(0)
            rule = self.by_name.get(tag)
            if rule is None:
                continue
            for implied in rule.implies:
                if implied in vetoed and not _from_source(matches.get(implied)):
                    continue
                if implied not in matches:
                    matches[implied] = [TagMatch(implied, "implied", tag)]
                    queue.append(implied)


@functools.lru_cache(maxsize=8)
def compile_rules(rules: tuple[TagRule, ...], boilerplate: tuple[str, ...] = ()) -> Tagger:
    """One compiled Tagger per distinct rule set: rules compile once per config."""
    return Tagger(rules, boilerplate)


def _category_key(category: str) -> str:
    return " ".join(fold(category).casefold().split())


def _distinct(words: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for w in words:
        seen.setdefault(" ".join(w.casefold().split()), w)
    return list(seen.values())


def _dedupe(found: list[TagMatch]) -> list[TagMatch]:
    return list(dict.fromkeys(found))


def _from_source(matches: list[TagMatch] | None) -> bool:
    return bool(matches) and any(m.rule == "source" for m in matches or ())
