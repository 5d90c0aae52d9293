"""Names said in passing ("rivals GPT-5", "former Google engineer", "Claude and Gemini"):
a rule's `passing` templates and `rivals`, matched around a name where it is written."""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from aggregator.model import TagRule
from aggregator.tagging.index import _Phrases, _starts
from aggregator.tagging.words import Hit, Text, _words, fold

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
    exclude_in_title: _Phrases
    categories: frozenset[str]
    implies: tuple[str, ...]
    names: _Phrases  # needs_context, matched as written
    context: _Phrases
    mentions: int
    requires: tuple[str, ...]
    passing: _Passing | None
