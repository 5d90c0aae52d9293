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

import regex

from aggregator.model import Config, Item, Source, TagMatch, TagRule
from aggregator.tagging.index import LONG, _Index, _Phrases, _salient, _spelled, needed, said_times
from aggregator.tagging.passing import _Compiled, _Passing, _rival_names, _said_in_passing
from aggregator.tagging.words import _WORD, MAX_REASONS, PATTERN_TIMEOUT, Hit, Text, fold
from aggregator.text.sanitize import boilerplate_probe, text_key
from aggregator.topics import (
    AGREES,
    DISBELIEVES,
    DOUBT,
    EVIDENCE,
    PROPOSE,
    SAID,
    TopicModel,
    judges,
)
from aggregator.topics import load as load_model

# rule n's keywords are index slot 5n, excludes 5n+1, names 5n+2, context 5n+3, excludes
# in the title 5n+4
SLOTS = 5


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
                exclude_in_title=_Phrases.of(r.exclude_in_title),
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
            [
                p
                for r in self.rules
                for p in (r.keywords, r.exclude, r.names, r.context, r.exclude_in_title)
            ],
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
        *,
        rare: list[str] | None = None,
        vetoes: list[str] | None = None,
        doubted: list[str] | None = None,
    ) -> tuple[TagMatch, ...]:
        """Tags for `text` (its first line the title, then summary and content) and the
        entry's own categories; `leans` are the source's tags that need some evidence.
        `passing`, when given, receives "tag: "word"" for each mention not counted because
        it fits the rule's `passing` templates (for `tags` and `explain` to show).
        `gave_up`, shared by the items of one batch (a document, a page being re-tagged),
        collects the patterns that ran out of time, which the batch then skips: a rule that
        backtracks costs PATTERN_TIMEOUT once a batch, not once an item (80 items of a
        feed cost 8 s a pattern, and the feed was refused for the rule's slowness).
        `rare`, when given, receives the rules whose words a long text says too few times
        to count (`needed`), for `tags` and `explain` to say why they did not fire.
        `vetoes`, when given, receives "tag: "word"" for each rule an `exclude` (or an
        `exclude_in_title` said in the title) vetoed; `doubted`, "tag 0.03" for each theme
        the rules found and the topic model disbelieves (`_disbelieves`)."""
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
            veto = keyword_hits.get(slot + 1) or [
                h for h in keyword_hits.get(slot + 4, ()) if h[0] < title_end
            ]
            if veto:  # an exclude: nothing else of the rule matters
                vetoed.add(rule.name)
                if vetoes is not None:
                    how = "" if slot + 1 in keyword_hits else " in the title"
                    vetoes.append(f'{rule.name}: "{_spelled(veto, prepared, 1)[0]}"{how}')
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
            near: dict[str, str] = _folded(context, prepared) if names and context else {}
            if near and names and _salient(names, prepared, title_end, rule.mentions, rule.passing):
                # a name listed in `context` too is no context for itself: another word is
                # ("Parlement" twice is no rule; "Claude Haiku" is two names of one maker)
                for name in _spelled(names, prepared, MAX_REASONS):
                    beside = next((w for k, w in near.items() if k != name.casefold()), "")
                    if beside:
                        found.append(TagMatch(rule.name, "name", f"{name} + {beside}"))
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
                if rule.mentions > 1 and len(text) > title_end + LONG:
                    # a long article: "raised $2 billion" in its closing line is background
                    said = [m for m in said if m.start() <= title_end + LONG]
                found += [TagMatch(rule.name, "pattern", m.group()) for m in said]
            if item_categories and rule.categories:
                found += [
                    TagMatch(rule.name, "category", original)
                    for key, original in item_categories.items()
                    if key in rule.categories
                ]
            if (
                not found
                and words
                and self._likely(rule.name, text, scores)
                and _salient(words, prepared, title_end, 1, rule.passing)
            ):
                # a keyword said once, short of `mentions`, and the topic model finds the
                # topic likely: two weak signals that agree ("das KI-Unternehmen" in a short
                # story about its layoffs)
                word = _spelled(words, prepared, 1)[0]
                found = [TagMatch(rule.name, "once", f"{word} + {scores[rule.name]:.2f}")]
            if (
                not found
                and rule.name in leans
                and (evidence := _in_lead(context or words, title_end))
                and not self._doubts(rule.name, text, scores)
            ):
                # the source leans to this tag and the item shows some evidence of it: a
                # word of its context, or a keyword said once (a name alone is no evidence),
                # in the title or the first LONG characters of the text (a Fed story whose
                # last line names bitcoin is no crypto story), unless the topic model finds
                # the topic unlikely
                word = _spelled(evidence, prepared, 1)[0]
                found = [TagMatch(rule.name, "lean", f"{source} + {word}")]
            if rare is not None and words and not found:
                need = needed(rule.mentions, prepared, title_end)
                if need > rule.mentions:
                    rare.append(
                        f'{rule.name}: "{_spelled(words, prepared, 1)[0]}" (said fewer than '
                        f"{need} times in {len(prepared.lowered) - title_end - 1:,} characters, "
                        "none in the title)"
                    )
            if (
                found
                and self._disbelieves(rule.name, found, text, scores)
                and said_times([*(words or ()), *(names or ())], prepared, rule.passing) < SAID
            ):
                # the rules found the tag, the topic model reading every word finds it most
                # unlikely: a name said in passing, a word used in another sense; a theme
                # said SAID times is the story's, whatever the model makes of its words
                if doubted is not None:
                    doubted.append(f"{rule.name} {scores[rule.name]:.3f}")
                found = []
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
        the topics it may give (never a theme it only judges), and only those with a rule
        of their own (an editor who removes `[tags.ai]` gets no `ai`)."""
        assert self.model is not None
        model = self.model
        wanted = [
            t
            for t in model.topics
            if model.may_propose(t) and t in self.by_name and t not in matches and t not in vetoed
        ]
        if not wanted:
            return
        if not scores:
            scores.update(self.model.scores(text))
        for topic in wanted:
            score = scores[topic]
            if score >= PROPOSE or (topic in leans and score >= EVIDENCE):
                matches[topic] = [TagMatch(topic, "model", f"{score:.2f}")]

    def _score(self, topic: str, text: str, scores: dict[str, float]) -> float | None:
        """The topic model's probability of `topic` in `text`, None when it has no say
        (off, or a topic it does not know); `scores` is filled once an item."""
        if self.model is None or topic not in self.model.topics:
            return None
        if not scores:
            scores.update(self.model.scores(text))
        return scores[topic]

    def _likely(self, topic: str, text: str, scores: dict[str, float]) -> bool:
        """The model finds `topic` likely enough to back a keyword said once."""
        score = self._score(topic, text, scores)
        return score is not None and score >= AGREES

    def _disbelieves(
        self, topic: str, found: list[TagMatch], text: str, scores: dict[str, float]
    ) -> bool:
        """The model finds the theme `topic` too unlikely for what the rules found, unless
        the item's own categories say it (the site's word, like a source's tags, stands) or
        the text is shorter than JUDGES_FROM words."""
        if self.model is None or self.model.may_propose(topic):
            return False  # a topic it may give is not doubted: its rules are the first word
        if any(m.rule == "category" for m in found):
            return False
        if not judges(text):
            return False  # a headline alone: too few words for the model to judge a theme
        score = self._score(topic, text, scores)
        return score is not None and score < DISBELIEVES

    def _doubts(self, topic: str, text: str, scores: dict[str, float]) -> bool:
        """The model finds `topic` too unlikely for a leaning source's one word."""
        score = self._score(topic, text, scores)
        return score is not None and score < DOUBT

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
        *,
        rare: list[str] | None = None,
        vetoes: list[str] | None = None,
        doubted: list[str] | None = None,
    ) -> tuple[TagMatch, ...]:
        return self.tag_text(
            tagged_text(item),
            item.categories,
            source_tags,
            item.source,
            problems,
            leans,
            passing,
            gave_up,
            rare=rare,
            vetoes=vetoes,
            doubted=doubted,
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


def tagged_text(item: Item) -> str:
    """What the rules and the topic model read of an item: its title on the first line, then
    its summary and its content (an excerpt that is whole lines of the content, as
    WordPress writes it, is read once)."""
    summary = item.summary_text
    if summary and f"\n{summary}\n" in f"\n{item.content_text}\n":
        summary = ""
    title = " ".join(item.title.split())  # one line: the text's first line is the title
    return "\n".join((title, summary, item.content_text))


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


def _folded(hits: list[Hit], text: Text) -> dict[str, str]:
    """The words of `hits` as written, by their case-folded spelling."""
    return {w.casefold(): w for w in _spelled(hits, text)}


def _in_lead(hits: list[Hit] | None, title_end: int) -> list[Hit]:
    """The hits in the title or the lead: the first LONG characters after it."""
    return [h for h in hits or () if h[0] <= title_end + LONG]


def _dedupe(found: list[TagMatch]) -> list[TagMatch]:
    return list(dict.fromkeys(found))


def _from_source(matches: list[TagMatch] | None) -> bool:
    return bool(matches) and any(m.rule == "source" for m in matches or ())
