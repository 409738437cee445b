"""The `dynamic` view: a dynamic image by approximate rank pooling over T frames, (C, H, W).

Bilen et al., "Dynamic image networks for action recognition" (CVPR 2016), approximate rank pooling: frames
x_1..x_T (t = 1 first) are summed with weights α_t = 2(T − t + 1) − (T + 1)(H_T − H_{t−1}), H_t = Σ_{i≤t} 1/i,
H_0 = 0. The weights sum to zero, so a still sequence gives a zero image. FDP (github CYF-cuber/FDP) builds its
target from T = 8 uniformly sampled 64×64 grayscale frames: `make_view("dynamic", frames=8, color=False, size=64)`.
`scale="minmax"` maps the image to [0, 1] as the dynamic-image code does before display or a CNN (a zero image stays
zero); "raw" keeps the weighted sum of frames in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_data.views.base import StoredSample, require
from mer_data.views.sequence import Sequence


def rank_pool_weights(count: int) -> np.ndarray:
    """α_1..α_T (float64, (T,)) of approximate rank pooling, see the module docstring."""
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, count + 1))])  # H_0..H_T
    t = np.arange(1, count + 1)
    return 2.0 * (count - t + 1) - (count + 1) * (harmonic[count] - harmonic[t - 1])


@dataclass(frozen=True)
class Dynamic(Sequence):
    """The dynamic image of the `sequence` view's T frames (spread over onset..offset), float32 (C, H, W)."""

    name = "dynamic"
    scale: str = "raw"  # "raw" (the weighted sum) or "minmax" (mapped to [0, 1])

    def check(self) -> None:
        super().check()
        require(self, self.scale in ("raw", "minmax"), "scale", "raw or minmax")

    def render(self, sample: StoredSample, numbers: list[int]) -> np.ndarray:
        stack = super().render(sample, numbers)  # (T, C, H, W)
        image = np.tensordot(rank_pool_weights(len(numbers)), stack, axes=1).astype(np.float32)  # (C, H, W)
        if self.scale == "minmax":
            span = float(image.max() - image.min())
            image = (image - image.min()) / span if span > 0 else np.zeros_like(image)
        return image
