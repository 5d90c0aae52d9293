"""Near-duplicate detection: the same story told by several outlets joins one cluster.

Two stages, as in the literature and reader's entry_dedupe:
1. Candidates from an index, never a scan: a MinHash of the lead's first words (word
   bigrams, accents folded, stopwords dropped) cut into LSH bands, plus the normalized
   title as one more key. Syndicated copies share the opening of their lead even when
   the headline is rewritten or the lead trimmed; the store keeps the keys (one row an
   item, so they survive restarts) and searches them in memory (storage/keyindex.py,
   loaded at the first lookup of a process).
2. A stricter check on each candidate: the overlap of the leads' bigrams (titles only when
   a lead is too short), vetoed when the numbers differ: "$120,000" is not "$100,000".
   A wrong merge hides a story, which is worse than a duplicate, so every doubt keeps two
   items apart.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import re
import zlib
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np

from aggregator.dedupe import KEYS_VERSION
from aggregator.text.sanitize import strip_accents, words_spaced

OPENING_WORDS = 20  # the lead's opening: copies share it even when trimmed
LEAD_WORDS = 120  # the lead compared (and indexed as a whole: copies padded at the start)
MIN_LEAD_SHINGLES = 12  # below this the lead says too little: compare titles instead
# LSH bands x rows: a pair with Jaccard J shares a band with probability 1-(1-J^rows)^bands:
# 0.60 at J=0.5 and 0.97 at J=0.7 for the opening (14x4), 0.89 at J=0.7 for the whole lead
# (8x4), and about 18 x J^4 for unrelated items: with 3 rows instead of 4, chance matches
# were 50x more frequent and grew with the store (N=2,000 in bench/). 23 keys an item with
# the title's (29 before: 16x4 + 12x3; the same precision and recall on the labelled stories).
OPENING_BANDS, OPENING_ROWS = 14, 4
LEAD_BANDS, LEAD_ROWS = 8, 4
_PRIME = (1 << 31) - 1
_perm_rng = random.Random(20261127)  # fixed: keys must be the same in every process
_PERMS = [
    (_perm_rng.randrange(1, _PRIME), _perm_rng.randrange(0, _PRIME))
    for _ in range(OPENING_BANDS * OPENING_ROWS + LEAD_BANDS * LEAD_ROWS)
]
_A = np.array([a for a, _ in _PERMS], dtype=np.uint64)  # a < 2**31, x < 2**32: no overflow
_P = np.uint64(_PRIME)
_B = np.array([b for _, b in _PERMS], dtype=np.uint64)
TITLE_KEY_BAND = OPENING_BANDS + LEAD_BANDS  # the band number of the exact-title key
assert OPENING_ROWS == LEAD_ROWS  # index_keys computes both band sets as one matrix
_OPENING_HASHES, _LEAD_HASHES = OPENING_BANDS * OPENING_ROWS, LEAD_BANDS * LEAD_ROWS
# Odd 64-bit multipliers (fixed, as the permutations): a band's rows and its number are
# combined in numpy, not formatted and hashed one band at a time in Python.
_BIGRAM_MIX = np.uint64(0x9E3779B1)
_ROW_MIX = np.array([_perm_rng.getrandbits(64) | 1 for _ in range(8)], dtype=np.uint64)
_BAND_MIX = np.array(
    [_perm_rng.getrandbits(64) | 1 for _ in range(TITLE_KEY_BAND)], dtype=np.uint64
)
# KEYS_VERSION (dedupe/__init__.py, so a run that stores nothing reads it without numpy)
# changes whenever the keys above would change: stored keys are then rebuilt.
# Keys are 31-bit: SQLite stores each in 4 bytes instead of 8, and the key index (19 rows
# an item) is what outgrows the page cache first. A chance collision only adds a
# candidate, which the strict check then rejects.
KEY_BITS = 31
# Candidates compared per new item: those sharing the most keys. A key common to many
# items (a stock phrase opening many leads) would otherwise bring more of them the
# larger the store grows; a real copy shares many keys, a chance match one or two.
MAX_CANDIDATES = 16

STOPWORDS = frozenset(
    """
    a an the and or but of to in on at by for with from as is are was were be been being it
    its this that these those than then there here has have had do does did not no so if
    into over about after before up down out new says said will would can could may might
    also more most just how what when where which who why all any some such our their his
    her they them we you he she i
    le la les l un une des du de d et ou mais en dans sur sous par pour avec sans au aux ce
    cet cette ces qui que quoi dont ou est sont etait ete etre a ont avait se sa son ses
    leur leurs il elle ils elles on nous vous ne pas plus moins tres tout tous toute toutes
    comme selon apres avant entre chez y n s c qu j m t
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_MULTIPLIERS = {
    "k": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "millions": 1e6, "b": 1e9, "bn": 1e9,
    "billion": 1e9, "billions": 1e9, "md": 1e9, "mds": 1e9, "milliard": 1e9, "milliards": 1e9,
    "t": 1e12, "tn": 1e12, "trillion": 1e12, "trillions": 1e12,
}  # fmt: skip
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*%?|\w+")
_WORD = re.compile(r"\w+")
_DIGIT = re.compile(r"\d")
_ASCII_DIGIT = re.compile(r"[0-9]")
# "SAN FRANCISCO (Reuters) -", "PARIS, 12 mars (AFP) —": wire datelines vary between copies
_DATELINE = re.compile(
    r"^\s*[A-Z][A-Z .,'-]{2,40}(?:\([^)]{2,30}\))?\s*[-—–:]\s+|^\s*\([^)]{2,30}\)\s*[-—–]\s+"
)
# identifiers in a headline: tickers, acronyms, model names ("XRP", "H20", "$PEPE")
_IDENTIFIER = re.compile(r"\$?\b(?=\w*[A-Z]\w*[A-Z0-9])[A-Z0-9][A-Za-z0-9]{1,9}\b")
_SPACED_THOUSANDS = re.compile(r"(?<=\d)[\s\u202f\u00a0](?=\d{3}\b)")


