"""Ingest through moving heads (synthetic `hard` motion with known eyes): aligned against the truth, nothing faceless
written, the track independent of how clips are cut into shards, labeled samples aligned around their own frames."""

import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mer_data.align import EYE_DISTANCE, apply
from mer_data.frame_window import FrameWindow
from mer_data.pair_align import template
from mer_data.synth import generate
from mer_data.synth.motion import VISIBLE, load_eye_truth
from mer_data.track import TrackConfig
from pipelines import worker
from pipelines.ingest import IngestConfig, run_ingest

FRAMES = 420  # 14 s at 30 fps: room for the board, the cutaway, the cut and the lean


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """CAS(ME)^3 with one subject and two long `hard` videos (two MEs each), as frame folders and as mp4."""
    base = tmp_path_factory.mktemp("moving")
    return {video: generate("casme3", base / ("mp4" if video else "jpg"), subjects=1, clips_per_subject=4,
                            video=video, motion="hard", video_frames=FRAMES) for video in (False, True)}


def _ingest(root: Path, out: Path, **kw) -> dict:
    kw.setdefault("workers", 0)
    return run_ingest(IngestConfig(dataset="casme3", root=str(root), out=str(out), **kw))


def _metas(out: Path) -> list[dict]:
    metas = []
    for path in sorted(out.glob("*.tar")):
        with tarfile.open(path) as tar:
            metas += [json.loads(tar.extractfile(m).read()) for m in tar.getmembers() if m.name.endswith(".json")]
    return metas


def _truth(root: Path) -> dict:
    return {str((root / src).resolve()): t for src, t in load_eye_truth(root).items()}


def _visible(truth, t0: int, t1: int) -> bool:
    k0, k1 = t0 - truth.frames[0], t1 - truth.frames[0]
    return bool((truth.state[k0: k1 + 1] == VISIBLE).all() and truth.shot[k0] == truth.shot[k1])


def _errors(meta: dict, truth) -> list[tuple[float, float]]:
    """(eye-midpoint error px, eye distance / template distance) of f0 and f1 under the pair's crop."""
    out = []
    for n in (meta["t0"], meta["t1"]):
        k = n - truth.frames[0]
        right, left = apply(np.asarray(meta["crop"]), np.stack([truth.right[k], truth.left[k]]))
        out.append((float(np.hypot(*((right + left) / 2 - template(224).mean(axis=0)))),
                    float(np.hypot(*(left - right)) / (EYE_DISTANCE * 224))))
    return out


@pytest.mark.parametrize("video", [False, True], ids=["frames", "mp4"])
def test_moving_heads_are_aligned_and_nothing_faceless_is_written(moving, video, tmp_path, face_model):
    root = moving[video]
    summary = _ingest(root, tmp_path)
    truths, metas = _truth(root), _metas(tmp_path)
    assert summary["ok"] and len(metas) == summary["written"] > 300
    assert all(_visible(truths[str(Path(m["source"]).resolve())], m["t0"], m["t1"]) for m in metas)
    rows = [r for p in sorted(tmp_path.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    dropped = [r for r in rows if r["status"] == "no_face"]
    hidden = [r for r in rows if not _visible(truths[str(Path(r["source"]).resolve())], r["t0"], r["t1"])]
    assert {r["key"] for r in dropped} == {r["key"] for r in hidden} and hidden  # exactly the pairs that touch them
    assert all(("no face tracked in frames" in r["reason"] or "cut between frames" in r["reason"]) for r in dropped)
    errors = np.array([e for m in metas for e in _errors(m, truths[str(Path(m["source"]).resolve())])])
    assert np.percentile(errors[:, 0], 50) < 2.0 and np.percentile(errors[:, 0], 90) < 3.5  # px at 224
    assert np.abs(errors[:, 1] - 1).max() < 0.05  # scale within ±5 %
    assert summary["anchors_lost"] > 0 and 1.0 <= summary["encodes_per_frame"] < 2.0
    assert 0 < summary["detections_per_frame"] < 0.3  # sparse: about 3 a second, more where the face moves
    assert all(np.asarray(m["eyes"]).shape == (2, 2, 2) for m in metas)


def test_the_track_does_not_depend_on_how_clips_are_cut_into_shards(moving, tmp_path, face_model, monkeypatch):
    held = []
    get = FrameWindow.get
    monkeypatch.setattr(FrameWindow, "get", lambda self, n: (held.append(self.held), get(self, n))[1])
    runs = {"one": _ingest(moving[True], tmp_path / "one", shard_size=5000),
            "many": _ingest(moving[True], tmp_path / "many", shard_size=37)}  # segments hand their detections on
    monkeypatch.setattr(worker, "FACE_CLIPS", 0)  # each segment alone, as on a worker that never saw the clip
    runs["alone"] = _ingest(moving[True], tmp_path / "alone", shard_size=37)
    strip = ("index", "key")
    metas = {name: [{k: v for k, v in m.items() if k not in strip} for m in _metas(tmp_path / name)] for name in runs}
    assert len(metas["one"]) > 300 and metas["one"] == metas["many"] == metas["alone"]
    assert runs["many"]["detections"] == runs["one"]["detections"] < runs["alone"]["detections"]
    stats = {name: sorted(p.read_bytes() for p in (tmp_path / name).glob("*_stats.json")) for name in ("many", "alone")}
    assert len(stats["many"]) > 10 and stats["many"] == stats["alone"]  # the work done is not in the stats
    cfg = TrackConfig()  # a video worker holds at most a block, the lookahead (margin + a step) and a δ of frames
    assert max(held) <= cfg.block(30.0) + cfg.margin(30.0) + cfg.step(30.0) + 11 + 1


def test_labeled_samples_are_aligned_around_their_own_frames(moving, tmp_path, face_model):
    root = moving[False]
    summary = _ingest(root, tmp_path, labeled=True)
    truths, metas = _truth(root), _metas(tmp_path)
    assert summary["written"] == len(metas) == 4 and max(m["onset"] for m in metas) > 200
    for meta in metas:
        (e0, s0), (e1, s1) = _errors(meta, truths[str(Path(meta["source"]).resolve())])
        assert e0 < 4.0 and e1 < 4.0 and abs(s0 - 1) < 0.05, meta["sample_id"]


def test_preview_marks_the_tracked_and_template_eyes(moving, tmp_path, face_model):
    from mer_data.preview import LABEL_H, contact_sheet

    _ingest(moving[False], tmp_path, shard_size=5000)
    plain, marked = contact_sheet(tmp_path, count=2), contact_sheet(tmp_path, count=2, eyes=True)
    assert plain.shape == marked.shape
    changed = np.any(plain != marked, axis=2)
    tile = plain.shape[1] // 3
    assert changed[:, :2 * tile].any() and not changed[:, 2 * tile:].any()  # f0, f1 marked; the difference untouched
    green = (marked[..., 1] > 200) & (marked[..., 0] < 80) & (marked[..., 2] < 80)  # BGR
    rows, cols = np.nonzero(green[LABEL_H: LABEL_H + tile, :tile])
    assert rows.size and abs(rows.mean() - 0.38 * tile) < 6 and abs(cols.mean() - tile / 2) < 6  # eyes on the template
