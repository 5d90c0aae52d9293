"""Precision and recall of curation on the labelled corpus (tests/fixtures/curation/).

Each item is a feed entry as an outlet would publish it, labelled blind by an editor with
its topics (`ai`, `crypto`), the tags an editor would give, and its true language. Items go
through the real path with the shipped `config.toml`: normalize (text, language) and the
tagger, with the source settings of a shipped outlet of the same kind. Printed: per-tag
precision and recall, per-feed precision and recall (membership decided by the feed's own
any/all/none/languages on the predicted tags, against the same on the labels), language
accuracy and disclaimer-language accuracy.

    .venv/bin/python tests/curation_eval.py              # both halves, figures only
    .venv/bin/python tests/curation_eval.py --show dev   # and each error of the dev half
    .venv/bin/python scripts/train_topics.py --check --scores /tmp/cv.json   # 6 minutes
    .venv/bin/python tests/curation_eval.py --scores /tmp/cv.json   # dev, cross-validated

Dev is read in-sample: the rules were tuned on it and the topic model trained on it.
`--scores` puts each dev item's cross-validated scores (from models trained on the four
fifths of dev it is not in) in place of the shipped model's for the themes, so the themes'
doubt is judged on items its model never saw (the rules stay as tuned).

`dev.jsonl` (4,440 items, twenty-five parts) is what the rules and the topic model are
tuned on; `holdout.jsonl` (2,870 items, fifteen parts) is never tuned on: read its figures,
never its errors. Three parts of dev and two of the held-out half are single sentences,
tagged as `aggregator tags TEXT` does.
How a part is written and labelled: `fixtures/curation/LABELLING.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.config.load import load  # noqa: E402
from aggregator.language import decide, settle  # noqa: E402
from aggregator.model import Config, ParsedEntry, ParsedFeed, Source, TagMatch  # noqa: E402
from aggregator.normalize import normalize_entry  # noqa: E402
from aggregator.select import tags_fit  # noqa: E402
from aggregator.tagging import tagger_for  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "fixtures" / "curation"
HALVES = ("dev", "holdout")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# The corpus's outlets, each with the settings of a shipped source of its kind; outlets of
# a kind the shipped config has none of (general news) get no tags and their language.
LIKE_SHIPPED = {
    "crypto-en": "cointelegraph",
    "crypto-fr": "journal-du-coin",
    "crypto-fr-mislabelled": "cryptoast",
    "ai-lab": "hugging-face-blog",
    "tech-fr": "siecle-digital",
}
OWN_LANGUAGE = {"tech-en": "en", "news-en": "en", "news-fr": "fr", "news-de": "de", "news-pt": "pt"}
# One sentence as an editor types it into `aggregator tags TEXT` (parts AG and AH): its
# `title` is the whole text, tagged with no source, no categories and no feed
SENTENCE = "sentence"


@dataclass(frozen=True)
class Judged:
    record: dict
    tags: frozenset[str]  # predicted
    truth: frozenset[str]  # labelled: topics and tags
    language: str  # predicted
    reasons: tuple[str, ...]


def load_half(name: str) -> list[dict]:
    lines = (CORPUS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def source_for(config: Config, outlet: str) -> Source:
    if outlet in LIKE_SHIPPED:
        shipped = config.source(LIKE_SHIPPED[outlet])
        assert shipped is not None, f"config.toml has no source {LIKE_SHIPPED[outlet]}"
        return shipped._replace(name=outlet, url=f"https://{outlet}.example/feed")
    return Source(name=outlet, url=f"https://{outlet}.example/feed", language=OWN_LANGUAGE[outlet])


class _Given:
    """The shipped topic model, but with given scores for the themes of the item `at`."""

    def __init__(self, scores: dict[str, list[float]]):
        from aggregator.topics import load as load_model

        self.model, self.given, self.at = load_model(), scores, 0
        self.topics = self.model.topics

    def may_propose(self, tag: str) -> bool:
        return self.model.may_propose(tag)

    def scores(self, text: str) -> dict[str, float]:
        out = self.model.scores(text)
        for tag, by_item in self.given.items():
            if tag in out and not self.model.may_propose(tag):
                out[tag] = by_item[self.at]
        return out


def judge(
    records: list[dict], config: Config, scores: dict[str, list[float]] | None = None
) -> list[Judged]:
    given = _Given(scores) if scores else None
    if given is None:
        tagger = tagger_for(config)
    else:
        from aggregator.tagging.tagger import Tagger

        tagger = Tagger(config.tags, tuple(config.disclaimers.values()), given)  # type: ignore[arg-type]
    out = []
    for n, r in enumerate(records):
        if given is not None:
            given.at = n
        if r["source"] == SENTENCE:  # as `aggregator tags TEXT` reads it: no source, no feed
            matches = tagger.tag_text(r["title"])
            out.append(_judged(r, matches, decide(r["title"], "", "").language))
            continue
        source = source_for(config, r["source"])
        entry = ParsedEntry(
            guid=r["id"],
            link=f"https://{r['source']}.example/{n}",
            title=r["title"],
            summary=r["summary_html"],
            content="",
            base=f"https://{r['source']}.example/",
            published=NOW,
            updated=None,
            categories=tuple(r.get("categories") or ()),
        )
        feed = ParsedFeed(format="rss20", title="", link="", language="", entries=())
        feed = replace(feed, language=r.get("declared_language") or "")
        item = normalize_entry(entry, feed, source, NOW)
        assert item is not None, r["id"]
        item = settle(item, source)
        matches = tagger.tag(item, source.tags, leans=source.leans)
        out.append(_judged(r, matches, item.language))
    return out


def _judged(record: dict, matches: tuple[TagMatch, ...], language: str) -> Judged:
    labels = record["labels"]
    return Judged(
        record=record,
        tags=frozenset(m.tag for m in matches),
        truth=frozenset(labels["topics"]) | frozenset(labels["tags"]),
        language=language,
        reasons=tuple(f"{m.tag}<-{m.rule}:{m.matched}" for m in matches),
    )


def _ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


def figures(judged: list[Judged], config: Config) -> dict:
    tags = sorted({t for j in judged for t in j.truth} | {r.name for r in config.tags})
    per_tag = {}
    for tag in tags:
        tp = sum(1 for j in judged if tag in j.tags and tag in j.truth)
        fp = sum(1 for j in judged if tag in j.tags and tag not in j.truth)
        fn = sum(1 for j in judged if tag not in j.tags and tag in j.truth)
        per_tag[tag] = {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
                        "tp": tp, "fp": fp, "fn": fn}  # fmt: skip
    per_feed = {}
    default = config.default_language
    for feed in config.feeds:
        tp = fp = fn = 0
        for j in judged:
            predicted = tags_fit(feed, j.tags) and _language_fits(feed, j.language, default)
            true = tags_fit(feed, j.truth) and _language_fits(
                feed, j.record["labels"]["language"], default
            )
            tp += predicted and true
            fp += predicted and not true
            fn += true and not predicted
        per_feed[feed.name] = {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
                               "tp": tp, "fp": fp, "fn": fn}  # fmt: skip
    # a published item's language, which its feeds' `language` fields and filters follow
    # (a sentence's is only shown by `tags`: a dozen words of Portuguese may read Galician)
    items = [j for j in judged if j.record["source"] != SENTENCE]
    language = sum(j.language == j.record["labels"]["language"] for j in items)

    def disclaimer(lang: str) -> str:
        return lang if lang in config.disclaimers else default

    right = sum(
        disclaimer(j.language) == disclaimer(j.record["labels"]["language"]) for j in judged
    )
    return {
        "items": len(judged),
        "tags": per_tag,
        "feeds": per_feed,
        "language": _ratio(language, len(items)),
        "disclaimer": _ratio(right, len(judged)),
        "languages": Counter(j.record["labels"]["language"] for j in judged),
    }


def _language_fits(feed, language: str, default: str) -> bool:  # type: ignore[no-untyped-def]
    return not feed.languages or (language or default) in feed.languages


def evaluate(
    half: str, config_path: Path = ROOT / "config.toml", scores: Path | None = None
) -> tuple[dict, list[Judged]]:
    config = load(config_path)
    given = json.loads(scores.read_text()) if scores else None
    judged = judge(load_half(half), config, given)
    return figures(judged, config), judged


def _print(half: str, result: dict) -> None:
    print(f"\n== {half}: {result['items']} items {dict(result['languages'])}")
    print(f"language right {result['language']:.3f} (feed items), disclaimer language right "
          f"{result['disclaimer']:.3f}")  # fmt: skip
    print(f"{'tag':<16}{'precision':>10}{'recall':>8}   tp  fp  fn")
    for tag, f in result["tags"].items():
        print(
            f"{tag:<16}{f['precision']:>10.2f}{f['recall']:>8.2f} {f['tp']:>4}{f['fp']:>4}{f['fn']:>4}"
        )
    print(f"{'feed':<16}{'precision':>10}{'recall':>8}   tp  fp  fn")
    for name, f in result["feeds"].items():
        print(
            f"{name:<16}{f['precision']:>10.2f}{f['recall']:>8.2f} {f['tp']:>4}{f['fp']:>4}{f['fn']:>4}"
        )


def _show_errors(judged: list[Judged]) -> None:
    for j in judged:
        r = j.record
        extra, missing = sorted(j.tags - j.truth), sorted(j.truth - j.tags)
        wrong_language = j.language != r["labels"]["language"]
        if extra or missing or wrong_language:
            print(f"\n{r['id']} [{r['source']}] {r['title']}")
            if extra:
                print(f"   extra {extra}: {[x for x in j.reasons if x.split('<-')[0] in extra]}")
            if missing:
                print(f"   missing {missing}")
            if wrong_language:
                print(f"   language {j.language}, truly {r['labels']['language']}")
            print(f"   note: {r.get('note', '')}")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--show", choices=HALVES, help="print every error of this half")
    args.add_argument("--config", type=Path, default=ROOT / "config.toml")
    args.add_argument(
        "--scores", type=Path, help="dev only, the themes' cross-validated scores from this file"
    )
    opts = args.parse_args()
    config = load(opts.config)  # for the sentences' own figures
    for half in ("dev",) if opts.scores else HALVES:
        result, judged = evaluate(half, opts.config, opts.scores)
        _print(half + (", cross-validated" if opts.scores else ""), result)
        sentences = [j for j in judged if j.record["source"] == SENTENCE]
        if sentences:  # also on their own: what `aggregator tags TEXT` shows an editor
            print(
                f"\n{half}, its {len(sentences)} single sentences alone (feed precision / recall):"
            )
            print("  " + ", ".join(
                f"{name} {f['precision']:.2f} / {f['recall']:.2f}"
                for name, f in figures(sentences, config)["feeds"].items()
            ))  # fmt: skip
        if opts.show == half:
            _show_errors(judged)


if __name__ == "__main__":
    main()
