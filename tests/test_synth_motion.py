"""Head motion of the synthetic generator: determinism, the eye truth against BlazeFace, drift limits, hard events,
long CAS(ME)^3 videos, videos and adapters with motion on."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cli import data_app
from mer_data import MerDataError
from mer_data.align import FaceDetector
from mer_data.datasets import ADAPTERS
from mer_data.frames import frame_numbers, iter_frames
from mer_data.synth import ABSENT, COVERED, EYES_FILE, TRUTH_FILE, VISIBLE, generate, load_eye_truth, motion, render
from mer_data.synth.layouts import Face

FPS3 = 30.0  # CAS(ME)^3 capture rate
LONG = 360  # frames per CAS(ME)^3 video in the hard trees: 12 s, room for every event


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def midpoints(truth: motion.EyeTruth) -> np.ndarray:
    return (truth.right + truth.left) / 2  # (N, 2)


def clip_frames(dataset: str, root: Path, source: str) -> dict[int, np.ndarray]:
    """Every frame of the take at `source` as the adapter decodes it (RGB uint8)."""
    [clip] = [c for c in ADAPTERS[dataset].iter_clips(root) if Path(c.source) == root / source]
    return dict(iter_frames(clip, frame_numbers(clip)))


@pytest.fixture(scope="module")
def hard3(tmp_path_factory) -> Path:
    """A hard-motion CAS(ME)^3 of long videos (mp4), one subject with two videos."""
    return generate("casme3", tmp_path_factory.mktemp("hard") / "casme3", subjects=1, clips_per_subject=4,
                    video=True, motion="hard", video_frames=LONG, seed=3)


@pytest.fixture(scope="module")
def detector(face_model):
    with FaceDetector(str(face_model), min_confidence=0.5, fallback_confidence=0.3) as det:
        yield det


@pytest.mark.parametrize("dataset,kwargs", [("casme3", dict(motion="hard", video_frames=200)),
                                            ("casme3", dict(motion="hard", video_frames=200, video=True)),
                                            ("samm", dict(motion="drift"))])
def test_same_seed_same_bytes(tmp_path, dataset, kwargs):
    first = tree_bytes(generate(dataset, tmp_path / "a", subjects=1, clips_per_subject=2, seed=4, **kwargs))
    second = tree_bytes(generate(dataset, tmp_path / "b", subjects=1, clips_per_subject=2, seed=4, **kwargs))
    other = tree_bytes(generate(dataset, tmp_path / "c", subjects=1, clips_per_subject=2, seed=5, **kwargs))
    assert first == second
    assert first[EYES_FILE] != other[EYES_FILE]


def test_none_is_the_default_and_still(tmp_path):
    default = generate("casme3", tmp_path / "default", subjects=1, clips_per_subject=2)
    explicit = generate("casme3", tmp_path / "none", subjects=1, clips_per_subject=2, motion="none")
    drift = generate("casme3", tmp_path / "drift", subjects=1, clips_per_subject=2, motion="drift")
    assert tree_bytes(default) == tree_bytes(explicit)
    still, moved = tree_bytes(default), tree_bytes(drift)
    sheet = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    assert still[sheet] == moved[sheet]  # motion changes pixels, never labels
    assert json.loads(still[TRUTH_FILE])["truth"] == json.loads(moved[TRUTH_FILE])["truth"]
    assert still.keys() == moved.keys() and sum(still[k] != moved[k] for k in still if k.endswith(".jpg")) > 50
    look = Face(0, "casme3", "spNO.1").look
    pupils = render.photo_to_frame(look, np.array([render.RIGHT_PUPIL, render.LEFT_PUPIL]))
    for truth in load_eye_truth(default).values():  # the unmoved face: the same eyes in every frame
        assert np.allclose(truth.right, pupils[0]) and np.allclose(truth.left, pupils[1])
        assert (truth.state == VISIBLE).all() and (truth.shot == 0).all()


def test_eye_truth_agrees_with_blazeface(hard3, detector):
    """Visible frames: BlazeFace's eyes sit on the truth; covered and faceless frames: no face at confidence 0.3."""
    errors, ratios, hidden = [], [], 0
    for source, truth in load_eye_truth(hard3).items():
        frames = clip_frames("casme3", hard3, source)
        assert sorted(frames) == truth.frames.tolist()
        for k, n in enumerate(truth.frames):
            faces = detector(frames[n])
            if truth.state[k] != VISIBLE:
                assert faces == [], f"{source} frame {n} (state {truth.state[k]}): BlazeFace finds a face"
                hidden += 1
            elif k % 3 == 0:
                right, left = np.array(faces[0].right_eye), np.array(faces[0].left_eye)
                errors.append(np.hypot(*((right + left) / 2 - midpoints(truth)[k])))
                ratios.append(np.hypot(*(left - right)) / np.hypot(*(truth.left[k] - truth.right[k])))
    assert hidden >= 2 * FPS3  # two videos, each with a covered and a faceless span
    assert np.median(errors) < 2.0 and max(errors) < 4.5  # px; the eye distance is ≈ 43 px
    assert abs(np.median(ratios) - 1) < 0.03 and max(abs(r - 1) for r in ratios) < 0.08


