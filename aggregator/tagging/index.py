"""Every rule's phrases in one Aho-Corasick automaton: one scan of an item finds where
each keyword, exclude, name and context word first occurs, and the reasons as written."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ahocorasick

from aggregator.model import is_acronym
from aggregator.tagging.words import (
    _WORD,
    MAX_REASONS,
    Hit,
    Text,
    _first_word,
    _is_word_char,
    _keyword_regex,
    fold,
)
from aggregator.text.sanitize import words_spaced

if TYPE_CHECKING:
    from aggregator.tagging.passing import _Passing


@dataclass(frozen=True)
class _Phrases:
    """The keywords (or excludes) of one rule, sorted by how they are looked up.

    A one-word keyword is a lookup in the item's words; a phrase, a `*` ending or a
    keyword with punctuation runs its own regex, and only when its first word occurs.
    Case-insensitive keywords are looked up in the lower-cased text, acronyms (capitals)
    in the text as written.
    """

    words: frozenset[str] = frozenset()  # lower-cased one-word keywords
    acronyms: frozenset[str] = frozenset()  # one-word acronyms, folded
    # (first word, in the lower-cased text?, regex, the first word is a whole word of the
    # item when the regex matches): phrases, prefixes, punctuation
    others: tuple[tuple[str, bool, re.Pattern[str], bool], ...] = ()

    @classmethod
    def of(cls, keywords: tuple[str, ...], as_written: bool = False) -> _Phrases:
        """`as_written`: a keyword holding a capital matches only with it (names: "Claude",
        not "claude"); one in lower case matches any case, as keywords do."""
        words: set[str] = set()
        acronyms: set[str] = set()
        others = []
        for keyword in keywords:
            acronym = is_acronym(keyword) or (as_written and keyword != keyword.lower())
            folded = " ".join(fold(keyword.rstrip("*")).split())
            if not acronym:
                folded = folded.lower()
            if not folded:
                continue
            if not keyword.endswith("*") and _WORD.fullmatch(folded):
                (acronyms if acronym else words).add(folded)
                continue
            first, *rest = folded.split()
            whole = bool(rest) and _WORD.fullmatch(first) is not None  # spaces follow it
            others.append(
                (first, not acronym, _keyword_regex(folded, keyword.endswith("*")), whole)
            )
        return cls(frozenset(words), frozenset(acronyms), tuple(others))


class _Index:
    """Every rule's keywords and excludes in one lookup per item: each word of the item is
    looked up once, whatever the number of rules holding it. (Rule by rule, the shipped
    config's 18 rules cost 276 us an item, most of it the rules finding nothing.)

    A hit is reported to each `_Phrases` (by its slot in `sets`) holding the keyword.
    """

    def __init__(self, sets: list[_Phrases], more: Iterable[str] = ()):
        self.words: dict[str, list[int]] = {}  # lower-cased word -> slots
        # acronyms and phrases by a word the item must hold, lower-cased, for them to match
        self.acronyms: dict[str, list[tuple[str, int]]] = {}
        self.phrases: dict[str, list[tuple[bool, re.Pattern[str], int]]] = {}
        # phrases whose first word may end inside a word ("stablecoin*") or holds
        # punctuation: looked for as a substring first
        self.loose: list[tuple[str, bool, re.Pattern[str], int]] = []
        for slot, phrases in enumerate(sets):
            for word in phrases.words:
                self.words.setdefault(word, []).append(slot)
            for word in phrases.acronyms:
                self.acronyms.setdefault(word.lower(), []).append((word, slot))
            for anchor, lowered, compiled, whole in phrases.others:
                if whole:
                    self.phrases.setdefault(anchor.lower(), []).append((lowered, compiled, slot))
                else:
                    self.loose.append((anchor, lowered, compiled, slot))
        # every whole word looked for (and `more`, the boilerplate's), found in one scan
        self.probes = frozenset([*self.words, *self.acronyms, *self.phrases, *more])
        self._automaton = ahocorasick.Automaton()
        for word in self.probes:
            self._automaton.add_word(f" {word} ", word)
        self._automaton.make_automaton()

    def first(self, text: Text) -> dict[str, int]:
        """Where each probe word first occurs in the lower-cased text as a whole word.

        One Aho-Corasick scan (pyahocorasick, in C) of the text with its non-word
        characters made spaces, for each probe " word ": whole words only, and no word set
        to build (splitting a 2 KB text into words took 25 us, finding each hit's position
        in it 1 us a hit). Text with letters beyond Latin-1 is split into words instead.
        """
        lowered = text.lowered
        spaced = words_spaced(lowered)
        if spaced is None:
            present = self.probes.intersection(_WORD.findall(lowered))
            return {word: _first_word(lowered, word) for word in present}
        found: dict[str, int] = {}
        if not self.probes:  # no rules: an empty automaton cannot scan
            return found
        for end, word in self._automaton.iter(f" {spaced} "):
            if word not in found:
                found[word] = end - len(word) - 1  # the key " word " ends at `end`, padded
        return found

    def hits(self, text: Text, first: dict[str, int]) -> dict[int, list[Hit]]:
        """Where each slot's keywords first occur (phrases: each occurrence, a few).
        `first` is `self.first(text)`."""
        found: dict[int, list[Hit]] = {}
        words = first.keys()
        for word in self.words.keys() & words:
            start = first[word]
            for slot in self.words[word]:
                found.setdefault(slot, []).append((start, start + len(word), True))
        for lowered_word in self.acronyms.keys() & words:
            for word, slot in self.acronyms[lowered_word]:
                start = _first_word(text.folded, word)  # as written: "AI", not "ai"
                if start >= 0:
                    found.setdefault(slot, []).append((start, start + len(word), False))
        for anchor in self.phrases.keys() & words:
            for lowered, compiled, slot in self.phrases[anchor]:
                _phrase_hits(text, lowered, compiled, found, slot)
        for anchor, lowered, compiled, slot in self.loose:
            if anchor in (text.lowered if lowered else text.folded):
                _phrase_hits(text, lowered, compiled, found, slot)
        return found


LONG = 600  # characters of text that `mentions` is counted for (`needed`)


def _phrase_hits(
    text: Text, lowered: bool, compiled: re.Pattern[str], found: dict[int, list[Hit]], slot: int
) -> None:
    scanned = text.lowered if lowered else text.folded
    n = 0
    for m in compiled.finditer(scanned):
        start = m.start()
        if start and _is_word_char(scanned[start - 1]):
            continue
        found.setdefault(slot, []).append((start, m.end(), lowered))
        n += 1
        if n > MAX_REASONS:
            break


def _spelled(hits: list[Hit], text: Text, limit: int | None = None) -> list[str]:
    """Matched keywords as written in the item, in the order they first occur, each once
    (case and spacing aside), at most `limit` of them."""
    out: dict[str, str] = {}
    for start, end, lowered in sorted(hits):
        word = text.span(start, end, lowered)
        key = word.casefold()
        if not key.isalnum():  # spaces to collapse, maybe (a word has none: most hits)
            key = " ".join(key.split())
        out.setdefault(key, word)
        if len(out) == limit:
            break
    return list(out.values())


def _starts(text: str, word: str) -> Iterator[int]:
    """Where `word` occurs in `text` as a whole word."""
    start, size = text.find(word), len(text)
    while start >= 0:
        end = start + len(word)
        before = text[start - 1] if start else " "
        after = text[end] if end < size else " "
        if not (_is_word_char(before) or _is_word_char(after)):
            yield start
        start = text.find(word, start + 1)


def needed(mentions: int, text: Text, title_end: int) -> int:
    """The mentions a rule of `mentions` needs in this text: as many in a text of up to
    LONG characters, one more per LONG characters after that. Two mentions make a subject
    of a 400-character summary, not of a 3,000-character article whose fourth paragraph
    names bitcoin twice (the blind long articles of the corpus: LABELLING.md)."""
    if mentions <= 1:
        return mentions
    return mentions + max(0, len(text.lowered) - title_end - 1 - LONG) // LONG


def _mentions(
    hits: list[Hit], text: Text, passing: _Passing | None = None
) -> list[tuple[int, int, bool]]:
    """Every mention of the keywords of `hits` (the index reports a word's first
    occurrence only), in order: start, end, and whether it fits a `passing` template; a
    keyword inside a longer one's mention is that mention."""
    spans = {(text.lowered if lowered else text.folded)[a:b]: lowered for a, b, lowered in hits}
    said: list[tuple[int, int, bool]] = []
    for span, lowered in sorted(spans.items(), key=lambda s: -len(s[0])):  # longest first
        scanned = text.lowered if lowered else text.folded
        for start in _starts(scanned, span):
            end = start + len(span)
            if any(a <= start and end <= b for a, b, _ in said):
                continue
            said.append((start, end, passing is not None and passing.at(scanned, start, end)))
    return sorted(said)


def said_times(hits: list[Hit], text: Text, passing: _Passing | None = None) -> int:
    """How many times the keywords of `hits` are said, not in passing."""
    return sum(not in_passing for _, _, in_passing in _mentions(hits, text, passing))


def _salient(
    hits: list[Hit], text: Text, title_end: int, mentions: int, passing: _Passing | None = None
) -> bool:
    """Keywords said in the title, or `needed` times in all (each distinct one counted
    wherever it occurs: the index reports a word's first occurrence only); mentions that
    fit the rule's `passing` templates ("former OpenAI staff") do not count, and a keyword
    inside a longer one's mention is that mention ("DeepMind" of "ex-Google DeepMind")."""
    if passing is None and (mentions <= 1 or any(start < title_end for start, _, _ in hits)):
        return True
    mentions = needed(mentions, text, title_end)
    total = 0
    for start, _, in_passing in _mentions(hits, text, passing):
        if in_passing:
            continue
        total += 1
        if start < title_end or total >= mentions:
            return True
    return False
