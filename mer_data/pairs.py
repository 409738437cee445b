"""Pair planning: which (I_t, I_{t+δ}) frame pairs a clip contributes, with δ drawn from a per-clip seeded generator.

The draws depend only on (seed, clip key, the clip's frame numbers, the options), never on which worker runs the clip or
when, so the global pair sequence — and hence shard assignment — is reproducible.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

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


def plan_pairs(numbers: list[int], clip_key: str, *, delta: tuple[int, int] = (5, 11), pairs_per_frame: int = 1,
               stride: int = 1, seed: int = 0) -> list[Pair]:
    """Pairs anchored on every `stride`-th frame number of the clip, `pairs_per_frame` draws each, δ uniform in `delta`.

    Near the end of the clip δ is drawn from [lo, min(hi, last - t0)], and anchors with less than `lo` frames after
    them contribute nothing; an empty list therefore means the clip is shorter than δ. t1 = t0 + δ counts frame
    numbers and anchors run over first..last, so a frame missing from the sequence shows up as pairs whose t0 (or t1)
    has no file, never as a silently longer δ.
    """
    if not numbers:
        return []
    lo, hi = delta
    rng = np.random.default_rng(clip_seed(seed, clip_key))
    last = numbers[-1]
    pairs = []
    for t0 in range(numbers[0], last + 1, stride):  # by number, so a frame missing mid-clip is an anchor that fails
        top = min(hi, last - t0)
        if top < lo:
            break  # every later anchor has even less room
        for d in rng.integers(lo, top + 1, size=pairs_per_frame):
            pairs.append(Pair(t0, t0 + int(d), int(d)))
    return pairs


def sample_key(index: int, *parts: object) -> str:
    """A WebDataset key without dots: the global row index (unique, sortable) then a readable slug of `parts`."""
    slug = _UNSAFE.sub("_", "_".join(str(p) for p in parts)).strip("_")
    return f"{index:09d}-{slug}"
