"""The face track on synthetic detection sequences: sparse, densified where needed, robust, cut, lost, local."""

import numpy as np
import pytest

from mer_data.align import Face, apply
from mer_data.pair_align import deviation_px, leaf_blocks, span_matrix, template, top_block
from mer_data.track import LOST, TrackConfig, analyse, change_px, observe, schedule

FPS = 30.0
CFG = TrackConfig()
EYE_GAP = 45.0  # source px between the eyes: 1 source px ≈ 1.5 aligned px


def face_at(x: float, y: float, score: float = 0.9, angle: float = 0.0, gap: float = EYE_GAP) -> Face:
    dx, dy = gap / 2 * np.cos(angle), gap / 2 * np.sin(angle)
    return Face(score, (x - 40, y - 30, 80, 100), (x - dx, y - dy), (x + dx, y + dy))


class Clip:
    """A detector over a scripted clip: truth(n) -> (x, y), with per-frame noise, gaps, outliers and cuts."""

    def __init__(self, truth, noise=0.0, absent=(), outliers=(), low=(), seed=0):
        self.truth, self.absent, self.outliers, self.low = truth, set(absent), set(outliers), set(low)
        self.noise = np.random.default_rng(seed).normal(0, noise, size=(10_000, 2))
        self.calls: list[int] = []

    def __call__(self, n: int) -> Face | None:
        self.calls.append(n)
        if n in self.absent:
            return None
        x, y = self.truth(n)
        if n in self.outliers:
            x += 25.0  # a bad detection: 37 aligned px off
        return face_at(x + self.noise[n, 0], y + self.noise[n, 1], 0.4 if n in self.low else 0.9)


def track(clip: Clip, first: int, last: int, lo: int | None = None, hi: int | None = None):
    lo, hi = first if lo is None else lo, last if hi is None else hi
    m = CFG.margin(FPS)
    obs = observe(clip, schedule(first, last, CFG.step(FPS), lo - m, hi + m), CFG)
    return analyse(obs, lo, hi, CFG, FPS)


def test_schedule_is_a_grid_plus_the_last_frame():
    assert schedule(0, 100, 8, 0, 100) == list(range(0, 100, 8)) + [100]
    assert schedule(5, 100, 8, 30, 50) == [29, 37, 45, 53]  # the grid points enclosing 30..50
    assert schedule(0, 20, 8, 0, 20) == [0, 8, 16, 20]


def test_still_face_sparse_detections_one_matrix_per_block():
    clip = Clip(lambda n: (160.0, 100.0), noise=0.4)
    tw = track(clip, 0, 299)
    assert len(set(clip.calls)) <= 300 // CFG.step(FPS) + 8  # detect_hz detections a second, few extra
    assert (tw.shot != LOST).all() and not tw.cuts
    observed = sorted(set(clip.calls))
    raw = np.sqrt(np.mean(clip.noise[observed, 0] ** 2))  # the detections' own error
    smoothed = np.sqrt(np.mean((tw.eyes[:, 0, 0] - (160.0 - EYE_GAP / 2)) ** 2))
    assert smoothed < 0.85 * raw  # a linear fit over ±0.5 s averages the jitter down
    block = CFG.block(FPS)
    lo, hi = top_block(0, 299, 70, block)
    assert (lo, hi) == (block, 2 * block - 1)
    assert len(leaf_blocks(tw, lo, hi, CFG)) == 1


def test_drift_is_followed_without_lag_and_blocks_shorten():
    clip = Clip(lambda n: (100.0 + 0.6 * n, 100.0 + 0.2 * n))  # 18 px/s: about 27 aligned px a second
    tw = track(clip, 0, 299)
    truth = np.array([[100.0 + 0.6 * n, 100.0 + 0.2 * n] for n in range(300)])
    assert np.abs(tw.eyes.mean(axis=1) - truth).max() < 0.05  # a linear fit follows a linear drift exactly
    pieces = leaf_blocks(tw, 64, 127, CFG)
    assert len(pieces) > 4 and all(m is not None for _, _, m in pieces)
    for a, b, m in pieces:
        assert deviation_px(m, tw.eyes[a: b + 1], 224) <= CFG.tolerance_px or a == b


def test_one_bad_detection_does_not_bend_the_track():
    clip = Clip(lambda n: (160.0, 100.0), outliers={80})  # 80 is a scheduled frame
    tw = track(clip, 0, 299)
    assert (tw.shot != LOST).all() and not tw.cuts
    assert np.abs(tw.eyes[70:90, :, 0] - np.array([160 - EYE_GAP / 2, 160 + EYE_GAP / 2])).max() < 1e-6
    assert {79, 81} <= set(clip.calls)  # bisection looked next to it before dropping it


