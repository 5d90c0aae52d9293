"""The near-duplicate index in memory: which stored items hold each index key.

The store keeps an item's keys as one row (`encode`: 8 hex digits a key); this answers
"which items share keys with this one" without a table of (key, item) rows. That table
cost 23 random B-tree inserts an item, 40% of storing a bulk pass, and more per item as
the store grew (bench/: storing 100,000 items took 28 s of CPU with it, 13 s with this).

Sorted numpy runs: the stored keys, read once when first needed, and one run a document
added since, merged 8 at a time; a Bloom filter in front of the added runs says "no" for
most keys. A document's new items are searched together (`items_sharing_many`).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Sequence

import numpy as np


def encode(keys: Iterable[int]) -> str:
    """An item's keys as stored: distinct, sorted, 8 hex digits each (big-endian)."""
    distinct = sorted(set(keys))
    return struct.pack(f">{len(distinct)}I", *distinct).hex()


def decode(text: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(text), dtype=">u4").astype(np.uint32)


ITEM_BITS = 33  # a run holds key << 33 | item: keys are under 2**31, rowids under 2**33
_ITEM_MASK = np.uint64((1 << ITEM_BITS) - 1)
_SHIFT = np.uint64(ITEM_BITS)


def _pack(keys: np.ndarray, items: np.ndarray) -> np.ndarray:
    if len(items) and int(items.max()) >> ITEM_BITS:
        raise ValueError(f"item rowid past 2**{ITEM_BITS}: the key index cannot hold it")
    return (keys.astype(np.uint64) << _SHIFT) | items.astype(np.uint64)


class KeyIndex:
    """Key -> item rowids for the keys of the stored items (each (key, item) once).

    A run is one sorted uint64 array of key << 33 | item: sorting and merging move one
    array, and a key's items are one slice. The keys read from the store are one run,
    always searched; those added since are runs of their own, behind a Bloom filter made
    for 4 times the keys added each time they outgrow it (a 16 MB filter filled with 2.3
    million stored keys took 0.55 s of random writes: more than reading and sorting them,
    0.2 s). MERGE runs of one level merge into one of the next, so an added key is moved
    log8(n) times; the searches are a document's at once, so more runs cost little."""

    MERGE = 8

    def __init__(self, rows: Iterable[tuple[int, str]] = ()):
        """From the stored rows: (item rowid, encoded keys)."""
        self.filter: KeyFilter | None = None  # the keys added since the base run was sorted
        self._base = np.empty(0, dtype=np.uint64)
        self._runs: list[tuple[int, np.ndarray]] = []  # (level, run) added since
        self._added = 0  # keys in those runs
        packed = []
        rows = iter(rows)
        while chunk := list(itertools.islice(rows, 8192)):  # numpy's temporaries stay small
            owners = np.repeat(
                np.array([item for item, _ in chunk], dtype=np.int64),
                [len(text) >> 3 for _, text in chunk],
            )
            packed.append(_pack(decode("".join(text for _, text in chunk)), owners))
        if packed:
            self._base = np.concatenate(packed)
            self._base.sort()

    def add(self, rows: Iterable[tuple[int, Sequence[int]]]) -> None:
        """Keys of new items: (item rowid, its keys), as many items at once as there are
        (a document's: each call is a run)."""
        keys: list[int] = []
        items: list[int] = []
        for item, item_keys in rows:
            distinct = set(item_keys)
            keys.extend(distinct)
            items.extend(itertools.repeat(item, len(distinct)))
        if not keys:
            return
        added = np.array(keys, dtype=np.uint32)
        self._runs.append((0, np.sort(_pack(added, np.array(items, dtype=np.int64)))))
        while len(self._runs) >= self.MERGE and self._runs[-self.MERGE][0] == self._runs[-1][0]:
            merged = [run for _, run in self._runs[-self.MERGE :]]
            level = self._runs[-1][0] + 1
            del self._runs[-self.MERGE :]
            # sorted runs one after the other: timsort merges them
            self._runs.append((level, np.sort(np.concatenate(merged), kind="stable")))
        self._added += len(added)
        if self.filter is not None and self._added <= self.filter.capacity:
            self.filter.add(added)
        else:  # one 4 times the size, from every key added (a filter cannot grow)
            self.filter = None  # its memory back first
            self.filter = KeyFilter(4 * self._added)
            for _, run in self._runs:
                self.filter.add(run >> _SHIFT)

    def items_sharing(self, keys: Iterable[int]) -> list[int]:
        """The item of each stored (key, item) whose key is among `keys`: an item appears
        once per key it shares."""
        return self.items_sharing_many([keys])[0]

    def items_sharing_many(self, key_lists: Sequence[Iterable[int]]) -> list[list[int]]:
        """`items_sharing` of each key list (a document's new items), in one search a run:
        numpy's cost is per call (one item at a time: 13 us, most of it in the filter)."""
        distinct = [set(keys) for keys in key_lists]
        found: list[list[int]] = [[] for _ in distinct]
        wanted = np.fromiter(itertools.chain.from_iterable(distinct), dtype=np.uint64)
        if not len(wanted):
            return found
        owners = np.repeat(np.arange(len(distinct)), [len(keys) for keys in distinct])
        searches = [(self._base, wanted, owners)] if len(self._base) else []
        if self.filter is not None:
            maybe = self.filter.maybe(wanted)
            if maybe.any():
                searches += [(run, wanted[maybe], owners[maybe]) for _, run in self._runs]
        for run, query, whose in searches:
            first = np.searchsorted(run, query << _SHIFT)
            last = np.searchsorted(run, (query + np.uint64(1)) << _SHIFT)
            for n in np.flatnonzero(last > first).tolist():
                found[whose[n]].extend((run[first[n] : last[n]] & _ITEM_MASK).tolist())
        return found

    def drop_before(self, first: int) -> None:
        """Forget the keys of the items under rowid `first` (pruned from the store); every
        key left goes into the base run, and the filter starts empty again (nothing
        changes when no key is that old)."""
        runs = [self._base, *(run for _, run in self._runs)]
        if all(not len(run) or (run & _ITEM_MASK).min() >= first for run in runs):
            return
        every = np.concatenate(runs)
        kept = every[(every & _ITEM_MASK) >= first]
        self._base = np.sort(kept, kind="stable")  # sorted runs: timsort merges them
        self._runs, self._added, self.filter = [], 0, None


