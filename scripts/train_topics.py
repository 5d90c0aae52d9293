"""Train the topic model (aggregator/topics.py) on the dev half of the labelled corpus.

    .venv/bin/python scripts/train_topics.py          # writes aggregator/data/topics.json
    .venv/bin/python scripts/train_topics.py --check  # cross-validation only, writes nothing
    .venv/bin/python scripts/train_topics.py --check --scores cv.json
        # and each dev item's cross-validated scores: tests/curation_eval.py --scores cv.json

Logistic regression, one weight per word and tag, on the words of each item's title and
text as the pipeline sees them (normalized: markup, disclaimers and footers gone), for the
two topics (ai, crypto), which the model may give alone, and for every theme the corpus
labels often enough (THEMES), which it only judges: a theme the rules found and the model
finds most unlikely is doubted (topics.DISBELIEVES). Words seen in fewer than two items
are left out. Trained on tests/fixtures/curation/dev.jsonl only: holdout.jsonl is what it
is judged on. Prints each tag's 5-fold cross-validated figures. Deterministic: the same
corpus gives the same file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from curation_eval import NOW, load_half  # noqa: E402

from aggregator.model import ParsedEntry, ParsedFeed, Source  # noqa: E402
from aggregator.normalize import normalize_entry  # noqa: E402
from aggregator.topics import DISBELIEVES, MODEL, PROPOSE, tokens  # noqa: E402

TOPICS = ("ai", "crypto")  # the model may give these alone (PROPOSE)
# the shipped themes: the model only judges what the rules found (DISBELIEVES)
THEMES = (
    "markets", "security", "regulation", "funding", "talent", "infrastructure",
    "openai", "anthropic", "google", "meta", "mistral", "nvidia",
    "bitcoin", "ethereum", "solana", "stablecoins",
)  # fmt: skip
L2 = 0.1  # weight decay: with 260 items, a word seen twice must not decide alone
STEPS = 3000
RATE = 0.5
KEEP = 0.02  # smaller weights are written as 0: 7 of 45,000 decisions on dev move


def item_text(record: dict[str, Any]) -> str:
    entry = ParsedEntry(
        guid=record["id"], link="https://x.example/", title=record["title"],
        summary=record["summary_html"], content="", base="https://x.example/",
        published=NOW, updated=None,
    )  # fmt: skip
    feed = ParsedFeed(format="rss20", title="", link="", language="", entries=())
    item = normalize_entry(entry, feed, Source(name="x", url="https://x.example/"), NOW)
    assert item is not None
    return f"{item.title}\n{item.summary_text or item.content_text}"


class Words:
    """Items as sparse rows of a binary item x word matrix (each item's words once)."""

    def __init__(self, docs: list[set[str]], vocabulary: list[str]):
        index = {w: n for n, w in enumerate(vocabulary)}
        rows, cols = [], []
        for row, words in enumerate(docs):
            for word in sorted(words):
                if word in index:
                    rows.append(row)
                    cols.append(index[word])
        self.items, self.words = len(docs), len(vocabulary)
        self.rows, self.cols = np.array(rows, dtype=np.intp), np.array(cols, dtype=np.intp)
        # np.add.reduceat sums runs of rows: the entries by item (as built) and by word
        self.by_word = np.argsort(self.cols, kind="stable")
        self.item_starts, self.has_words = _runs(self.rows, self.items)
        self.word_starts, self.has_items = _runs(self.cols[self.by_word], self.words)

    def logits(self, w: np.ndarray) -> np.ndarray:
        """items x tags: each item's sum of its words' weights."""
        return _sums(w[self.cols], self.item_starts, self.has_words)

    def gradient(self, residual: np.ndarray) -> np.ndarray:
        """words x tags: each word's sum of its items' residuals."""
        return _sums(residual[self.rows[self.by_word]], self.word_starts, self.has_items)


def _runs(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each key's run starts in the sorted `keys`, and which keys have one."""
    counts = np.bincount(keys, minlength=size)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.minimum(starts, max(0, len(keys) - 1)), counts > 0


def _sums(values: np.ndarray, starts: np.ndarray, present: np.ndarray) -> np.ndarray:
    if not len(values):
        return np.zeros((len(starts), values.shape[1]))
    out = np.add.reduceat(values, starts, axis=0)
    out[~present] = 0.0  # reduceat gives an empty run the next value, not nothing
    return out


def fit(x: Words, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch gradient descent on the L2-regularised logistic loss, every tag at once
    (y: items x tags, 0 or 1)."""
    w, b = np.zeros((x.words, y.shape[1])), np.zeros(y.shape[1])
    n = len(y)
    for _ in range(STEPS):
        p = 1 / (1 + np.exp(-(x.logits(w) + b)))
        w -= RATE * (x.gradient(p - y) / n + L2 * w / n)
        b -= RATE * (p - y).mean(axis=0)
    return w, b


def vocabulary_of(docs: list[set[str]]) -> list[str]:
    counts: dict[str, int] = {}
    for words in docs:
        for word in words:
            counts[word] = counts.get(word, 0) + 1
    return sorted(w for w, c in counts.items() if c >= 2)


def labels_of(records: list[dict[str, Any]], tags: tuple[str, ...]) -> np.ndarray:
    return np.array(
        [[t in r["labels"]["topics"] or t in r["labels"]["tags"] for t in tags] for r in records],
        float,
    )


def cross_validated(docs: list[set[str]], y: np.ndarray) -> np.ndarray:
    """Each item's scores from a model trained on the four fifths it is not in."""
    folds = np.arange(len(docs)) % 5
    out = np.zeros(y.shape)
    for k in range(5):
        train = [d for d, f in zip(docs, folds, strict=True) if f != k]
        test = [d for d, f in zip(docs, folds, strict=True) if f == k]
        vocab = vocabulary_of(train)
        w, b = fit(Words(train, vocab), y[folds != k])
        out[folds == k] = 1 / (1 + np.exp(-(Words(test, vocab).logits(w) + b)))
    return out


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--check", action="store_true", help="cross-validate only")
    args.add_argument("--scores", type=Path, help="write the cross-validated scores here")
    opts = args.parse_args()
    records = load_half("dev")
    docs = [tokens(item_text(r)) for r in records]
    tags = TOPICS + THEMES
    y = labels_of(records, tags)
    scores = cross_validated(docs, y)
    for n, tag in enumerate(tags):
        p, truth = scores[:, n], y[:, n] == 1
        # a topic is given at PROPOSE; a theme is kept unless under DISBELIEVES
        given = p >= (PROPOSE if tag in TOPICS else DISBELIEVES)
        tp, fp = int((given & truth).sum()), int((given & ~truth).sum())
        fn = int((~given & truth).sum())
        print(f"{tag:<15} cross-validated at {PROPOSE if tag in TOPICS else DISBELIEVES}: "
              f"precision {tp / max(1, tp + fp):.2f}, recall {tp / max(1, tp + fn):.2f} "
              f"({tp} tp, {fp} fp, {fn} fn)")  # fmt: skip
    if opts.scores:
        opts.scores.write_text(json.dumps({t: scores[:, n].tolist() for n, t in enumerate(tags)}))
    if opts.check:
        return
    vocab = vocabulary_of(docs)
    w, b = fit(Words(docs, vocab), y)
    w = np.where(np.abs(w) >= KEEP, np.round(w, 4), 0.0).astype("<f4")
    kept = np.abs(w).sum(axis=1) > 0  # a word whose every weight is under KEEP is left out
    corpus = hashlib.sha256(
        "\n".join(json.dumps(r, sort_keys=True) for r in records).encode()
    ).hexdigest()
    model = {
        "version": corpus[:12], "trained_on": "tests/fixtures/curation/dev.jsonl",
        "proposes": list(TOPICS),
        "bias": {t: round(float(v), 4) for t, v in zip(tags, b, strict=True)},
        "words": [word for word, k in zip(vocab, kept, strict=True) if k],
        # words x tags, row by row, float32 little-endian (topics.load)
        "weights": base64.b64encode(w[kept].tobytes()).decode("ascii"),
    }  # fmt: skip
    MODEL.parent.mkdir(exist_ok=True)
    MODEL.write_text(json.dumps(model, ensure_ascii=False, indent=0) + "\n", "utf-8")
    print(f"wrote {MODEL.relative_to(ROOT)}: {int(kept.sum())} words, version {model['version']}")


if __name__ == "__main__":
    main()