def test_absent_face_is_found_to_the_frame_and_pairs_touching_it_are_lost():
    clip = Clip(lambda n: (160.0, 100.0), absent=range(101, 131))
    tw = track(clip, 0, 299)
    lost = np.flatnonzero(tw.shot == LOST)
    assert (lost[0], lost[-1], lost.size) == (101, 130, 30)
    assert tw.lost_reason(95, 102) == "no face tracked in frames 101..102 (pair 95->102)"
    assert tw.lost_reason(90, 100) == "" and tw.lost_reason(131, 140) == ""
    assert tw.shot[100] != tw.shot[131]  # a face reappearing after a gap starts a new shot


def test_cut_is_a_new_shot_found_to_the_frame():
    clip = Clip(lambda n: (100.0, 100.0) if n < 203 else (220.0, 130.0))
    tw = track(clip, 0, 299)
    assert tw.cuts == [203] and (tw.shot != LOST).all()
    assert tw.lost_reason(198, 205) == "cut between frames 202 and 203 (pair 198->205)"
    assert np.abs(tw.eyes[203:, 0] - [220 - EYE_GAP / 2, 130]).max() < 1e-6  # no smoothing across the cut


def test_two_bad_detections_in_a_row_are_a_lost_blip_not_a_face():
    clip = Clip(lambda n: (160.0, 100.0), outliers={80, 81})
    tw = track(clip, 0, 299)
    assert list(np.flatnonzero(tw.shot == LOST)) == [80, 81]


def test_weak_face_counts_only_next_to_a_confident_one():
    weak_everywhere = Clip(lambda n: (160.0, 100.0), low=range(300))
    assert (track(weak_everywhere, 0, 99).shot == LOST).all()
    weak_once = Clip(lambda n: (160.0, 100.0), low={40})
    assert (track(weak_once, 0, 99).shot != LOST).all()


@pytest.mark.parametrize("lo,hi", [(0, 63), (64, 127), (100, 180), (250, 299)])
def test_a_window_gives_the_track_of_the_whole_clip(lo, hi):
    truth = lambda n: (120.0 + 40 * np.sin(n / 30.0), 100.0 + 0.3 * n)  # noqa: E731
    make = lambda: Clip(truth, noise=0.5, absent=range(140, 152), outliers={48}, seed=3)  # noqa: E731
    whole, part = track(make(), 0, 299), track(make(), 0, 299, lo, hi)
    np.testing.assert_array_equal(part.eyes, whole.eyes[lo: hi + 1])
    same = whole.shot[lo: hi + 1]
    np.testing.assert_array_equal(part.shot == LOST, same == LOST)
    np.testing.assert_array_equal(np.diff(part.shot) != 0, np.diff(same) != 0)
    b = top_block(0, 299, max(lo, 64), CFG.block(FPS))
    if lo <= b[0] and b[1] <= hi:
        assert [p[:2] for p in leaf_blocks(part, *b, CFG)] == [p[:2] for p in leaf_blocks(whole, *b, CFG)]


def test_span_matrix_puts_the_mean_eyes_on_the_template():
    clip = Clip(lambda n: (160.0 + 0.1 * n, 100.0))
    tw = track(clip, 0, 99)
    m, reason = span_matrix(tw, 20, 31, CFG)
    assert reason == ""
    mid = tw.eyes[20:32].mean(axis=0)
    np.testing.assert_allclose(apply(m, mid), template(224), atol=1e-3)
    step = CFG.step(FPS)
    covered = track(Clip(lambda n: (160.0, 100.0), absent=range(2 * step - 2, 2 * step + 3)), 0, 99)  # holds 2·step
    assert span_matrix(covered, 15, 31, CFG) == (None, f"no face tracked in frames {2 * step - 2}..{2 * step + 2} "
                                                       "(pair 15->31)")


def test_change_px_is_in_aligned_pixels():
    a, b = face_at(100, 100), face_at(100 + EYE_GAP / 10, 100)  # a tenth of the eye distance
    assert change_px(a, b) == pytest.approx(0.1 * 0.30 * 224)
    assert change_px(a, face_at(100, 100, gap=EYE_GAP * 1.1)) == pytest.approx(0.05 * 0.30 * 224, rel=0.06)


def test_lost_reason_is_empty_exactly_for_one_tracked_shot():
    """`lost_reason` answers tracked pairs from run starts; over random shot sequences (lost stretches, cuts, a shot
    id seen again after a lost stretch) it is '' exactly when every frame of t0..t1 has the same shot id, not LOST."""
    from mer_data.track import TrackWindow

    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(2, 40))
        shot = np.cumsum(rng.random(n) < 0.15)
        shot[rng.random(n) < 0.1] = LOST
        cuts = [10 + i for i in range(1, n) if shot[i] != shot[i - 1] and LOST not in (shot[i], shot[i - 1])]
        track = TrackWindow(10, 10 + n - 1, shot, np.zeros((n, 2, 2)), cuts, 0)
        for _ in range(10):
            a, b = sorted(int(x) for x in rng.integers(0, n, 2))
            one_shot = bool((shot[a:b + 1] == shot[a]).all() and shot[a] != LOST)
            assert (track.lost_reason(10 + a, 10 + b) == "") == one_shot
