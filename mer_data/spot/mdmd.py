"""The MDMD baseline (main directional maximal difference, Wang et al. 2017), as the MEGC2020 spotting baseline runs it.

Reference: github HeyingGithub/Baseline-project-for-MEGC2020_spotting, `MDMD_codes/MDMD.m` (the feature) and
`MDMD_codes/cmd.m` (k per dataset, the contrast and the threshold sweep). For frame t with head t−k and tail t+k:
flows F1 = flow(t−k → t) and F2 = flow(t−k → t+k) on the aligned gray face cut into blocks×blocks blocks; in each block,
the angle atan(u/v) in degrees sorts vectors into four ranges ([0, 90), [90, 180), [−180, −90), [−90, 0)), the range
holding most vectors is the main direction, and the block's value is the mean of the largest third of |F1| − |F2| over
its vectors; the frame's value F(t) is the mean of the largest third of the block values. The contrast
C(t) = F(t) − (F(t−m) + F(t+m))/2 with m = k − 1 is thresholded at mean + p·(max − mean) over the video, and each run
of frames above it is a predicted interval.

Where we differ: the flow is cv2 DualTVL1 (or Farneback) on our tracked, aligned face, not RLOF on the authors'
crops; the reference's atan (not atan2) leaves the middle two ranges empty except for v = 0, and we keep that; a block
with no flow vector scores 0 (the reference would take a mean of nothing); the reference sweeps p over 0.01..0.99 and
reports each, we spot at one p (`MDMDConfig.p`); by default each peak of C above the threshold becomes the interval
peak ± k (`intervals="peaks"`, ours: the reference's runs above the threshold are a few frames long, far below IoU 0.5
with a real interval; `intervals="runs"` gives them); windows that leave the tracked face are gaps, and neither F nor C is
computed across one (the reference has no tracking and no gaps). k comes from seconds (the reference's 12 frames at
30 fps and 80 at 200 fps are 0.4 s for micro; 39 and 260 are 1.3 s for macro) unless given in frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_data.spot.features import VideoFeatures, compute_flow
from mer_data.spot.peaks import Interval, peak_intervals, relative_threshold, runs_above


@dataclass(frozen=True)
class MDMDConfig:
    """MDMD settings."""

    k_s: float = 0.4  # head/tail distance in seconds (0.4: micro, 1.3: macro, as the reference's k)
    k: int = 0  # head/tail distance in frames; 0 = round(k_s · fps)
    blocks: int = 6  # the face is cut into blocks × blocks (the reference's 6)
    p: float = 0.35  # threshold = mean + p·(max − mean) of the contrast (0.3-0.4 best on the synthetic videos)
    size: int = 64  # aligned face side, px
    flow: str = "tvl1"  # "tvl1" | "farneback"
    intervals: str = "peaks"  # "runs": each run above the threshold (the reference) | "peaks": each peak ± k (ours)

    def __post_init__(self) -> None:
        if self.intervals not in ("runs", "peaks"):
            raise ValueError(f"intervals must be 'runs' or 'peaks', got {self.intervals!r}")

    def frames(self, fps: float) -> int:
        """k in frames for a video at `fps`."""
        return self.k if self.k > 0 else max(1, round(self.k_s * fps))


def _round(x: float) -> int:
    """MATLAB's round: halves away from zero (numpy rounds them to even)."""
    return int(np.floor(x + 0.5))


def block_value(f1: np.ndarray, f2: np.ndarray) -> float:
    """One block's MDMD value from its vectors F1 (n, 2) and F2 (n, 2) (see the module docstring)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.degrees(np.arctan(f1[:, 0] / f1[:, 1]))
    bins = [(theta >= 0) & (theta < 90), (theta >= 90) & (theta < 180), (theta >= -180) & (theta < -90),
            (theta >= -90) & (theta < 0)]
    main = bins[int(np.argmax([b.sum() for b in bins]))]  # argmax takes the first of equal counts, as max does
    if not main.any():
        return 0.0
    r = np.sort(np.hypot(*f1[main].T) - np.hypot(*f2[main].T))[::-1]
    return float(r[: _round(main.sum() / 3)].mean()) if _round(main.sum() / 3) else 0.0


def mdmd_value(f1: np.ndarray, f2: np.ndarray, blocks: int) -> float:
    """F(t) from the flows (H, W, 2) head→current and head→tail: the mean of the largest third of the block values."""
    h, w = f1.shape[0] // blocks, f1.shape[1] // blocks
    values = [block_value(f1[r * h:(r + 1) * h, c * w:(c + 1) * w].reshape(-1, 2),
                          f2[r * h:(r + 1) * h, c * w:(c + 1) * w].reshape(-1, 2))
              for r in range(blocks) for c in range(blocks)]
    return float(np.mean(np.sort(values)[::-1][: _round(blocks * blocks / 3)]))


class MDMDExtractor:
    """Windows (t−k, t, t+k) of gray faces → F(t)."""

    gray, width = True, 1

    def __init__(self, cfg: MDMDConfig, fps: float):
        self.cfg, self.k = cfg, cfg.frames(fps)
        self.offsets, self.size = (-self.k, 0, self.k), cfg.size

    def __call__(self, faces: list[np.ndarray]) -> np.ndarray:
        head, current, tail = faces
        f1 = compute_flow(head, current, self.cfg.flow)
        f2 = compute_flow(head, tail, self.cfg.flow)
        return np.array([mdmd_value(f1, f2, self.cfg.blocks)], np.float32)


def contrast(f: np.ndarray, valid: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """C(t) = F(t) − (F(t−m) + F(t+m))/2 row by row, and where it is defined (all three rows valid)."""
    c, ok = np.full(f.shape, np.nan), np.zeros(f.shape, bool)
    if m < 1 or f.size <= 2 * m:
        return c, ok
    mid = slice(m, f.size - m)
    c[mid] = f[mid] - (f[: f.size - 2 * m] + f[2 * m:]) / 2
    ok[mid] = valid[mid] & valid[: f.size - 2 * m] & valid[2 * m:]
    c[~ok] = np.nan
    return c, ok


def spot_mdmd(features: VideoFeatures, cfg: MDMDConfig) -> list[Interval]:
    """Intervals of one video from its F(t) (MDMDExtractor's features): runs of the contrast above the threshold."""
    k = cfg.frames(features.fps)
    c, ok = contrast(features.values[:, 0].astype(np.float64), features.valid, k - 1)
    threshold = relative_threshold(c, ok, cfg.p)
    if cfg.intervals == "runs":
        return runs_above(c, features.frames, ok, threshold)
    return peak_intervals(c, features.frames, ok, threshold, half=k, distance=k)
