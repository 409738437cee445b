"""The `diff` view: apex − onset, (C, H, W) in [−1, 1], the input MMNet's motion branch takes (Li et al., 2022)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_data.views.base import StoredSample, View, frame_array, require


@dataclass(frozen=True)
class Diff(View):
    """The apex frame minus the onset frame, float32 (C, H, W)."""

    name = "diff"
    color: bool = True  # RGB (C = 3) or grayscale (C = 1)
    size: int = 0  # output side in px (0 = the shard's)

    def check(self) -> None:
        require(self, 0 <= self.size <= 4096, "size", "0 (as stored) or a side in px up to 4096")

    def frames_used(self, sample: StoredSample, rng: np.random.Generator | None) -> list[int]:
        return [sample.onset, sample.apex]

    def render(self, sample: StoredSample, numbers: list[int]) -> np.ndarray:
        onset, apex = (frame_array(sample, n, self.color, self.size) for n in numbers)
        return apex - onset