def test_grey_frames_agree_with_the_truth(tmp_path, detector):
    root = generate("samm", tmp_path / "samm", subjects=2, clips_per_subject=1, motion="drift", seed=2)
    errors = []
    for source, truth in load_eye_truth(root).items():
        frames = clip_frames("samm", root, source)
        for k, n in enumerate(truth.frames):
            faces = detector(frames[n])
            right, left = np.array(faces[0].right_eye), np.array(faces[0].left_eye)
            errors.append(np.hypot(*((right + left) / 2 - midpoints(truth)[k])))
    assert np.median(errors) < 3.0 and max(errors) < 5.0  # BlazeFace reads grey eyes ≈ 1.5 px further out


def face_corners(truth_motion: motion.TakeMotion) -> np.ndarray:
    """(N, 4, 2) frame px of the face box corners of every frame."""
    x, y, w, h = render.FACE_BOX
    corners = render.photo_to_frame(truth_motion.look, np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]]))
    m = truth_motion.matrix
    return np.einsum("nij,cj->nci", m[:, :, :2], corners) + m[:, None, :, 2]


def test_drift_stays_in_frame_at_seated_speeds():
    height, width = render.FRAME_SHAPE
    rng = np.random.default_rng(0)
    for trial in range(40):
        look = render.subject_look(rng)
        moves = motion.take_motion("drift", look, 0, 1799, [], FPS3, np.random.default_rng(trial))  # one minute
        corners = face_corners(moves)
        assert corners.min() >= 0 and (corners[..., 0] < width).all() and (corners[..., 1] < height).all()
        amp = motion.amplitudes(look)
        assert np.allclose(amp, [motion.DRIFT_SHIFT[0] * width, motion.DRIFT_SHIFT[1] * height, 10.0, 0.08])
        span = np.ptp(moves.pose, axis=0) / amp  # it moves: each component covers part of its range
        assert (span > 0.3).all(), span
        speed = np.abs(np.diff(moves.pose, axis=0)) * FPS3 / amp  # amplitudes per second
        assert (speed <= 2 * np.pi * motion.DRIFT_HZ[1] + 1e-9).all()
        assert (moves.state == VISIBLE).all() and (moves.shot == 0).all()
        eyes = moves.eyes()
        assert np.hypot(*np.diff(midpoints(eyes), axis=0).T).max() < 2.0  # px per frame at 30 fps
    fast = motion.take_motion("drift", look, 100, 129, [(105, 125)], 200.0, np.random.default_rng(1))  # CASME II
    assert np.hypot(*np.diff(midpoints(fast.eyes()), axis=0).T).max() < 0.3


def spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """Index spans [a, b) where `mask` holds."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2]))


def test_hard_events_cut_and_lean(hard3):
    truths = load_eye_truth(hard3)
    episodes = json.loads((hard3 / TRUTH_FILE).read_text())["truth"]
    guard = motion.GUARD_S * FPS3
    for source, truth in truths.items():
        (covered,), (absent,) = spans(truth.state == COVERED), spans(truth.state == ABSENT)
        assert motion.COVER_S[0] * FPS3 <= covered[1] - covered[0] <= motion.COVER_S[1] * FPS3
        assert motion.ABSENT_S[0] * FPS3 <= absent[1] - absent[0] <= motion.ABSENT_S[1] * FPS3
        assert np.isnan(truth.right[absent[0] : absent[1]]).all() and not np.isnan(truth.right[truth.state != ABSENT]).any()
        changes = np.flatnonzero(np.diff(truth.shot)) + 1
        assert truth.shot[0] == 0 and np.diff(truth.shot).max() == 1 and len(changes) == 3
        assert set(absent) <= set(changes)  # into and out of the cutaway
        [cut] = sorted(set(changes) - set(absent))
        mid, eye_distance = midpoints(truth), np.hypot(*(truth.left - truth.right).T)
        jump = np.hypot(*(mid[cut] - mid[cut - 1]))
        assert jump > 20 or abs(eye_distance[cut] / eye_distance[cut - 1] - 1) > 0.05  # a real discontinuity
        step = np.hypot(*np.diff(mid, axis=0).T)  # px per frame
        step[changes - 1] = 0
        lean = np.flatnonzero(step > 2.0)  # faster than any drift: the lean, ≈ LEAN_S long
        assert 0.2 * FPS3 <= len(lean) and lean[-1] - lean[0] < motion.LEAN_S * FPS3
        assert jump > 2 * np.nanmax(step)
        for ep in (e for e in episodes if e["source"] == source):  # micro-expressions in calm, visible frames
            near = (truth.frames >= ep["onset"] - guard) & (truth.frames <= ep["offset"] + guard)
            assert (truth.state[near] == VISIBLE).all() and len(set(truth.shot[near])) == 1
            assert step[near[:-1]].max() < 1.5 and not set(np.flatnonzero(near)) & set(lean)


def test_events_avoid_micro_expressions_for_any_seed():
    look = render.subject_look(np.random.default_rng(0))
    for seed in range(60):
        rng = np.random.default_rng(seed)
        starts = np.sort(rng.choice(np.arange(20, 560, 45), size=3, replace=False))
        busy = [(int(s), int(s) + int(rng.integers(19, 30))) for s in starts]
        moves = motion.take_motion("hard", look, 0, 599, busy, FPS3, rng)
        guard = round(motion.GUARD_S * FPS3)
        calm = np.zeros(600, bool)
        for onset, offset in busy:
            calm[max(0, onset - guard) : offset + guard + 1] = True
        assert (moves.state[calm] == VISIBLE).all()
        assert len(set(np.flatnonzero(np.diff(moves.shot)) + 1) & set(np.flatnonzero(calm))) == 0
        pose_step = np.abs(np.diff(moves.pose, axis=0))[calm[1:] & calm[:-1]]
        assert (pose_step[:, :2] < 1.5).all()  # px per frame: drift only, no lean or cut
    short = motion.take_motion("hard", look, 40, 64, [(40, 64)], 200.0, np.random.default_rng(0))  # a CASME II clip
    assert (short.state == VISIBLE).all() and (short.shot == 0).all()


def test_long_casme3_videos_are_padded_consistently(tmp_path):
    plain = generate("casme3", tmp_path / "plain", subjects=2, clips_per_subject=3)
    root = generate("casme3", tmp_path / "long", subjects=2, clips_per_subject=3, video_frames=300)
    before = json.loads((plain / TRUTH_FILE).read_text())["truth"]
    after = json.loads((root / TRUTH_FILE).read_text())["truth"]
    assert [(t["clip"], t["offset"] - t["onset"], t["apex"] - t["onset"]) for t in before] == \
           [(t["clip"], t["offset"] - t["onset"], t["apex"] - t["onset"]) for t in after]  # same MEs, moved
    assert all(b["onset"] < a["onset"] for b, a in zip(before, after))  # spread into the longer videos
    samples = list(ADAPTERS["casme3"].iter_samples(root))
    assert len(samples) == len(after) and all(s.status == "ok" for s in samples)
    assert sorted((s.onset, s.apex, s.offset) for s in samples) == sorted((t["onset"], t["apex"], t["offset"])
                                                                         for t in after)
    for source, truth in load_eye_truth(root).items():
        folder = root / source
        assert len(truth.frames) >= 300 and len(list(folder.glob("*.jpg"))) == len(truth.frames)
        assert len(list(folder.parent.glob("depth/*.png"))) == len(truth.frames)
    with pytest.raises(MerDataError, match="--video-frames applies to casme3"):
        generate("samm", tmp_path / "samm", video_frames=300)


def test_video_and_frames_show_the_same_motion(tmp_path, hard3):
    frames_root = generate("casme3", tmp_path / "frames", subjects=1, clips_per_subject=4, motion="hard",
                           video_frames=LONG, seed=3)
    video_truth, frames_truth = load_eye_truth(hard3), load_eye_truth(frames_root)
    assert [Path(s).parent for s in video_truth] == [Path(s).parent for s in frames_truth]
    for (video_source, vt), (frames_source, ft) in zip(sorted(video_truth.items()), sorted(frames_truth.items())):
        assert video_source.endswith("color.mp4") and frames_source.endswith("color")
        assert np.array_equal(vt.right, ft.right, equal_nan=True) and np.array_equal(vt.shot, ft.shot)
        decoded = clip_frames("casme3", hard3, video_source)
        for n in vt.frames[::40]:
            jpg = cv2.cvtColor(cv2.imread(str(frames_root / frames_source / f"{n}.jpg")), cv2.COLOR_BGR2RGB)
            assert np.abs(decoded[n].astype(np.float32) - jpg).mean() < 4.0


@pytest.mark.parametrize("dataset", ["casme2", "samm", "smic", "casme3", "megc2019"])
def test_adapters_read_every_layout_with_motion(tmp_path, dataset):
    root = generate(dataset, tmp_path / dataset, subjects=2, clips_per_subject=2, motion="hard")
    for name in ("casme2", "samm", "smic") if dataset == "megc2019" else (dataset,):
        part = root / name if dataset == "megc2019" else root
        truths = load_eye_truth(part)
        samples = list(ADAPTERS[name].iter_samples(part))
        assert samples and all(s.status == "ok" for s in samples)
        labelled = {t["source"] for t in json.loads((part / TRUTH_FILE).read_text())["truth"]}
        assert labelled <= truths.keys()
        for clip in ADAPTERS[name].iter_clips(part):
            source = Path(clip.source).relative_to(part).as_posix()
            assert frame_numbers(clip) == truths[source].frames.tolist(), source


def test_load_eye_truth_needs_the_file(tmp_path):
    with pytest.raises(MerDataError, match=EYES_FILE):
        load_eye_truth(tmp_path)


def test_cli_motion_options(tmp_path):
    runner = CliRunner()
    result = runner.invoke(data_app, ["synth", "casme3", "--out", str(tmp_path / "c3"), "--subjects", "1",
                                      "--clips-per-subject", "2", "--motion", "hard", "--video-frames", "120"])
    assert result.exit_code == 0, result.output
    assert "frames 120" in result.output
    assert json.loads((tmp_path / "c3" / TRUTH_FILE).read_text())["config"]["motion"] == "hard"
    for args, message in ((["--motion", "wobble"], "--motion 'wobble'"), (["--video-frames", "50"], "casme3 only")):
        result = runner.invoke(data_app, ["synth", "samm", "--out", str(tmp_path / "s"), *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
