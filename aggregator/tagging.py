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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import ahocorasick
import regex

from aggregator.model import Config, Item, Source, TagMatch, TagRule
from aggregator.text.sanitize import boilerplate_probe, strip_accents, text_key, words_spaced
from aggregator.topics import DOUBT, EVIDENCE, PROPOSE, TopicModel
from aggregator.topics import load as load_model

MAX_REASONS = 5
PATTERN_TIMEOUT = 0.1  # seconds one pattern may spend on one item
_FOLD_EXTRA = {
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
# A regex finds them in C; `str.translate` with a dict costs ~50 ns per character on
# non-ASCII text (100 us for a 2 KB French article, more than the rest of tagging).
_FOLD_EXTRA_RE = re.compile("[" + "".join(_FOLD_EXTRA) + "]")


def _fold_extra(match: re.Match[str]) -> str:
    return _FOLD_EXTRA[match.group()]


# The only ones within Latin-1: a text of Latin-1 characters (most French) is searched for
# these four (C-speed finds) instead of the class above (a regex scan, 6 us on 2 KB).
_FOLD_LATIN1 = tuple((c, f) for c, f in _FOLD_EXTRA.items() if ord(c) < 256)


def fold(text: str) -> str:
    """Accents removed and typographic variants unified; case kept (acronyms need it)."""
    if text.isascii():
        return text
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return strip_accents(_FOLD_EXTRA_RE.sub(_fold_extra, text))
    for char, folded in _FOLD_LATIN1:
        if char in text:
            text = text.replace(char, folded)
    return strip_accents(text)


def is_acronym(keyword: str) -> bool:
    """Written in capitals (at least one letter, no lower-case): matches only in capitals."""
    letters = [c for c in keyword if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters)


def _words(phrase: str) -> str:
    """A regex for the words of `phrase`, any spacing between them."""
    return r"\s+".join(re.escape(w) for w in phrase.split())


def _keyword_regex(folded: str, star: bool) -> re.Pattern[str]:
    """A folded phrase as words, any spacing between them, any ending after a `*`.

    The caller checks the character before a match: a leading look-behind would cost
    re its literal-prefix search (20x slower on a 3 KB text).
    """
    return re.compile(_words(folded) + (r"\w*" if star else "") + r"(?!\w)")


_WORD = re.compile(r"\w+")


def words_of(text: str) -> frozenset[str]:
    """The `\\w+` tokens of `text`."""
    spaced = words_spaced(text)
    return frozenset(_WORD.findall(text) if spaced is None else spaced.split())


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _first_word(text: str, word: str) -> int:
    """Where `word` first occurs in `text` as a whole word (-1: nowhere)."""
    start = text.find(word)
    size = len(text)
    while start >= 0:
        end = start + len(word)
        before = text[start - 1] if start else " "  # _is_word_char inlined: a hot loop
        after = text[end] if end < size else " "
        if not (before.isalnum() or before == "_" or after.isalnum() or after == "_"):
            return start
        start = text.find(word, start + 1)
    return -1


class Text:
    """One item's text prepared once for every rule: folded and lower-cased."""

    def __init__(self, original: str):
        self.original = original
        self.folded = fold(original)
        self.lowered = self.folded.lower()
        self._same_folded = len(self.folded) == len(original)
        self._same_lowered = len(self.lowered) == len(original)

    def span(self, start: int, end: int, lowered: bool) -> str:
        """The matched words as written, when folding kept the text's length."""
        if lowered:
            return (self.original if self._same_lowered else self.lowered)[start:end]
        return (self.original if self._same_folded else self.folded)[start:end]


Hit = tuple[int, int, bool]  # start, end, in the lower-cased text (else the folded one)


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


def _salient(
    hits: list[Hit], text: Text, title_end: int, mentions: int, passing: _Passing | None = None
) -> bool:
    """Keywords said in the title, or `mentions` times in all (each distinct one counted
    wherever it occurs: the index reports a word's first occurrence only); mentions that
    fit the rule's `passing` templates ("former OpenAI staff") do not count, and a keyword
    inside a longer one's mention is that mention ("DeepMind" of "ex-Google DeepMind")."""
    if passing is None and (mentions <= 1 or any(start < title_end for start, _, _ in hits)):
        return True
    spans = {(text.lowered if lowered else text.folded)[a:b]: lowered for a, b, lowered in hits}
    said: list[tuple[int, int, bool]] = []  # each mention: start, end, in passing
    for span, lowered in sorted(spans.items(), key=lambda s: -len(s[0])):  # longest first
        scanned = text.lowered if lowered else text.folded
        for start in _starts(scanned, span):
            end = start + len(span)
            if any(a <= start and end <= b for a, b, _ in said):
                continue
            said.append((start, end, passing is not None and passing.at(scanned, start, end)))
    total = 0
    for start, _, in_passing in sorted(said):
        if in_passing:
            continue
        total += 1
        if start < title_end or total >= mentions:
            return True
    return False


# One name of a list right before a mention ("compares with GPT-5, Claude and *", "former
# Google and *"): up to three are set aside, and each name of the list is in passing as the
# first one is.
_SEPARATOR = r"\s*(?:,|\band\b|\bet\b|\bor\b|\bou\b|\bund\b|\boder\b)\s*$"
_LISTED = tuple(  # a name of one word ("Claude and "), of two ("Le Chat, ")
    regex.compile(name + _SEPARATOR, regex.REVERSE | regex.V0)
    for name in (r"(?<![\w.'-])[\w.'-]+", r"(?<![\w.'-])[\w.'-]+\s+[\w.'-]+")
)
LISTED_MOST = 3


# Between two names of a list: "ChatGPT, Claude", "GPT-5.1 and Gemini", "Gemini 3 ou Le Chat"
# (a version number may follow the first name)
_JOIN = (
    r"(?:[ .\-]?\d[\w.]{0,4})?\s*"
    r"(?:,|\band\b|\bor\b|\bet\b|\bou\b|\bvs\b\.?|\bversus\b|\bund\b|\boder\b)\s*"
)


def _rival_names(rule: TagRule) -> tuple[str, ...]:
    """A rule's keywords and names as regex alternatives on folded lower-case text, and its
    patterns that Python's `re` compiles (GPT-5's), for its rivals' `passing`."""
    out = [
        _words(fold(k.rstrip("*")).lower()) + (r"\w*" if k.endswith("*") else "")
        for k in (*rule.keywords, *rule.needs_context)
        if k.strip("*")
    ]
    for pattern in rule.patterns:
        try:
            re.compile(pattern)
        except re.error:
            continue
        out.append(f"(?:{pattern.lower()})")
    return tuple(out)


@dataclass(frozen=True)
class _Passing:
    """Where a rule's keyword is only named in passing, from its `passing` templates
    ("former *", "like *", "* models"): the words right before a mention, or right after."""

    # searched in the text before a mention, ending there: backwards (regex's REVERSE), so
    # that an alternation of a hundred templates is tried at the end only, not at each of
    # 60 characters (160 us a mention, the most of tagging an item that names an AI lab)
    before: regex.Pattern[str] | None
    after: re.Pattern[str] | None  # matched at the text right after it

    @classmethod
    def of(cls, templates: tuple[str, ...], rivals: tuple[str, ...] = ()) -> _Passing | None:
        """`rivals`: the names (and patterns) of the rule's `rivals`, a mention joined to
        one of them by a comma, "and", "or", "vs" ... being one of a comparison or choice."""
        befores, afters = [], []
        if rivals:
            names = "|".join(rivals)
            befores.append(rf"(?<!\w)(?:{names}){_JOIN}$")
            afters.append(rf"{_JOIN}(?:{names})(?!\w)")
        for template in templates:
            folded = fold(template.strip()).lower()
            if folded.endswith("*"):  # "former *", "ex-*", "d'*"
                words = folded[:-1]
                lead = r"(?<!\w)"  # "'*" is a quote, never the apostrophe of "l'IA"
                body = _words(words)
                gap = r"\s+" if words.endswith(" ") else r"\s*"
                befores.append(lead + body + gap + "$")
            elif folded.startswith("*"):  # "* models", "*'s models"
                words = folded[1:]
                body = _words(words)
                tail = r"(?!\w)"  # "*'" is a quote, never the "'s" of "AI's"
                afters.append((r"\s+" if words.startswith(" ") else r"\s*") + body + tail)
        if not befores and not afters:
            return None
        return cls(
            regex.compile("|".join(befores), regex.REVERSE | regex.V0) if befores else None,
            re.compile("|".join(afters)) if afters else None,
        )

    def at(self, scanned: str, start: int, end: int) -> bool:
        """The mention at scanned[start:end] (folded text) is a passing one."""
        return self.around(scanned[max(0, start - 60) : start], scanned[end : end + 60])

    def around(self, before: str, after: str) -> bool:
        """A mention with the folded text `before` it and `after` it is a passing one."""
        if self.before is not None:
            texts = [before.lower()]
            for _ in range(LISTED_MOST + 1):
                if any(self.before.search(t) for t in texts):
                    return True
                texts = [t[: m.start()] for t in texts for r in _LISTED if (m := r.search(t))]
                if not texts:
                    break
        return self.after is not None and self.after.match(after.lower()) is not None

    def at_written(self, text: str, start: int, end: int) -> bool:
        """The same for a mention at text[start:end] in the text as written (a pattern's)."""
        return self.around(fold(text[max(0, start - 60) : start]), fold(text[end : end + 60]))


def _said_in_passing(tag: str, hits: list[Hit], text: Text, passing: _Passing) -> list[str]:
    """`tag: "word"` for each keyword whose every mention fits a passing template."""
    out = []
    for start, end, lowered in hits:
        scanned = text.lowered if lowered else text.folded
        span = scanned[start:end]
        if all(passing.at(scanned, s, s + len(span)) for s in _starts(scanned, span)):
            out.append(f'{tag}: "{text.span(start, end, lowered)}"')
    return out


@dataclass(frozen=True)
class _Compiled:
    name: str
    keywords: _Phrases
    patterns: tuple[regex.Pattern[str], ...]
    exclude: _Phrases
    categories: frozenset[str]
    implies: tuple[str, ...]
    names: _Phrases  # needs_context, matched as written
    context: _Phrases
    mentions: int
    requires: tuple[str, ...]
    passing: _Passing | None


SLOTS = 4  # rule n's keywords are index slot 4n, excludes 4n+1, names 4n+2, context 4n+3


class Tagger:
    """The compiled form of a config's `[tags.*]`; `tag()` is pure and thread-safe."""

    def __init__(
        self,
        rules: tuple[TagRule, ...],
        boilerplate: tuple[str, ...] = (),
        model: TopicModel | None = None,
    ):
        self.model = model  # the topic model's second signal (topics.py), or none
        # Lines carrying boilerplate (our disclaimers, which sites often append themselves)
        # are not read: "régulations locales" in a disclaimer is not news about regulation.
        self.boilerplate = tuple(p for p in (boilerplate_probe(b) for b in boilerplate) if p)
        # Words every text holding a probe holds too (the first and last may be cut): texts
        # without them skip the line-by-line search.
        self.boilerplate_words = tuple(
            frozenset(_WORD.findall(fold(p).lower())[1:-1]) for p in self.boilerplate
        )
        named = {r.name: _rival_names(r) for r in rules}
        self.rules = tuple(
            _Compiled(
                name=r.name,
                keywords=_Phrases.of(r.keywords),
                patterns=tuple(regex.compile(p, regex.IGNORECASE | regex.V0) for p in r.patterns),
                exclude=_Phrases.of(r.exclude),
                categories=frozenset(_category_key(c) for c in r.categories),
                implies=r.implies,
                names=_Phrases.of(r.needs_context, as_written=True),
                context=_Phrases.of(r.context),
                mentions=r.mentions,
                requires=r.requires,
                passing=_Passing.of(
                    r.passing,
                    tuple(n for rival in r.rivals if rival in named for n in named[rival]),
                ),
            )
            for r in rules
        )
        self.by_name = {r.name: r for r in self.rules}
        self.index = _Index(
            [p for r in self.rules for p in (r.keywords, r.exclude, r.names, r.context)],
            more=frozenset().union(*self.boilerplate_words),
        )

    def tag_text(
        self,
        text: str,
        categories: tuple[str, ...] = (),
        source_tags: tuple[str, ...] = (),
        source: str = "",
        problems: list[str] | None = None,
        leans: tuple[str, ...] = (),
        passing: list[str] | None = None,
        gave_up: set[str] | None = None,
    ) -> tuple[TagMatch, ...]:
        """Tags for `text` (its first line the title, then summary and content) and the
        entry's own categories; `leans` are the source's tags that need some evidence.
        `passing`, when given, receives "tag: "word"" for each mention not counted because
        it fits the rule's `passing` templates (for `tags` and `explain` to show).
        `gave_up`, shared by the items of one batch (a document, a page being re-tagged),
        collects the patterns that ran out of time, which the batch then skips: a rule that
        backtracks costs PATTERN_TIMEOUT once a batch, not once an item (80 items of a
        feed cost 8 s a pattern, and the feed was refused for the rule's slowness)."""
        prepared = Text(text)
        first = self.index.first(prepared)
        if self.boilerplate and self._may_hold_boilerplate(prepared, first):
            text = "\n".join(
                line
                for line in text.splitlines()
                if not any(p in text_key(line) for p in self.boilerplate)
            )
            prepared = Text(text)
            first = self.index.first(prepared)
        item_categories = {_category_key(c): c for c in categories}
        matches: dict[str, list[TagMatch]] = {}
        vetoed: set[str] = set()
        keyword_hits = self.index.hits(prepared, first)
        scores: dict[str, float] = {}  # the topic model's, computed once when first asked
        title_end = prepared.lowered.find("\n") % (len(prepared.lowered) + 1)
        for n, rule in enumerate(self.rules):
            slot = SLOTS * n
            if slot + 1 in keyword_hits:  # an exclude: nothing else of the rule matters
                vetoed.add(rule.name)
                continue
            # keywords come first and reasons past MAX_REASONS are dropped: spell no more
            words = keyword_hits.get(slot)
            found = (
                [TagMatch(rule.name, "keyword", w) for w in _spelled(words, prepared, MAX_REASONS)]
                if words and _salient(words, prepared, title_end, rule.mentions, rule.passing)
                else []
            )
            if passing is not None and rule.passing is not None:
                for hits in (words, keyword_hits.get(slot + 2)):
                    passing += _said_in_passing(rule.name, hits or [], prepared, rule.passing)
            names, context = keyword_hits.get(slot + 2), keyword_hits.get(slot + 3)
            if (
                names
                and context
                and _salient(names, prepared, title_end, rule.mentions, rule.passing)
            ):
                beside = _spelled(context, prepared, 1)[0]
                found += [
                    TagMatch(rule.name, "name", f"{name} + {beside}")
                    for name in _spelled(names, prepared, MAX_REASONS)
                ]
            for pattern in rule.patterns:
                if gave_up is not None and pattern.pattern in gave_up:
                    continue  # it backtracked on an item of this batch: said once already
                try:
                    # concurrent: the GIL is let go while it runs (the daemon's loop goes on)
                    said = list(pattern.finditer(text, timeout=PATTERN_TIMEOUT, concurrent=True))
                except TimeoutError:  # an editor's pattern that backtracks: no match, reported
                    if problems is not None:
                        problems.append(
                            f"tags.{rule.name}: pattern {pattern.pattern!r} gave up after "
                            f"{PATTERN_TIMEOUT}s on one item (it backtracks: rewrite it)"
                            + ("; not run on the rest of this batch" if gave_up is not None else "")
                        )
                    if gave_up is not None:
                        gave_up.add(pattern.pattern)
                    continue
                if rule.passing is not None:  # "rivals GPT-5": a yardstick, not the story
                    kept = [m for m in said if not rule.passing.at_written(text, *m.span())]
                    if passing is not None:
                        passing += [f'{rule.name}: "{m.group()}"' for m in said if m not in kept]
                    said = kept
                found += [TagMatch(rule.name, "pattern", m.group()) for m in said]
            if item_categories and rule.categories:
                found += [
                    TagMatch(rule.name, "category", original)
                    for key, original in item_categories.items()
                    if key in rule.categories
                ]
            if (
                not found
                and rule.name in leans
                and (evidence := context or words)
                and not self._doubts(rule.name, text, scores)
            ):
                # the source leans to this tag and the item shows some evidence of it: a
                # word of its context, or a keyword said once (a name alone is no evidence),
                # unless the topic model finds the topic unlikely
                word = _spelled(evidence, prepared, 1)[0]
                found = [TagMatch(rule.name, "lean", f"{source} + {word}")]
            if found:
                matches[rule.name] = _dedupe(found)[:MAX_REASONS]
        for tag in source_tags:
            matches.setdefault(tag, []).insert(0, TagMatch(tag, "source", source))
        self._imply(matches, vetoed)
        if self.model is not None:  # the topics nothing above gave
            self._second_signal(text, matches, vetoed, leans, scores)
        self._require(matches)
        return tuple(m for tag in sorted(matches) for m in matches[tag])

    def _second_signal(
        self,
        text: str,
        matches: dict[str, list[TagMatch]],
        vetoed: set[str],
        leans: tuple[str, ...],
        scores: dict[str, float],
    ) -> None:
        """The topics the rules did not give and did not veto, from the topic model: given
        when it is sure, or when it finds them likely in a source that leans to them. Only
        topics with a rule of their own (an editor who removes `[tags.ai]` gets no `ai`)."""
        assert self.model is not None
        wanted = [
            t
            for t in self.model.topics
            if t in self.by_name and t not in matches and t not in vetoed
        ]
        if not wanted:
            return
        if not scores:
            scores.update(self.model.scores(text))
        for topic in wanted:
            score = scores[topic]
            if score >= PROPOSE or (topic in leans and score >= EVIDENCE):
                matches[topic] = [TagMatch(topic, "model", f"{score:.2f}")]

    def _doubts(self, topic: str, text: str, scores: dict[str, float]) -> bool:
        """The topic model finds `topic` unlikely in `text` (fills `scores` once)."""
        if self.model is None or topic not in self.model.topics:
            return False
        if not scores:
            scores.update(self.model.scores(text))
        return scores[topic] < DOUBT

    def _require(self, matches: dict[str, list[TagMatch]]) -> None:
        """Drop the tags whose `requires` none of the item's tags meets (a source's own
        tags always stand), until none is dropped: one may be what another required."""
        dropped = True
        while dropped:
            dropped = False
            for tag in list(matches):
                rule = self.by_name.get(tag)
                if (
                    rule is not None
                    and rule.requires
                    and not any(r in matches for r in rule.requires)
                    and not _from_source(matches[tag])
                ):
                    del matches[tag]
                    dropped = True

    def _may_hold_boilerplate(self, text: Text, first: dict[str, int]) -> bool:
        return any(words <= first.keys() for words in self.boilerplate_words) and any(
            p in text_key(text.original) for p in self.boilerplate
        )

    def tag(
        self,
        item: Item,
        source_tags: tuple[str, ...] = (),
        problems: list[str] | None = None,
        leans: tuple[str, ...] = (),
        passing: list[str] | None = None,
        gave_up: set[str] | None = None,
    ) -> tuple[TagMatch, ...]:
        summary = item.summary_text
        if summary and f"\n{summary}\n" in f"\n{item.content_text}\n":
            summary = ""  # the excerpt is whole lines of the content (WordPress): read once
        title = " ".join(item.title.split())  # one line: the text's first line is the title
        text = "\n".join((title, summary, item.content_text))
        return self.tag_text(
            text, item.categories, source_tags, item.source, problems, leans, passing, gave_up
        )

    def tag_of(
        self,
        item: Item,
        source: Source | None,
        problems: list[str] | None = None,
        gave_up: set[str] | None = None,
    ) -> tuple[TagMatch, ...]:
        """`tag` with the `tags` and `leans` of the item's source (none when the source
        left the config)."""
        if source is None:
            return self.tag(item, (), problems, (), gave_up=gave_up)
        return self.tag(item, source.tags, problems, source.leans, gave_up=gave_up)

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
def compile_rules(
    rules: tuple[TagRule, ...], boilerplate: tuple[str, ...] = (), model: bool = False
) -> Tagger:
    """One compiled Tagger per distinct rule set (and topic model switch): rules compile
    once per config."""
    return Tagger(rules, boilerplate, load_model() if model else None)


def tagger_for(config: Config) -> Tagger:
    """The Tagger of a config: its rules, its disclaimers (never read), its model switch."""
    return compile_rules(
        config.tags, tuple(config.disclaimers.values()), config.settings.topic_model
    )


def _category_key(category: str) -> str:
    return " ".join(fold(category).casefold().split())


def _dedupe(found: list[TagMatch]) -> list[TagMatch]:
    return list(dict.fromkeys(found))


def _from_source(matches: list[TagMatch] | None) -> bool:
    return bool(matches) and any(m.rule == "source" for m in matches or ())
