"""A second signal beside the rules: a small linear model that reads every word of an item.

Keyword rules cannot see "the chatbot maker" or "l'exchange a gelé les retraits"; a model
that weighs every word can. This one is logistic regression over the words of an item's
title and text (accents folded, lower case), one weight per word and tag, trained by
`scripts/train_topics.py` on the dev half of the labelled corpus (tests/fixtures/curation)
and shipped as `aggregator/data/topics.json`: no download, a dictionary lookup per word and
a numpy sum of their rows (30-50 us an item, the longer for a long item's 2,000 characters).

It proposes; the rules keep the last word: a topic the model is sure of (PROPOSE) is given
unless the rule's `exclude` vetoes it, a topic it finds likely (EVIDENCE) is evidence for a
source that `leans` to it, one it finds more likely still (AGREES) lets a rule's keyword
said once count where its `mentions` wants more ("das KI-Unternehmen" once in a short story
about its layoffs), one it finds not likely enough (under DOUBT) overrules the single word
that would otherwise be a leaning source's evidence ("crypto" once in an AI story on a
crypto site), and `[aggregator] topic_model = false` turns it off.

It knows two kinds of tags. The topics (ai, crypto) it may give alone, as above. The themes
(markets, openai, bitcoin...) it never gives; it judges them: a theme the rules found that
it finds most unlikely (under DISBELIEVES) is doubted and dropped, a name said in passing
or a word in another sense ("former OpenAI researchers" hired by Meta).
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where the model is loaded, not by file_print's callers
    import numpy as np

MODEL = Path(__file__).parent / "data" / "topics.json"
PROPOSE = 0.9  # the model alone gives the topic
EVIDENCE = 0.6  # enough for a source that leans to the topic
# below this, a leaning source's one word of evidence is not believed: 0.2 let a crypto
# site's gold report, its CPI story and a VPN's sponsored post (0.25-0.40) into `crypto` on
# the blind part U; at 0.45 they stay out and one AI-lab post of U's fell out of `ai`
DOUBT = 0.45
# a rule's keyword said once, short of its `mentions`, counts when the model finds the topic
# this likely (the blind part R: 0.6 let a central bank's "tokenised deposits" into crypto)
AGREES = 0.7
# a theme (a tag the model judges but never gives alone) that the rules found is dropped
# when the model finds it less likely than this: "former OpenAI researchers" hired by Meta,
# "ransomware" behind an exchange's sanctions. Cross-validated on dev (5 folds, the rules
# as shipped): ai-labs precision 0.92 -> 0.96 for recall 0.86 -> 0.84, risk 0.94 -> 0.98
# for 0.88 -> 0.87, regulation 0.94 -> 0.97 for 0.87 -> 0.86; at 0.08 each gains a point
# of precision for two to three of recall
DISBELIEVES = 0.05
# ...unless the rule's words are said this many times: the model, trained mostly on feed
# summaries, misreads long articles. The seed article (3,000 characters) names OpenAI in its
# title and a dozen times after; Meta's poaching of its researchers, which the corpus's
# summaries label `meta` alone, weighs its `openai` down to 0.000. Cross-validated on dev,
# 5 costs regulation a point of precision (0.985 -> 0.974), 3 would cost two
SAID = 5
# ...nor on a text shorter than this many words: a headline typed into `aggregator tags`
# or a feed that sends titles only. Trained on titles with their summaries, the model reads
# a lone headline near its prior, which is low for every theme: "Vitalik Buterin proposes
# raising the blob fee floor in the next hard fork" read ethereum 0.03. On the blind
# one-sentence part AG, unseen: ai-labs recall 0.67 -> 0.79, ai 0.78 -> 0.86 (at 20 words).
# 30 since the sentences of part AK (up to 30 words, written to test recall): on dev, its
# ai-labs recall 0.78 -> 0.82 and business 0.62 -> 0.66, nothing lower on the whole half
# (108 of its 3,840 feed items are that short, a title with a one-line summary)
JUDGES_FROM = 30


READ = 2000  # characters of an item read (the title and the start of its text)


def judges(text: str) -> bool:
    """Whether `text` is long enough (JUDGES_FROM words) for the model to judge its themes.
    Counted in what the model reads (READ characters): the tagger asks once per theme it
    found, and a split of a whole article copied it each time."""
    return len(text[:READ].split(None, JUDGES_FROM)) >= JUDGES_FROM


_WORD = re.compile(r"\w+")


def tokens(text: str) -> set[str]:
    """The distinct words of `text`, accents folded and lower-cased, two letters or more
    (what the model is trained on)."""
    return {w for w in _words(text) if len(w) > 1 and not w.isdigit()}


def _words(text: str) -> set[str]:
    """The distinct words of `text`'s start, accents folded and lower-cased, of any length:
    scoring looks each up in the model, which holds only `tokens`, so it needs no filter
    (the filter was 4-6 us of the 37 that a long item's words and lookups took)."""
    # imported here: a run that only asks whether the model changed (file_print) loads
    # no text toolkit (regex and the sanitizer's patterns, ~25 ms of a cron run)
    from aggregator.text.sanitize import strip_accents, words_spaced

    folded = strip_accents(text[:READ]).lower()
    spaced = words_spaced(folded)
    return set(_WORD.findall(folded) if spaced is None else spaced.split())


@dataclass(frozen=True)
class TopicModel:
    """The weights packed: a float32 matrix, a row per word, a column per tag. 12,000 words
    of 18 tags held as dictionaries of floats cost 15 MB and 80 ms to load; as a matrix,
    1 MB read in place from the file's bytes. numpy is loaded by every process that tags
    (the near-duplicate index imports it), and sums a text's rows in a few microseconds
    where Python took 70 (issue 20: the full pass's tag stage)."""

    version: str
    topics: tuple[str, ...]  # every tag the model scores, topics and themes
    bias: np.ndarray  # a float64 intercept per tag
    index: dict[str, int]  # word -> its row
    rows: np.ndarray  # words x tags, float32
    # the topics the model may give alone (PROPOSE); None: every tag it knows. The others
    # (the themes) it only judges: what the rules found, what a word said once is worth
    proposes: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        version: str,
        bias: dict[str, float],
        weights: dict[str, dict[str, float]],
        proposes: frozenset[str] | None = None,
    ) -> TopicModel:
        """A model from its intercepts by tag and its weights by word, then tag."""
        import numpy as np

        tags = tuple(bias)
        rows = np.array(
            [[by_tag.get(t, 0.0) for t in tags] for by_tag in weights.values()], dtype=np.float32
        ).reshape(len(weights), len(tags))
        index = {word: n for n, word in enumerate(weights)}
        return cls(version, tags, np.array(list(bias.values())), index, rows, proposes)

    def may_propose(self, tag: str) -> bool:
        return tag in self.topics and (self.proposes is None or tag in self.proposes)

    def scores(self, text: str) -> dict[str, float]:
        """Each tag's probability for an item whose title and text are `text`."""
        index = self.index
        said = [n for w in _words(text) if (n := index.get(w)) is not None]
        logits = self.bias + self.rows[said].sum(axis=0, dtype=float) if said else self.bias
        return {
            tag: 1 / (1 + math.exp(-max(-30.0, min(30.0, x))))
            for tag, x in zip(self.topics, logits.tolist(), strict=True)
        }


@functools.cache
def file_print(path: Path = MODEL) -> str:
    """What identifies the shipped model for re-tagging (a digest of its file): read
    without loading the weights, which a pass with nothing to tag never needs."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@functools.cache
def load(path: Path = MODEL) -> TopicModel:
    """The shipped model: its words, and their weights as base64 of little-endian float32
    (scripts/train_topics.py writes it)."""
    import numpy as np

    data = json.loads(path.read_text(encoding="utf-8"))
    tags, words = tuple(data["bias"]), data["words"]
    weights = base64.b64decode(data["weights"])
    if len(weights) != 4 * len(words) * len(tags):
        raise ValueError(f"{path}: {len(weights)} bytes for {len(words)} words of {len(tags)} tags")
    proposes = data.get("proposes")
    return TopicModel(
        data["version"],
        tags,
        np.array(list(data["bias"].values())),
        {word: n for n, word in enumerate(words)},
        np.frombuffer(weights, dtype="<f4").reshape(len(words), len(tags)),
        None if proposes is None else frozenset(proposes),
    )
