"""The `sequence` view: T frames spread uniformly over onset..offset, (T, C, H, W).

FDP (Shao et al.; github CYF-cuber/FDP, data.py) samples T = 8 frames uniformly over the clip, grayscale at 64×64:
`make_view("sequence", frames=8, color=False, size=64)`. We spread them over the annotated onset..offset (the stored
expression), taking the stored frame nearest each of the T uniform positions (every frame is stored by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_data.views.base import StoredSample, View, frame_array, require, uniform_numbers


@dataclass(frozen=True)
class Sequence(View):
    """T frames as float32 (T, C, H, W) in [0, 1]."""

    name = "sequence"
    frames: int = 8  # T, frames taken (onset and offset included)
    color: bool = True  # RGB (C = 3) or grayscale (C = 1)
    size: int = 0  # output side in px (0 = the shard's)

    def check(self) -> None:
        require(self, 2 <= self.frames <= 512, "frames", "2..512")
        require(self, 0 <= self.size <= 4096, "size", "0 (as stored) or a side in px up to 4096")

    def frames_used(self, sample: StoredSample, rng: np.random.Generator | None) -> list[int]:
        return [sample.nearest(n) for n in uniform_numbers(sample.onset, sample.end, self.frames)]

    def render(self, sample: StoredSample, numbers: list[int]) -> np.ndarray:
        return np.stack([frame_array(sample, n, self.color, self.size) for n in numbers])
