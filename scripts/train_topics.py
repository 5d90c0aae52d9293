"""Train the topic model (aggregator/topics.py) on the dev half of the labelled corpus.

    .venv/bin/python scripts/train_topics.py          # writes aggregator/data/topics.json

Logistic regression, one weight per word and topic (ai, crypto), on the words of each
item's title and text as the pipeline sees them (normalized: markup, disclaimers and
footers gone). Words seen in fewer than two items are left out. Trained on
tests/fixtures/curation/dev.jsonl only: holdout.jsonl is what it is judged on. Prints the
5-fold cross-validated precision and recall of the model alone at the proposing threshold.
Deterministic: the same corpus gives the same file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from curation_eval import NOW, load_half  # noqa: E402

from aggregator.model import ParsedEntry, ParsedFeed, Source  # noqa: E402
from aggregator.normalize import normalize_entry  # noqa: E402
from aggregator.topics import MODEL, PROPOSE, tokens  # noqa: E402

TOPICS = ("ai", "crypto")
L2 = 0.1  # weight decay: with 260 items, a word seen twice must not decide alone
STEPS = 3000
RATE = 0.5


def item_text(record: dict) -> str:
    entry = ParsedEntry(
        guid=record["id"], link="https://x.example/", title=record["title"],
        summary=record["summary_html"], content="", base="https://x.example/",
        published=NOW, updated=None,
    )  # fmt: skip
    feed = ParsedFeed(format="rss20", title="", link="", language="", entries=())
    item = normalize_entry(entry, feed, Source(name="x", url="https://x.example/"), NOW)
    assert item is not None
    return f"{item.title}\n{item.summary_text or item.content_text}"


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Full-batch gradient descent on the L2-regularised logistic loss."""
    w, b = np.zeros(x.shape[1]), 0.0
    n = len(y)
    for _ in range(STEPS):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= RATE * (x.T @ (p - y) / n + L2 * w / n)
        b -= RATE * float(np.mean(p - y))
    return w, b


def matrix(docs: list[set[str]], vocabulary: list[str]) -> np.ndarray:
    index = {w: n for n, w in enumerate(vocabulary)}
    x = np.zeros((len(docs), len(vocabulary)))
    for row, words in enumerate(docs):
        for word in words:
            if word in index:
                x[row, index[word]] = 1.0
    return x


def vocabulary_of(docs: list[set[str]]) -> list[str]:
    counts: dict[str, int] = {}
    for words in docs:
        for word in words:
            counts[word] = counts.get(word, 0) + 1
    return sorted(w for w, c in counts.items() if c >= 2)


def main() -> None:
    records = load_half("dev")
    docs = [tokens(item_text(r)) for r in records]
    labels = {t: np.array([t in r["labels"]["topics"] for r in records], float) for t in TOPICS}
    # 5-fold cross-validation of the model alone, at the proposing threshold
    folds = np.arange(len(records)) % 5
    for topic in TOPICS:
        tp = fp = fn = 0
        for k in range(5):
            train, test = folds != k, folds == k
            vocab = vocabulary_of([d for d, t in zip(docs, train, strict=True) if t])
            w, b = fit(
                matrix([d for d, t in zip(docs, train, strict=True) if t], vocab),
                labels[topic][train],
            )
            p = 1 / (
                1
                + np.exp(
                    -(matrix([d for d, t in zip(docs, test, strict=True) if t], vocab) @ w + b)
                )
            )
            y = labels[topic][test]
            tp += int(((p >= PROPOSE) & (y == 1)).sum())
            fp += int(((p >= PROPOSE) & (y == 0)).sum())
            fn += int(((p < PROPOSE) & (y == 1)).sum())
        print(f"{topic}: cross-validated at {PROPOSE}: precision {tp / max(1, tp + fp):.2f}, "
              f"recall {tp / max(1, tp + fn):.2f} ({tp} tp, {fp} fp, {fn} fn)")  # fmt: skip
    vocab = vocabulary_of(docs)
    x = matrix(docs, vocab)
    weights, bias = {}, {}
    for topic in TOPICS:
        w, b = fit(x, labels[topic])
        bias[topic] = round(b, 4)
        weights[topic] = {
            word: round(float(v), 4) for word, v in zip(vocab, w, strict=True) if abs(v) >= 0.005
        }
    corpus = hashlib.sha256(
        "\n".join(json.dumps(r, sort_keys=True) for r in records).encode()
    ).hexdigest()
    model = {"version": corpus[:12], "trained_on": "tests/fixtures/curation/dev.jsonl",
             "bias": bias, "weights": weights}  # fmt: skip
    MODEL.parent.mkdir(exist_ok=True)
    MODEL.write_text(
        json.dumps(model, ensure_ascii=False, sort_keys=True, indent=0) + "\n", "utf-8"
    )
    print(f"wrote {MODEL.relative_to(ROOT)}: {len(vocab)} words, version {model['version']}")


if __name__ == "__main__":
    main()