class KeyFilter:
    """Which keys may be stored: a Bloom filter, three bits a key, at least 32 bits a key
    for the `capacity` it is made for (2**20 to 2**27 bits: 128 KB to 16 MB). Asking it
    first spares the index a search for every new item that shares no key with anything
    (most of them); a false "maybe" (bits set by other keys) only costs that search. An
    item's 23 keys get one 1.3% of the time from a full filter (32 bits a key), 0.28%
    from one a quarter full."""

    _MIX = 0x9E3779B97F4A7C15  # the 2nd and 3rd bits from other bits of key * _MIX
    CHUNK = 1 << 16  # keys set at once: numpy's temporaries take ~60 bytes a key

    def __init__(self, capacity: int, keys: Iterable[int] | np.ndarray = ()):
        self.bits = min(27, max(20, (32 * capacity - 1).bit_length()))
        self.capacity = (1 << self.bits) // 32  # keys it holds at 32 bits a key
        self.mask = (1 << self.bits) - 1
        # calloc'd: a page is resident once a bit in it is set (bytearray writes them all)
        self._bits = np.zeros(1 << (self.bits - 3), dtype=np.uint8)
        self.add(keys)

    def add(self, keys: Iterable[int] | np.ndarray) -> None:
        values = keys if isinstance(keys, np.ndarray) else np.fromiter(keys, dtype=np.uint64)
        for start in range(0, len(values), self.CHUNK):
            slots = np.concatenate(self._slots(values[start : start + self.CHUNK]))
            np.bitwise_or.at(self._bits, slots >> 3, (1 << (slots & 7)).astype(np.uint8))

    def maybe(self, keys: Iterable[int] | np.ndarray) -> np.ndarray:
        """For each key, whether it may be held (False is sure)."""
        first, *others = self._slots(keys)
        held = self._bits[first >> 3] >> (first & 7)
        for slots in others:
            held &= self._bits[slots >> 3] >> (slots & 7)
        maybe: np.ndarray = (held & 1).astype(bool)
        return maybe

    def _slots(self, keys: Iterable[int] | np.ndarray) -> list[np.ndarray]:
        """The three bits of each key: its low bits, and two ranges of its product."""
        if isinstance(keys, np.ndarray):
            values = keys.astype(np.uint64)
        else:
            values = np.fromiter(keys, dtype=np.uint64)
        with np.errstate(over="ignore"):  # the product wraps, as a hash should
            mixed = values * np.uint64(self._MIX)
        mask = np.uint64(self.mask)
        return [
            (slots & mask).astype(np.int64)
            for slots in (values, mixed >> np.uint64(10), mixed >> np.uint64(37))
        ]
