"""Pair sampling: which (I_t, I_{t+δ}) frame pairs a clip contributes, with δ drawn from seeded generators.

A clip's pairs are numbered: pair r is draw r % pairs_per_frame of anchor r // pairs_per_frame, and the δ of a block of
ANCHOR_BLOCK anchors comes from a generator seeded by (seed, clip key, block). Any range of pairs is therefore drawn
without drawing the pairs before it: a shard task makes its own rows, and the result never depends on which worker
runs it, when, or how the clips were cut into shards.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

ANCHOR_BLOCK = 1024  # anchors drawn by one generator
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Pair:
    """One planned pair of frame numbers in a clip (the dataset's own numbering)."""

    t0: int  # frame number of I_t
    t1: int  # frame number of I_{t+δ}
    delta: int  # t1 - t0, in frames


def parse_delta(text: str) -> tuple[int, int]:
    """'5:11' → (5, 11); '7' → (7, 7). Raises ValueError on anything else or when not 1 ≤ lo ≤ hi."""
    parts = text.split(":")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"expected LO:HI frame counts like 5:11, got {text!r}")
    lo, hi = int(parts[0]), int(parts[-1])
    if not 1 <= lo <= hi:
        raise ValueError(f"need 1 <= LO <= HI, got {text!r}")
    return lo, hi


def clip_seed(seed: int, clip_key: str) -> int:
    """A 64-bit seed for one clip, stable across processes and Python versions (unlike hash())."""
    digest = hashlib.sha256(f"{seed}:{clip_key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def anchor_count(first: int, last: int, delta: tuple[int, int], stride: int = 1) -> int:
    """Anchors t0 = first, first + stride, … with at least delta[0] frames after them in first..last."""
    room = last - delta[0] - first
    return room // stride + 1 if room >= 0 else 0


def pairs_in(first: int, last: int, clip_key: str, lo: int, hi: int, *, delta: tuple[int, int] = (5, 11),
             pairs_per_frame: int = 1, stride: int = 1, seed: int = 0) -> list[Pair]:
    """Pairs number lo..hi-1 of the clip whose frame numbers run first..last, δ uniform in `delta`.

    Near the end of the clip δ is drawn from [lo, min(hi, last - t0)]. t1 = t0 + δ counts frame numbers and anchors
    run over first..last, so a frame missing from a folder shows up as pairs whose t0 (or t1) has no file, never as a
    silently longer δ.
    """
    d_lo, d_hi = delta
    pairs: list[Pair] = []
    a0, a1 = lo // pairs_per_frame, -(-hi // pairs_per_frame)  # anchors touched by rows lo..hi-1
    for block in range(a0 // ANCHOR_BLOCK, (a1 - 1) // ANCHOR_BLOCK + 1 if a1 > a0 else 0):
        start = block * ANCHOR_BLOCK
        t0 = first + stride * np.arange(start, min(start + ANCHOR_BLOCK, anchor_count(first, last, delta, stride)))
        rng = np.random.default_rng([seed, clip_seed(0, clip_key), block])
        draws = rng.integers(d_lo, np.minimum(d_hi, last - t0)[:, None] + 1, size=(len(t0), pairs_per_frame))
        for k, (t, row) in enumerate(zip(t0.tolist(), draws.tolist())):
            for j, d in enumerate(row):
                if lo <= (start + k) * pairs_per_frame + j < hi:
                    pairs.append(Pair(t, t + d, d))
    return pairs


def plan_pairs(first: int, last: int, clip_key: str, *, delta: tuple[int, int] = (5, 11), pairs_per_frame: int = 1,
               stride: int = 1, seed: int = 0) -> list[Pair]:
    """Every pair of the clip (see `pairs_in`); an empty list means the clip is shorter than the smallest δ."""
    count = anchor_count(first, last, delta, stride) * pairs_per_frame
    return pairs_in(first, last, clip_key, 0, count, delta=delta, pairs_per_frame=pairs_per_frame, stride=stride,
                    seed=seed)


def sample_key(index: int, *parts: object) -> str:
    """A WebDataset key without dots: the global row index (unique, sortable) then a readable slug of `parts`."""
    slug = _UNSAFE.sub("_", "_".join(str(p) for p in parts)).strip("_")
    return f"{index:09d}-{slug}"