def _fold(text: str) -> str:
    text = text.replace("’", "'")
    return (text if text.isascii() else strip_accents(text)).casefold()


def _number(token: str) -> str:
    """ "120,000" "120 000" "120.000" -> "120000"; "1,5" -> "1.5"; "49%" keeps its "%"."""
    pct = token.endswith("%")
    digits = token.rstrip("%")
    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", digits):
        digits = re.sub(r"[.,]", "", digits)
    else:
        digits = digits.replace(",", ".")
    try:
        value = float(digits)
    except ValueError:
        return token
    text = f"{value:.15g}"
    return text + ("%" if pct else "")


def tokens(text: str) -> list[str]:
    """Content words and canonical numbers ("$40B" and "40 billion" alike)."""
    folded = _fold(text)
    # ASCII text: [0-9] is \d, read from a table (\d asks Unicode's database per character)
    if not (_ASCII_DIGIT if folded.isascii() else _DIGIT).search(folded):  # words only
        spaced = words_spaced(folded)
        words = _WORD.findall(folded) if spaced is None else spaced.split()
        return [t for t in words if t not in STOPWORDS]
    raw = _TOKEN.findall(_SPACED_THOUSANDS.sub("", folded))
    out: list[str] = []
    i = 0
    while i < len(raw):
        tok = raw[i]
        if tok[0].isdigit():
            num = _number(tok)
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt in _MULTIPLIERS and not num.endswith("%"):
                num = f"{float(num) * _MULTIPLIERS[nxt]:.15g}"
                i += 1
            out.append("#" + num)
        elif tok not in STOPWORDS and not tok.isdigit():
            out.append(tok)
        i += 1
    return out


def _unit_suffix_split(text: str) -> str:
    """ "$40B" / "120k" -> "40 B" / "120 k" so the multiplier is its own token."""
    if not _DIGIT.search(text):
        return text
    return re.sub(r"(\d)([kKmMbBtT][nN]?|mds?|Mds?)\b", r"\1 \2", text)


@dataclass(frozen=True)
class Fingerprint:
    title: tuple[str, ...]
    lead: tuple[str, ...]  # the first LEAD_WORDS content tokens of the lead
    identifiers: frozenset[str] = frozenset()  # of the title, case-folded
    names: frozenset[str] = frozenset()  # capitalized words inside the lead's sentences

    @functools.cached_property
    def title_numbers(self) -> frozenset[str]:
        return frozenset(t for t in self.title if t.startswith("#"))

    @functools.cached_property
    def lead_numbers(self) -> frozenset[str]:
        return frozenset(t for t in self.lead if t.startswith("#"))

    # Kept with the fingerprint: a stored item is compared with every copy that follows.
    @functools.cached_property
    def words(self) -> frozenset[str]:
        return frozenset(self.title + self.lead)

    @functools.cached_property
    def lead_words(self) -> frozenset[str]:
        return frozenset(self.lead)

    @functools.cached_property
    def lead_pairs(self) -> frozenset[str]:
        return frozenset(_shingles(self.lead))


