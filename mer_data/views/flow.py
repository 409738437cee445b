"""The `flow` view: TV-L1 optical flow between two frames of a sample with optical strain and magnitude, (C, H, W).

Recipes, one option each (defaults: onset→apex, u v strain magnitude, forward-difference strain, raw floats, the
shard's side):
- STSTNet (Liong et al., 2019) and HTNet (Wang et al., 2024): u, v and strain of onset→apex TV-L1 at 28×28:
  `make_view("flow", channels="uvs", size=28)`; OFF-ApexNet: `channels="uv"`.
- SOFTNet / MEAN (spotting): cv2 DualTVL1 on 128×128 faces, the nose region's motion subtracted:
  `channels="uvs", compute=128, size=128, nose=True`.
- 8-bit flow images (as flow is often saved to disk): `norm="clip15"`, each channel clipped to ±15 px and
  quantised to 256 levels, returned as level / 255; `norm="minmax"` maps each channel to [0, 1].
The flow is computed on the gray frames at `compute` px (0 = as stored: the ingest side), in px of that side, then
each channel is resized to `size`. Where we differ: the references crop and align per frame with landmarks and
compute the flow on their own crop; ours is computed on the shard's frames, which share one alignment matrix per
sample (nothing but the face moves between them). Any pair (i, i+k) of the sample: `start` frames after the onset,
`gap` frames on (0 = to the apex). Onset→apex at the stored side with `--views flow` at ingest reads the flow stored
then (computed before JPEG encoding) instead of computing it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_data.flow import STRAIN_METHODS, magnitude, remove_head_motion, strain, tvl1
from mer_data.views.base import StoredSample, View, require, resize

NORMS = ("raw", "minmax", "clip15")
CLIP_PX = 15.0  # the ±15 px bound of 8-bit flow images


@dataclass(frozen=True)
class Flow(View):
    """Flow channels of one frame pair, float32 (C, H, W), C = len(channels)."""

    name = "flow"
    channels: str = "uvsm"  # which channels, in this order: u, v, s (optical strain), m (flow magnitude)
    strain: str = "forward"  # strain derivatives: "forward" differences or "sobel"
    norm: str = "raw"  # "raw" px, per-channel "minmax" to [0, 1], or "clip15" (±15 px to 8 bit, / 255)
    size: int = 0  # output side in px (0 = the compute side); the literature uses 28, 42, 128, 224
    compute: int = 0  # side the flow is computed at (0 = the shard's frames as stored)
    nose: bool = False  # subtract the nose region's mean flow (global head motion, as SOFTNet does)
    start: int = 0  # first frame: this many frames after the onset
    gap: int = 0  # second frame: this many frames after the first (0 = the apex)

    def check(self) -> None:
        require(self, bool(self.channels) and set(self.channels) <= set("uvsm")
                and len(set(self.channels)) == len(self.channels), "channels", "distinct letters of u, v, s, m")
        require(self, self.strain in STRAIN_METHODS, "strain", " or ".join(STRAIN_METHODS))
        require(self, self.norm in NORMS, "norm", ", ".join(NORMS))
        require(self, 0 <= self.size <= 4096, "size", "0 or a side in px up to 4096")
        require(self, self.compute == 0 or 8 <= self.compute <= 4096, "compute", "0 or a side in px 8..4096")
        require(self, self.start >= 0, "start", "frames >= 0")
        require(self, self.gap >= 0, "gap", "frames >= 0 (0 = to the apex)")

    def frames_used(self, sample: StoredSample, rng: np.random.Generator | None) -> list[int]:
        first = sample.nearest(sample.onset + self.start)
        return [first, sample.apex if self.gap == 0 else sample.nearest(first + self.gap)]

    def motion(self, sample: StoredSample, numbers: list[int]) -> np.ndarray:
        """(2, H, W) flow u, v between the two frames, stored or computed, at the compute side."""
        a, b = numbers
        stored = sample.flow is not None and (a, b) == (sample.onset, sample.apex)
        if stored and self.compute in (0, sample.flow.shape[1]):
            return sample.flow
        return tvl1(resize(sample.image(a, False), self.compute), resize(sample.image(b, False), self.compute))

    def render(self, sample: StoredSample, numbers: list[int]) -> np.ndarray:
        flow = self.motion(sample, numbers)
        if self.nose:
            flow = remove_head_motion(flow)
        u, v = flow
        parts = {"u": lambda: u, "v": lambda: v, "s": lambda: strain(u, v, self.strain), "m": lambda: magnitude(u, v)}
        out = np.stack([resize(np.ascontiguousarray(parts[c](), dtype=np.float32), self.size) for c in self.channels])
        return normalise(out, self.norm)


def normalise(channels: np.ndarray, norm: str) -> np.ndarray:
    """(C, H, W) float channels → raw, per-channel min-max to [0, 1] (a flat channel → 0), or clipped ±15 px and
    quantised to 8 bit (level / 255, so 0 px maps to 128 / 255)."""
    if norm == "raw":
        return channels.astype(np.float32)
    if norm == "minmax":
        lo = channels.min(axis=(1, 2), keepdims=True)
        span = channels.max(axis=(1, 2), keepdims=True) - lo
        return np.where(span > 0, (channels - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)
    levels = np.rint((np.clip(channels, -CLIP_PX, CLIP_PX) + CLIP_PX) / (2 * CLIP_PX) * 255)
    return (levels / 255).astype(np.float32)
