"""The SOFTNet-style spotter: pseudo-labels worked out by hand, and LOSO training that finds a planted movement in
the held-out subject's video from features alone (no decoding)."""

from __future__ import annotations

import numpy as np
import pytest

from mer_data.spot.features import VideoFeatures
from mer_data.spot.softnet import SIDE, SoftNet, SoftNetConfig, loso, pseudo_labels


def test_pseudo_labels_are_the_window_fraction_inside_an_interval():
    labels = pseudo_labels(np.arange(11), 4, [(3, 5)])
    # window [0, 4] holds frames 3, 4 of 3..5 → 2/5; [1, 5] and [2, 6] and [3, 7] hold all three → 3/5; [6, 10] none
    assert labels[[0, 1, 3, 4, 5, 6]] == pytest.approx([0.4, 0.6, 0.6, 0.4, 0.2, 0.0])


def test_network_scores_one_value_per_window():
    import torch

    assert SoftNet()(torch.zeros(5, 3, SIDE, SIDE)).shape == (5,)


def _video(rng: np.random.Generator, start: int, gap: slice) -> VideoFeatures:
    values = rng.normal(0, 0.05, (120, 3 * SIDE * SIDE)).astype(np.float32)
    values[start: start + 8] += 1.0  # the flow of a movement in these windows
    valid = np.ones(120, bool)
    valid[gap] = False
    values[gap] = np.nan
    return VideoFeatures(np.arange(120), values, valid, 30.0)


def test_loso_finds_the_held_out_movement_and_skips_gaps():
    rng = np.random.default_rng(0)
    videos = {"a": ("s1", _video(rng, 30, slice(100, 110))), "b": ("s2", _video(rng, 70, slice(10, 20))),
              "c": ("s3", _video(rng, 50, slice(0, 0)))}
    labels = {"a": [(30, 41)], "b": [(70, 81)], "c": [(50, 61)]}
    found = loso(videos, labels, SoftNetConfig(k=4, epochs=8, p=0.5))
    for video, (a, b) in [(v, iv[0]) for v, iv in labels.items()]:
        assert any(x <= (a + b) // 2 <= y for x, y, _ in found[video]), (video, found[video])
    assert all(not (x <= 19 and y >= 10) for x, y, _ in found["b"])  # nothing spans b's lost windows
