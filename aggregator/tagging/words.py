"""Words as the rules see them: folding (case, accents, ligatures), acronyms, the
whole-word test, and `Text`, an item's text folded once with its original beside it."""

from __future__ import annotations

import re

from aggregator.text.sanitize import strip_accents, words_spaced

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