def dumps(fp: Fingerprint) -> str:
    """A fingerprint as text for the store (tokens never hold spaces or control chars)."""
    parts = (fp.title, fp.lead, sorted(fp.identifiers), sorted(fp.names))
    return KEYS_VERSION + "\x1e" + "\x1e".join(" ".join(p) for p in parts)


def loads(text: str) -> Fingerprint | None:
    """The fingerprint `dumps` wrote, or None when another version wrote it."""
    version, _, rest = text.partition("\x1e")
    if version != KEYS_VERSION:
        return None
    title, lead, identifiers, names = (p.split() for p in rest.split("\x1e"))
    return Fingerprint(tuple(title), tuple(lead), frozenset(identifiers), frozenset(names))


def fingerprint(title: str, lead: str) -> Fingerprint:
    """What the similarity of two items is computed on: title and lead tokens."""
    lead = _DATELINE.sub("", " ".join(lead.split()[: LEAD_WORDS * 2]), count=1)
    lead_tokens = tokens(_unit_suffix_split(lead))
    identifiers = frozenset(
        _fold(m.group().lstrip("$")) for m in _IDENTIFIER.finditer(title) if not m.group().isdigit()
    )
    return Fingerprint(
        tuple(tokens(_unit_suffix_split(title))),
        tuple(lead_tokens[:LEAD_WORDS]),
        identifiers,
        _names(lead),
    )


# A capitalized word after a space, itself after a word character or , ; ) ’ ' " (checked
# in Python: a look-behind first would cost re its fast scan for the space, 3x slower).
_NAME = re.compile(r" ([A-Z][\w-]*)")
_NAME_AFTER = frozenset(",;)’'\"_")


def name_spans(lead: str) -> list[str]:
    """The capitalized words that do not open a sentence, in order."""
    out = []
    for m in _NAME.finditer(lead):
        start = m.start()
        if start and ((before := lead[start - 1]).isalnum() or before in _NAME_AFTER):
            out.append(m.group(1))
    return out


def _names(lead: str) -> frozenset[str]:
    """Proper nouns: capitalized words that do not open a sentence ("on Solana", "by ASML")."""
    names: set[str] = set()
    for name in name_spans(lead):
        names.update(t for t in tokens(name) if not t.startswith("#"))
    return frozenset(names)


def _shingles(words: tuple[str, ...]) -> set[str]:
    if len(words) < 2:
        return set(words)
    return {f"{a} {b}" for a, b in itertools.pairwise(words)}


