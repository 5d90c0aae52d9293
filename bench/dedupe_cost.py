"""Cost of near-duplicate detection per new item as the store grows (issue 4).

Streams synthetic news items (titles and leads from a Zipf vocabulary with stock phrases,
10% of them near-copies of an earlier item from another outlet) through the real storing
path (exact keys, index lookup in SQLite, strict check) and prints, at each checkpoint,
the median cost per item of the last 1,000 inserts and the process's peak memory.

    .venv/bin/python bench/dedupe_cost.py            # checkpoints 1k, 10k, 100k
    .venv/bin/python bench/dedupe_cost.py 20000      # up to 20k
"""

from __future__ import annotations

import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.ingest.stories import store_items
from aggregator.model import Dedupe, Item
from aggregator.normalize import item_uid
from aggregator.storage.sqlite import Store

RNG = random.Random(7)
BATCH = 50  # items per transaction: one feed's pull
VOCAB = [f"w{n}" for n in range(30_000)]
WEIGHTS = [1 / (n + 1) for n in range(len(VOCAB))]
STOCK = [
    "according to people familiar with the matter",
    "selon des sources proches du dossier",
    "the company said in a statement on",
    "a annoncé l'entreprise dans un communiqué",
    "data from exchanges showed",
]


def words(n: int) -> list[str]:
    return RNG.choices(VOCAB, WEIGHTS, k=n)


def text() -> tuple[str, str]:
    title = " ".join(words(RNG.randint(7, 12)))
    lead = words(RNG.randint(40, 70))
    if RNG.random() < 0.15:
        lead.insert(RNG.randrange(len(lead)), RNG.choice(STOCK))
    return title, " ".join(lead)


def near_copy(title: str, lead: str) -> tuple[str, str]:
    ws = lead.split()
    for _ in range(max(1, len(ws) // 20)):  # about 5% of the words replaced
        ws[RNG.randrange(len(ws))] = RNG.choice(VOCAB)
    t = title.split()
    if RNG.random() < 0.5:
        t[RNG.randrange(len(t))] = RNG.choice(VOCAB)
    return " ".join(t), " ".join(ws)


def main(total: int) -> None:
    checkpoints = [c for c in (1_000, 10_000, 100_000) if c <= total] or [total]
    now = datetime(2026, 11, 27, tzinfo=UTC)
    policy = Dedupe(window=72 * 3600, similarity=0.8)
    history: list[tuple[str, str]] = []
    timings: list[float] = []
    merged = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        print(
            f"{'stored':>8} {'mean µs/item':>13} {'median':>7} {'p90':>7} {'peak RSS MB':>12} {'merged':>7}"
        )
        for n in range(1, total + 1):
            if history and RNG.random() < 0.10:
                title, lead = near_copy(*RNG.choice(history[-5000:]))
            else:
                title, lead = text()
                history.append((title, lead))
            source = f"s{RNG.randrange(200)}"
            key = f"k{n}"
            when = now - timedelta(seconds=(total - n) * 2)  # all inside the 72 h window
            item = Item(
                source=source, key=key, uid=item_uid(source, key), link=f"https://{source}.example/{n}",
                canonical=f"https://{source}.example/{n}", title=title,
                summary_html=escape(lead), content_html="", published=when, updated=when,
                content_hash=key,
            )  # fmt: skip
            started = time.perf_counter()
            if n % BATCH == 1:  # one transaction per pulled feed, as the pipeline does
                store.db.execute("BEGIN IMMEDIATE")
            cutoff = now - timedelta(days=30)
            (intent,) = store_items(store, [item], now=when, cutoff=cutoff, near=policy)
            kind = intent.kind
            if n % BATCH == 0 or n == total:
                store.db.execute("COMMIT")
            timings.append(time.perf_counter() - started)
            merged += kind == "duplicate"
            if n in checkpoints:
                last = timings[-1000:]
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                p90 = statistics.quantiles(last, n=10)[-1]
                print(
                    f"{n:>8} {statistics.mean(last) * 1e6:>13.0f} "
                    f"{statistics.median(last) * 1e6:>7.0f} {p90 * 1e6:>7.0f} "
                    f"{peak:>12.0f} {merged:>7}",
                    flush=True,
                )
        size = (Path(tmp) / "bench.db").stat().st_size / 1e6
        print(f"database: {size:.0f} MB for {total} items (index keys: one row an item)")
        store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
