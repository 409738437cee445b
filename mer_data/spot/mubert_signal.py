"""The μ-BERT micro-movement signal as a spotter: how much diag(Â) changes between frames t and t+k, per frame.

The paper (Nguyen et al., CVPR 2023, Fig. 7) shows diag(Â), the attention of each patch of I_{t+δ} to the same patch of
I_t, dropping where the face moves. `mubert/maps.py` computes it for one pair; here every window (t, t+k) of the
tracked, aligned RGB face at the model's input size gets the score mean over patches of
|diag(Â)(t → t+k) − diag(Â)(t → t)| (the "change" map of maps.py: the frame compared with itself removes what
diag(Â) owes to the face's appearance), and intervals are picked as SOFTNet's are (smoothed over k, threshold
mean + p·(max − mean), peaks k apart, the window's middle ± k). Whether this localises movements is what it measures;
it is training-free given a pretrained checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_data.spot.features import VideoFeatures
from mer_data.spot.peaks import Interval, moving_average, peak_intervals, relative_threshold


@dataclass(frozen=True)
class MuBertSignalConfig:
    """μ-BERT spotter settings."""

    checkpoint: str = ""  # a mer-train checkpoint (.pt or .safetensors) with DMA
    k_s: float = 0.2  # frames compared, in seconds apart
    k: int = 0  # the same in frames; 0 = round(k_s · fps)
    p: float = 0.55  # peak threshold = mean + p·(max − mean) of the smoothed signal

    def frames(self, fps: float) -> int:
        return self.k if self.k > 0 else max(1, round(self.k_s * fps))


class MuBertExtractor:
    """Windows (t, t+k) of RGB faces at the model's size → mean |diag(Â)(t→t+k) − diag(Â)(t→t)|."""

    gray, width = False, 1

    def __init__(self, cfg: MuBertSignalConfig, fps: float, model=None):
        from mubert.maps import load_backbone

        self.model = model if model is not None else load_backbone(Path(cfg.checkpoint))
        self.k = cfg.frames(fps)
        self.offsets, self.size = (0, self.k), self.model.cfg.image_size

    def __call__(self, faces: list[np.ndarray]) -> np.ndarray:
        from mubert.maps import compute_maps

        return np.array([compute_maps(self.model, faces[0], faces[1])["change"].mean()], np.float32)


def spot(feats: VideoFeatures, cfg: MuBertSignalConfig) -> list[Interval]:
    """Intervals of one video from its signal (MuBertExtractor's features)."""
    k = cfg.frames(feats.fps)
    smooth = moving_average(feats.values[:, 0].astype(np.float64), feats.valid, k)
    ok = feats.valid & np.isfinite(smooth)
    return peak_intervals(smooth, feats.frames + k // 2, ok, relative_threshold(smooth, ok, cfg.p), k, k)
