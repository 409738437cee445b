"""From a per-frame score with gaps to scored intervals: thresholds, runs above them, peaks, never across a gap."""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

Interval = tuple[int, int, float]  # (onset frame, offset frame, score), inclusive


def segments(valid: np.ndarray) -> list[tuple[int, int]]:
    """Runs (i, j) of consecutive True rows, inclusive row indices."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def relative_threshold(score: np.ndarray, valid: np.ndarray, p: float) -> float:
    """mean + p·(max − mean) of the valid scores (the MEGC baselines' and SOFTNet's threshold); inf when none."""
    values = score[valid & np.isfinite(score)]
    if values.size == 0:
        return float("inf")
    mean = float(values.mean())
    return mean + p * (float(values.max()) - mean)


def moving_average(score: np.ndarray, valid: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over `width` rows within each valid segment (shrinking at its ends); gaps stay NaN."""
    out = np.full(score.shape, np.nan, np.float64)
    half = max(0, width // 2)
    for i, j in segments(valid):
        seg = np.nan_to_num(score[i: j + 1].astype(np.float64))
        sums = np.concatenate([[0.0], np.cumsum(seg)])
        idx = np.arange(seg.size)
        lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, seg.size)
        out[i: j + 1] = (sums[hi] - sums[lo]) / (hi - lo)
    return out


def runs_above(score: np.ndarray, frames: np.ndarray, valid: np.ndarray, threshold: float) -> list[Interval]:
    """Each run of consecutive valid frames scoring above `threshold` as (first, last, max score in the run)."""
    above = valid & np.isfinite(score) & (score > threshold)
    return [(int(frames[i]), int(frames[j]), float(score[i: j + 1].max())) for i, j in segments(above)]


def peak_intervals(score: np.ndarray, frames: np.ndarray, valid: np.ndarray, threshold: float, half: int,
                   distance: int) -> list[Interval]:
    """Peaks of `score` above `threshold`, at least `distance` rows apart, each as the interval peak ± half frames
    (clipped to its valid segment), scored by the peak's value; found in each valid segment on its own."""
    out = []
    for i, j in segments(valid & np.isfinite(score)):
        seg = score[i: j + 1]
        peaks, _ = find_peaks(np.concatenate([[-np.inf], seg, [-np.inf]]), height=threshold,
                              distance=max(1, distance))
        for k in peaks - 1:  # the padding lets a peak sit on a segment's first or last row
            a, b = max(i, i + k - half), min(j, i + k + half)
            out.append((int(frames[a]), int(frames[b]), float(seg[k])))
    return out
