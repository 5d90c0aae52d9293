"""Editors' tag rules, compiled once per config, applied to an item with the reason for
each tag (how a keyword matches: tagger.py, and docs/editing.md for editors).

    words.py    folding, acronyms, whole words; `Text`, an item's text folded once
    index.py    every rule's phrases in one Aho-Corasick scan; reasons as written
    passing.py  names said in passing (a rival, a former employer, one of a list)
    tagger.py   `Tagger`: keywords, names and context, patterns, categories, excludes,
                implies, requires, mentions, leaning sources, the topic model's signal
"""

from aggregator.model import is_acronym
from aggregator.tagging.tagger import Tagger, compile_rules, tagged_text, tagger_for
from aggregator.tagging.words import _WORD, MAX_REASONS, PATTERN_TIMEOUT, fold, words_of

__all__ = [
    "MAX_REASONS",
    "PATTERN_TIMEOUT",
    "_WORD",
    "Tagger",
    "compile_rules",
    "fold",
    "is_acronym",
    "tagged_text",
    "tagger_for",
    "words_of",
]
