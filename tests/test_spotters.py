"""The spotters: MDMD against its reference's definition, gaps never scored, and well above a random spotter on
synthetic long videos whose expressions sit at known frames."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from manifests.spot import SpotConfig as SpotManifestConfig
from manifests.spot import build_spot_manifest
from mer_data.datasets import adapter
from mer_data.spot.features import FeatureConfig, VideoFeatures, video_features
from mer_data.spot.mdmd import MDMDConfig, MDMDExtractor, block_value, contrast, mdmd_value, spot_mdmd
from mer_data.spot.peaks import peak_intervals, relative_threshold, runs_above, segments
from mer_data.synth import SynthConfig, synthesize
from pipelines.plan import list_clip


def _f1(preds: dict[str, list[tuple[int, int]]], truth: dict[str, list[tuple[int, int]]]) -> float:
    """MEGC counting, pooled: a prediction is a hit when its IoU with a not yet matched ground truth is >= 0.5."""
    tp = fp = 0
    for video, intervals in preds.items():
        free = list(truth.get(video, []))
        for a, b in intervals:
            hit = next((g for g in free if _iou((a, b), g) >= 0.5), None)
            tp, fp = (tp + 1, fp) if hit else (tp, fp + 1)
            if hit:
                free.remove(hit)
    fn = sum(len(v) for v in truth.values()) - tp
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    return max(0, inter) / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - max(0, inter))


def test_block_value_follows_the_reference():
    # 9 vectors: 6 point to [0, 90) degrees (u = v = 1, |F1| = sqrt 2), 3 to [-90, 0) with |F1| = 5; F2 = 0.
    f1 = np.array([[1.0, 1.0]] * 6 + [[3.0, -4.0]] * 3)
    # the main direction is the range holding most vectors, not the strongest: the mean of the top third (2 of 6)
    assert block_value(f1, np.zeros_like(f1)) == pytest.approx(np.sqrt(2))
    # |F1| - |F2|: a tail as far from the head as the current frame cancels the movement
    assert block_value(f1, f1) == pytest.approx(0.0)
    # the frame: mean of the largest third (round(36 / 3) = 12) of 6 x 6 block values
    flow = np.zeros((12, 12, 2))
    flow[:4, :, :] = 1.0  # 2 block rows x 6 = 12 blocks move by (1, 1)
    flow[4:6, :, 0], flow[4:6, :, 1] = 0.5, 0.5  # 6 more blocks move by half that
    assert mdmd_value(flow, np.zeros_like(flow), 6) == pytest.approx(np.sqrt(2))


def test_contrast_and_intervals_never_cross_a_gap():
    f = np.zeros(40)
    f[10:13] = 1.0  # a movement
    f[28:31] = 1.0  # another, right after a lost stretch
    valid = np.ones(40, bool)
    valid[24:27] = False
    c, ok = contrast(f, valid, 2)
    assert not ok[22:29].any() and np.isnan(c[22:29]).all()  # every contrast touching the gap is undefined
    assert ok[11] and c[11] == pytest.approx(1.0)
    frames = np.arange(100, 140)
    threshold = relative_threshold(c, ok, 0.5)
    peaks = peak_intervals(c, frames, ok, threshold, half=5, distance=3)
    assert peaks and all(not (a <= 124 + 2 and b >= 124 - 2) for a, b, _ in peaks)  # none reaches over the gap
    assert any(a <= 111 <= b for a, b, _ in peaks)
    # C = 0.5, 1, 0.5 over rows 10..12 and the threshold is above 0.5 (mean < 0 + half the way to 1): one frame
    assert threshold > 0.5 and runs_above(c, frames, ok, threshold)[0][:2] == (111, 111)
    assert segments(np.array([1, 1, 0, 1, 0, 0, 1], bool)) == [(0, 1), (3, 3), (6, 6)]


def test_spot_mdmd_skips_lost_windows():
    f = np.r_[np.zeros(20), np.full(5, np.nan), np.zeros(20)]
    f[8:11] = 1.0
    valid = np.isfinite(f)
    found = spot_mdmd(VideoFeatures(np.arange(45), f[:, None], valid, 30.0), MDMDConfig(k=3))
    assert found and all(not (a <= 24 and b >= 20) for a, b, _ in found)


@pytest.fixture(scope="module")
def spotted(tmp_path_factory):
    """MDMD predictions on a synthetic CAS(ME)^2 of two subjects (4 videos, 8 micro- and 4 macro-expressions)."""
    root = tmp_path_factory.mktemp("spot") / "casme_sq"
    synthesize(SynthConfig("casme_sq", root, subjects=2, clips_per_subject=4, seed=3))
    out = root.parent / "preds.csv"
    result = CliRunner().invoke(cli.data_app, ["spot", "casme_sq", "--root", str(root), "--out", str(out),
                                               "--flow", "farneback"])
    assert result.exit_code == 0, result.output
    truth: dict[str, list[tuple[int, int]]] = {}  # every macro and micro interval, as the spotting manifest lists it
    for row in build_spot_manifest(SpotManifestConfig("casme_sq", root=root)).intervals:
        if row["status"] == "ok":
            truth.setdefault(row["video"], []).append((row["onset"], row["offset"]))
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    return rows, truth, result.output, root, out


def test_ray_tasks_spot_the_same(spotted):
    """One Ray task per video (OpenCV on one thread in each) writes the serial run's prediction file."""
    *_, root, out = spotted
    ray_out = out.with_name("preds_ray.csv")
    result = CliRunner().invoke(cli.data_app, ["spot", "casme_sq", "--root", str(root), "--out", str(ray_out),
                                               "--flow", "farneback", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert ray_out.read_bytes() == out.read_bytes()


def test_mdmd_beats_a_random_spotter(spotted):
    rows, truth, output, *_ = spotted
    preds: dict[str, list[tuple[int, int]]] = {}
    for r in rows:
        assert int(r["onset"]) <= int(r["offset"]) and r["type"] in ("micro", "macro")
        preds.setdefault(r["video"], []).append((int(r["onset"]), int(r["offset"])))
    assert set(preds) <= set(truth)
    ours = _f1(preds, truth)
    rng = np.random.default_rng(0)
    chance = []
    for _ in range(50):  # as many intervals of the same lengths per video, anywhere in it
        shuffled = {}
        for video, intervals in preds.items():
            end = max(b for _, b in truth[video]) + 40
            shuffled[video] = [(s, s + b - a) for a, b in intervals for s in [int(rng.integers(1, end - (b - a)))]]
        chance.append(_f1(shuffled, truth))
    assert ours >= np.mean(chance) + 0.2, (ours, np.mean(chance), output)


def test_spot_rejects_a_bad_flag(tmp_path):
    result = CliRunner().invoke(cli.data_app, ["spot", "casme_sq", "--root", str(tmp_path), "--method", "guess"])
    assert result.exit_code == 2 and "--method 'guess'" in result.output


def test_frames_without_a_face_are_gaps(tmp_path):
    root = tmp_path / "casme_sq"
    synthesize(SynthConfig("casme_sq", root, subjects=1, clips_per_subject=2, seed=1))
    clip = next(iter(adapter("casme_sq").iter_clips(root)))
    for n in range(50, 61):  # the face leaves the picture for 11 frames
        path = Path(clip.source) / f"img{n}.jpg"
        cv2.imwrite(str(path), np.zeros_like(cv2.imread(str(path))))
    span = list_clip(clip)
    cfg = MDMDConfig(k=6, flow="farneback")
    feats = video_features(clip, span.first, span.last, span.fps, MDMDExtractor(cfg, span.fps),
                           FeatureConfig(flow="farneback"))
    touches = (feats.frames + 6 >= 50) & (feats.frames - 6 <= 60)  # windows t-6..t+6 holding a faceless frame
    assert not feats.valid[touches].any() and np.isnan(feats.values[touches]).all()
    assert feats.valid[~touches].mean() > 0.8
    assert all(b < 50 or a > 60 for a, b, _ in spot_mdmd(feats, cfg))