def _hash_key(data: bytes) -> int:
    """A KEY_BITS key of some bytes."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") >> (64 - KEY_BITS)


def _word_hashes(words: tuple[str, ...]) -> np.ndarray:
    return np.fromiter(map(zlib.crc32, "\n".join(words).encode().split(b"\n")), np.uint64)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit moves every output bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def index_keys(fp: Fingerprint) -> list[int]:
    """LSH band keys of the lead's opening and of the whole lead, and the title's key."""
    return index_keys_many([fp])[0]


def index_keys_many(fps: list[Fingerprint]) -> list[list[int]]:
    """`index_keys` of many fingerprints (a document's items), as one numpy computation.

    One MinHash matrix for both band sets: the opening's rows see only the bigrams of its
    first words (a minimum is the same over repeated values, so bigrams need no dedupe).
    numpy's cost is per operation, not per element: one item's ~30 bigrams made each of its
    ~15 operations mostly overhead (bench: 47 us an item alone, 18 in a document of 50)."""
    hashed = [n for n, fp in enumerate(fps) if len(fp.lead) >= 4]
    bands: dict[int, list[int]] = {}
    if hashed:
        # every lead's words hashed at once, the bigrams across two leads dropped after
        words = _word_hashes(tuple(w for n in hashed for w in fps[n].lead))
        counts = np.array([len(fps[n].lead) for n in hashed])
        pairs_all = ((words[:-1] * _BIGRAM_MIX) ^ words[1:]) & 0xFFFFFFFF
        xs = np.delete(pairs_all, np.cumsum(counts)[:-1] - 1)
        lengths = counts - 1  # each lead's bigrams, in order, in xs
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        # the opening's hashes over the opening's bigrams only, the lead's over all
        opening = np.maximum(1, np.minimum(OPENING_WORDS, lengths + 1) - 1)
        in_opening = np.repeat(starts, opening) + (
            np.arange(opening.sum()) - np.repeat(np.cumsum(opening) - opening, opening)
        )
        opening_xs = xs[in_opening]
        opening_starts = np.concatenate(([0], np.cumsum(opening)[:-1]))
        opening_min = np.minimum.reduceat(
            _minhash(opening_xs, 0, _OPENING_HASHES), opening_starts, axis=1
        )
        lead_min = np.minimum.reduceat(_minhash(xs, _OPENING_HASHES, None), starts, axis=1)
        sig = np.concatenate((opening_min, lead_min))  # hashes x items
        rows = sig.T.reshape(len(hashed), -1, OPENING_ROWS)  # items x bands x rows
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as a hash should
            combined = (rows * _ROW_MIX[:OPENING_ROWS]).sum(axis=2) + _BAND_MIX[:TITLE_KEY_BAND]
            keys = (_mix64(combined) >> np.uint64(64 - KEY_BITS)).tolist()
        for n, item_keys in zip(hashed, keys, strict=True):
            with_lead = len(fps[n].lead) > OPENING_WORDS
            bands[n] = item_keys if with_lead else item_keys[:OPENING_BANDS]
    out = []
    for n, fp in enumerate(fps):
        keys = list(bands.get(n, ()))
        if len(fp.title) >= 3:
            keys.append(_hash_key(f"{TITLE_KEY_BAND}:{' '.join(sorted(set(fp.title)))}".encode()))
        out.append(keys)
    return out


def _minhash(xs: np.ndarray, first: int, last: int | None) -> np.ndarray:
    """Hash functions first..last of the MinHash on `xs` (hashes x values).

    In place after the product: the expression's two other temporaries tripled its cost
    (a document's matrix is ~1 MB: fresh pages each time)."""
    out: np.ndarray = _A[first:last, None] * xs[None, :]
    out += _B[first:last, None]
    out %= _P
    return out


def _overlap(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def _jaccard(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


@dataclass(frozen=True)
class Verdict:
    same: bool
    score: float
    why: str


def compare(a: Fingerprint, b: Fingerprint, threshold: float) -> Verdict:
    """Whether two items tell the same story, with the score and the reason."""
    words_a, words_b = a.words, b.words
    # A headline's numbers and names are its facts: one side's must appear in the other.
    ta, tb = a.title_numbers, b.title_numbers
    if ta and tb and not (ta <= words_b or tb <= words_a):
        return Verdict(False, 0.0, "different numbers in the titles")
    if (a.identifiers - words_b) and (b.identifiers - words_a):
        names = ", ".join(sorted((a.identifiers - words_b) | (b.identifiers - words_a)))
        return Verdict(False, 0.0, f"different names in the titles ({names})")
    la, lb = a.lead_pairs, b.lead_pairs
    # Templated texts (listings, press releases per chain) differ only by a name or two.
    if (a.names - words_b) and (b.names - words_a):
        names = ", ".join(sorted((a.names - words_b) | (b.names - words_a))[:6])
        return Verdict(False, 0.0, f"different names ({names})")
    if min(len(la), len(lb)) >= MIN_LEAD_SHINGLES:
        na, nb = a.lead_numbers, b.lead_numbers
        if len(na) >= 2 and len(nb) >= 2 and _overlap(set(na), set(nb)) < 0.5:
            return Verdict(False, 0.0, "different numbers in the leads")
        # words forgive light edits, word pairs keep the order: a copy scores high on both
        score = (_overlap(a.lead_words, b.lead_words) + _overlap(la, lb)) / 2
        return Verdict(score >= threshold, round(score, 3), "lead overlap")
    score = _jaccard(set(a.title), set(b.title))
    return Verdict(score >= max(threshold, 0.8), round(score, 3), "title similarity")
