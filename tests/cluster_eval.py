"""Precision and recall of merge decisions on the labelled stories (tests/fixtures/stories.json).

Items go through the real storing path (exact keys, index, strict check) into a real
SQLite store in the order of the file; a pair of items is "merged" when they end up in
one story. Run it directly to print the figures quoted in the README:

    .venv/bin/python tests/cluster_eval.py
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.ingest.stories import store_items  # noqa: E402
from aggregator.model import Dedupe, Item  # noqa: E402
from aggregator.normalize import item_uid  # noqa: E402
from aggregator.storage.sqlite import Store  # noqa: E402

STORIES = Path(__file__).resolve().parent / "fixtures" / "stories.json"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def load() -> list[dict]:
    return json.loads(STORIES.read_text(encoding="utf-8"))


def evaluate(similarity: float = 0.8, path: Path | None = None) -> dict:
    records = load()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "eval.db")
        policy = Dedupe(window=72 * 3600, similarity=similarity)
        uids = []
        for n, r in enumerate(records):
            key = f"item-{n}"
            uid = item_uid(r["source"], key)
            uids.append(uid)
            when = NOW - timedelta(minutes=len(records) - n)
            item = Item(
                source=r["source"], key=key, uid=uid, link=f"https://{r['source']}.example/{n}",
                canonical=f"https://{r['source']}.example/{n}", title=r["title"],
                summary_html=escape(r["lead"]), content_html="",
                published=when, updated=when, content_hash=str(n),
            )  # fmt: skip
            with store.transaction():
                store_items(store, [item], now=when, cutoff=NOW - timedelta(days=30), near=policy)
        story = {i.uid: i.story for i in store.items()}
        store.close()
    tp = fp = fn = 0
    wrong, missed = [], []
    for (i, a), (j, b) in itertools.combinations(enumerate(records), 2):
        same_truth = a["story"] == b["story"]
        same_pred = story[uids[i]] == story[uids[j]]
        if same_pred and same_truth:
            tp += 1
        elif same_pred:
            fp += 1
            wrong.append((a["title"], b["title"]))
        elif same_truth:
            fn += 1
            missed.append((a["title"], b["title"]))
    return {
        "items": len(records),
        "stories": len({r["story"] for r in records}),
        "pairs_same": tp + fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "wrong_merges": wrong,
        "missed": missed,
    }


if __name__ == "__main__":
    result = evaluate()
    print(json.dumps(result, indent=2, ensure_ascii=False))
