"""Editors' tools: `preview` (a feed before publishing), `tags` (a text or a stored item
through the rules, with reasons), `explain` (why an item is where it is), `schema`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.cli.common import EXIT_FAILED, EXIT_OK, reason
from aggregator.config.load import load
from aggregator.errors import AggregatorError
from aggregator.model import Config, Source
from aggregator.select import why_stand_in
from aggregator.storage import database_exists, open_store
from aggregator.tagging import tagged_text, tagger_for
from aggregator.text.urls import canonical

if TYPE_CHECKING:  # what a pull makes (model/items.py) loads when a stored item is read
    from aggregator.model import Item


def cmd_preview(args: argparse.Namespace, path: Path) -> int:
    from aggregator.cli.preview import READ_AT_MOST, Entry, as_text, preview

    live = load(path)
    candidate = load(args.against) if args.against else live
    published: dict[str, list[Entry]] = {}
    for file in sorted(live.settings.output_dir.glob("*.json")):
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not str(doc.get("version", "")).startswith("https://jsonfeed.org/"):
            continue
        published[file.stem] = [
            Entry(i.get("id", ""), i.get("title", ""), (i.get("_source") or {}).get("title", ""))
            for i in doc.get("items", [])
        ]
    items, stored = [], 0
    if database_exists(live.settings.database):
        store = open_store(live.settings.database)
        try:
            items = store.items(newest=READ_AT_MOST)
            stored = store.count_items()
        finally:
            store.close()
    result = preview(candidate, items, published, stored)
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(as_text(result, args.against or path, path))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, path: Path) -> int:
    from aggregator.config.schema import render

    sys.stdout.write(render())
    return EXIT_OK


def cmd_tags(args: argparse.Namespace, path: Path) -> int:
    config = load(path)
    tagger = tagger_for(config)
    problems: list[str] = []
    passing: list[str] = []
    rare: list[str] = []
    vetoes: list[str] = []
    doubted: list[str] = []
    if args.url:
        found = _stored_item(config, args.url)
        if found is None:
            return EXIT_FAILED
        item, _ = found
        source = config.source(item.source)
        matches = tagger.tag(
            item,
            source.tags if source else (),
            problems,
            source.leans if source else (),
            passing,
            rare=rare,
            vetoes=vetoes,
            doubted=doubted,
        )
        print(f"{item.title} ({item.source})")
    else:
        text = _read_text(args.file) if args.file else args.text
        matches = tagger.tag_text(
            text, problems=problems, passing=passing, rare=rare, vetoes=vetoes, doubted=doubted
        )
        from aggregator.language import decide

        print(f"{'language':<16} {decide(text, '', '').reason}")
        print(f"{'topic model':<16} {_topic_scores(config, text)}")
    by_tag: dict[str, list[str]] = {}
    for m in matches:
        by_tag.setdefault(m.tag, []).append(reason(m))
    for tag, reasons in by_tag.items():
        print(f"{tag:<16} {'; '.join(reasons)}")
    if not by_tag:
        print("no tag")
    if passing:
        print(f"{'in passing':<16} {'; '.join(passing)} (not counted: see `passing`)")
    if rare:
        print(f"{'too rare':<16} {'; '.join(rare)} (see `mentions`)")
    if vetoes:
        print(f"{'vetoed':<16} {'; '.join(vetoes)} (see `exclude`)")
    if doubted:
        print(f"{'doubted':<16} {'; '.join(doubted)} ({DOUBTED})")
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return EXIT_OK


def _read_text(path: Path) -> str:
    """The text of `--file`: "-" is standard input."""
    if str(path) == "-":
        return sys.stdin.buffer.read().decode("utf-8", errors="replace")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise AggregatorError(f"{path}: cannot read: {exc.strerror or exc}") from None


def cmd_explain(args: argparse.Namespace, path: Path) -> int:
    config = load(path)
    found = _stored_item(config, args.url)
    if found is None:
        return EXIT_FAILED
    print(explain_text(*found, config))
    return EXIT_OK


def _stored_item(config: Config, url: str) -> tuple[Item, list[Item]] | None:
    """The stored item a link (any copy's, tracking parameters and all) names, with its
    story's copies; None, after saying why, when there is none."""
    if not database_exists(config.settings.database):
        print("no pulls yet (the database does not exist)", file=sys.stderr)
        return None
    store = open_store(config.settings.database)
    try:
        url = url.strip()
        found = []
        if url.startswith("urn:uuid:"):  # the id a reader sees in the published feed
            found = list(store.items_by_uid([url]).values())
        for variant in _link_variants(url) if not found else ():
            if found := store.items_by_link(canonical(variant), variant):
                break
        if not found:
            print(f"unknown: no stored item links to {url}", file=sys.stderr)
            return None
        return found[0], store.story_items(found[0].story)
    finally:
        store.close()


def _link_variants(url: str) -> list[str]:
    """The link as given, then with the other scheme and the trailing slash toggled: a link
    copied from a browser is often the https, slash-less form of the one the feed gave."""
    variants = [url]
    for scheme_of in (
        url,
        url.replace("https://", "http://", 1),
        url.replace("http://", "https://", 1),
    ):
        for slash in (scheme_of, scheme_of[:-1] if scheme_of.endswith("/") else scheme_of + "/"):
            if slash not in variants:
                variants.append(slash)
    return variants


# why a doubted theme is not given: the tags and explain commands say it after the scores
DOUBTED = "the rules found it, the topic model finds it unlikely: see `topic_model`"


def _topic_scores(config: Config, text: str) -> str:
    """What the topic model makes of a text: each topic's probability (rules decide)."""
    if not config.settings.topic_model:
        return "off ([aggregator] topic_model = false)"
    from aggregator.topics import AGREES, EVIDENCE, JUDGES_FROM, PROPOSE, judges
    from aggregator.topics import load as topic_model

    model = topic_model()
    scores = model.scores(text)  # the topics it may give; themes show when it doubts them
    short = "" if judges(text) else f"; under {JUDGES_FROM} words it does not judge the themes"
    return ", ".join(f"{t} {s:.2f}" for t, s in scores.items() if model.may_propose(t)) + (
        f" (gives a topic at {PROPOSE}, backs a keyword said once at {AGREES}, evidence for "
        f"a leaning source at {EVIDENCE}{short})"
    )


def _language_why(item: Item, sources: dict[str, Source]) -> str:
    """How the language is decided for this item's text, as it would be now."""
    from aggregator.language import decide

    source = sources.get(item.source)
    return decide(_item_text(item), "", source.language if source else "").reason


def _item_text(item: Item) -> str:
    """The title and text that the language is decided from."""
    return f"{item.title}\n{item.summary_text or item.content_text}"


def explain_text(item: Item, copies: list[Item], config: Config) -> str:
    sources = {s.name: s for s in config.sources}
    lines = [
        item.title,
        f"  source:    {item.source}",
        f"  link:      {item.canonical or item.link}",
        f"  published: {item.published.isoformat()}",
        f"  language:  {item.language or config.default_language} ({_language_why(item, sources)})",
        f"  story id:  {item.story}",
        f"  topics:    {_topic_scores(config, tagged_text(item))}",
        "",
        "Tags:",
    ]
    by_tag: dict[str, list[str]] = {}
    for m in item.tags:
        by_tag.setdefault(m.tag, []).append(reason(m))
    lines += [f"  {tag}: {'; '.join(reasons)}" for tag, reasons in by_tag.items()] or ["  (none)"]
    passing: list[str] = []
    rare: list[str] = []
    vetoes: list[str] = []
    doubted: list[str] = []
    source = sources.get(item.source)
    tagger_for(config).tag(
        item,
        source.tags if source else (),
        None,
        source.leans if source else (),
        passing,
        rare=rare,
        vetoes=vetoes,
        doubted=doubted,
    )
    if passing:
        lines.append(f"  in passing (not counted): {'; '.join(passing)}")
    if rare:
        lines.append(f"  too rare in a long text (not counted): {'; '.join(rare)}")
    if vetoes:
        lines.append(f"  vetoed (see `exclude`): {'; '.join(vetoes)}")
    if doubted:
        lines.append(f"  doubted ({DOUBTED}): {'; '.join(doubted)}")
    best, why = why_stand_in(copies, sources)
    lines += ["", f"Story: {len(copies)} cop{'y' if len(copies) == 1 else 'ies'}"]
    by_uid = {c.uid: c for c in copies}
    for c in copies:
        mark = "*" if c.uid == best.uid else " "
        if c.matched and c.matched in by_uid:
            score = f"{c.similarity:.2f}" if c.similarity is not None else "?"
            how = f"joined: {c.match_reason}, similarity {score} with {by_uid[c.matched].source}"
        elif c.uid == item.story:
            how = "first copy seen"
        else:
            how = f"joined: {c.match_reason or 'same story'}"
        lines.append(f" {mark} {c.source:<20} {c.title}")
        lines.append(f"   {'':<20} {c.canonical or c.link}  ({how})")
    lines += ["", f"Stands for the story: {best.source} ({why})."]
    return "\n".join(lines)
