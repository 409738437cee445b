"""The `pair` view: (onset, apex) frames, (2, C, H, W); in training optionally jittered as FaceSleuth draws them.

FaceSleuth (CVA/FPF; arXiv 2506.02695; its CASME II script `CASME2_5.py` in github Svardfox/FaceSleuth) trains on an
onset drawn uniformly from onset..onset + ⌊0.15·L/4⌋ and an apex from apex − ⌊0.15·L/4⌋..apex, L = apex − onset, and
tests on the annotated pair: `jitter=0.0375` (= 0.15 / 4) is that recipe. We draw among the frames the shard stores
(the nearest stored frame; every frame with the default `--frames 0`), with numpy's generator instead of `random`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_data.views.base import StoredSample, View, frame_array, require


@dataclass(frozen=True)
class Pair(View):
    """(onset, apex) as float32 (2, C, H, W) in [0, 1]."""

    name = "pair"
    color: bool = True  # RGB (C = 3) or grayscale (C = 1)
    size: int = 0  # output side in px (0 = the shard's)
    jitter: float = 0.0  # training only: fraction of onset→apex within which onset and apex are drawn (0 = fixed)

    def check(self) -> None:
        require(self, 0 <= self.size <= 4096, "size", "0 (as stored) or a side in px up to 4096")
        require(self, 0.0 <= self.jitter <= 0.5, "jitter", "a fraction within 0..0.5")

    def frames_used(self, sample: StoredSample, rng: np.random.Generator | None) -> list[int]:
        onset, apex = sample.onset, sample.apex
        if rng is None or self.jitter == 0:
            return [onset, apex]
        reach = int(self.jitter * (apex - onset))  # frames
        return [sample.nearest(int(rng.integers(onset, onset + reach + 1))),
                sample.nearest(int(rng.integers(apex - reach, apex + 1)))]

    def render(self, sample: StoredSample, numbers: list[int]) -> np.ndarray:
        return np.stack([frame_array(sample, n, self.color, self.size) for n in numbers])
