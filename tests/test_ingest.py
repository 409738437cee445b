"""The ingest pipeline on synthetic trees: shards read back, δ in range, faces in the crop, determinism, resume, bad input."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from typer.testing import CliRunner

from cli import data_app
from mer_data import MerDataError
from mer_data.align import EYE_DISTANCE, EYE_LINE, FaceDetector
from mer_data.datasets import ADAPTERS
from mer_data.records import STATUS_OK, Clip
from mer_data.shards import inspect_dir
from pipelines.ingest import IngestConfig, run_ingest
from pipelines.plan import resolve_excluded

SHARD_FILES = ("*.tar", "*.parquet", "*_stats.json")


@pytest.fixture(scope="module")
def model(face_model):
    return face_model


@pytest.fixture(scope="module")
def detector(model):
    with FaceDetector(str(model)) as det:
        yield det


def _cfg(root, out, **kw):
    kw.setdefault("workers", 0)
    return IngestConfig(dataset=kw.pop("dataset", "casme2"), root=str(root), out=str(out), **kw)


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for pattern in SHARD_FILES for p in sorted(out.glob(pattern))}


def _samples(out: Path) -> list[dict]:
    tars = sorted(str(p) for p in out.glob("*.tar"))
    return list(wds.WebDataset(tars, shardshuffle=False, empty_check=False).decode("rgb8"))


def _rows(out: Path) -> list[dict]:
    return [r for p in sorted(out.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.mark.parametrize("video", [False, True], ids=["frames", "video"])
@pytest.mark.parametrize("dataset", ["casme2", "samm", "smic", "casme3"])
def test_ingest_reads_back(dataset, video, synth_root, tmp_path, model, detector):
    root = synth_root(dataset, video=video)
    summary = run_ingest(_cfg(root, tmp_path, dataset=dataset, shard_size=97))
    assert summary["ok"] and summary["written"] > 0 and summary["shards"] >= 2
    samples = _samples(tmp_path)
    assert len(samples) == summary["written"] == sum(r["status"] == STATUS_OK for r in _rows(tmp_path))
    for s in samples:
        meta = s["json"]
        assert 5 <= meta["delta"] <= 11 and meta["t1"] - meta["t0"] == meta["delta"]
        assert np.asarray(meta["crop"]).shape == (2, 3) and meta["subject"].startswith(f"{dataset}/")
        assert s["f0.jpg"].shape == s["f1.jpg"].shape == (224, 224, 3)  # decoded to RGB uint8
    clip_keys = {c.key for c in ADAPTERS[dataset].iter_clips(root)}
    assert {f"{r['subject']}/{r['clip']}" for r in _rows(tmp_path)} == clip_keys  # every clip on disk contributes
    face = detector(samples[0]["f0.jpg"])[0]  # the synthetic face sits on the template
    assert face.right_eye == pytest.approx((112 - EYE_DISTANCE * 112, EYE_LINE * 224), abs=8)
    assert face.left_eye == pytest.approx((112 + EYE_DISTANCE * 112, EYE_LINE * 224), abs=8)
    assert inspect_dir(tmp_path)["problems"] == []


@pytest.mark.parametrize("dataset", ["casme2", "casme3"])
def test_labeled_mode_one_sample_per_me(dataset, synth_root, tmp_path, model):
    root = synth_root(dataset)
    summary = run_ingest(_cfg(root, tmp_path, dataset=dataset, labeled=True))
    ok = {s.sample_id: s for s in ADAPTERS[dataset].iter_samples(root) if s.status == STATUS_OK}
    metas = [s["json"] for s in _samples(tmp_path)]
    assert summary["written"] == len(ok) == len(metas) > 0
    for meta in metas:
        s = ok[meta["sample_id"]]
        assert (meta["t0"], meta["t1"], meta["onset"], meta["apex"]) == (s.onset, s.apex, s.onset, s.apex)
        assert meta["emotion"] == s.emotion


def test_same_bytes_with_one_and_two_ray_workers(synth_root, tmp_path, model):
    import ray

    root = synth_root("casme2")
    outs = {}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # one session for both runs: start-up is slow
    try:
        for workers in (0, 1, 2):
            summary = run_ingest(_cfg(root, tmp_path / f"w{workers}", shard_size=40, workers=workers))
            assert summary["ok"] and summary["shards_run"] == summary["shards"] > 2
            outs[workers] = _shard_bytes(tmp_path / f"w{workers}")
    finally:
        ray.shutdown()
    assert outs[0] == outs[1] == outs[2]
    assert len(outs[0]) == 3 * summary["shards"]


class _RefusingSeeks:
    """A VideoCapture wrapper whose seeks all fail, so every read decodes forward from frame 0 (the pre-seek way)."""

    opened = cv2.VideoCapture

    def __init__(self, *args):
        self._cap = self.opened(*args)

    def set(self, prop, value):
        return False

    def __getattr__(self, name):
        return getattr(self._cap, name)


def test_video_split_over_shards_seeks_to_the_same_bytes(synth_root, tmp_path, model, monkeypatch):
    from mer_data import frames

    root = synth_root("casme3", video=True)  # Part A videos: every clip spans several 20-pair shards
    monkeypatch.setattr(frames.ClipReader, "SEEK_AHEAD", 1)  # seek at every gap: each shard jumps to its frames
    summary = run_ingest(_cfg(root, tmp_path / "seek", dataset="casme3", shard_size=20))
    assert summary["ok"] and summary["shards"] >= 8
    monkeypatch.setattr(frames.cv2, "VideoCapture", _RefusingSeeks)
    run_ingest(_cfg(root, tmp_path / "decode", dataset="casme3", shard_size=20))
    assert _shard_bytes(tmp_path / "seek") == _shard_bytes(tmp_path / "decode")


CRASH_SCRIPT = """
import os, signal, sys
from mer_data import shards
from pipelines.ingest import IngestConfig, run_ingest
real_add, calls = shards.TarShardWriter.add, []
def add(self, key, files):
    calls.append(key)
    if self.path.name == "000002.tar" and len(calls) > 85:  # part-way through the third shard
        os.kill(os.getpid(), signal.SIGKILL)
    real_add(self, key, files)
shards.TarShardWriter.add = add
run_ingest(IngestConfig(dataset="casme2", root=sys.argv[1], out=sys.argv[2], workers=0, shard_size=40))
"""


def test_resume_after_kill_gives_the_same_bytes(synth_root, tmp_path, model):
    root = synth_root("casme2")
    run_ingest(_cfg(root, tmp_path / "ref", shard_size=40))
    out = tmp_path / "crashed"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASH_SCRIPT), str(root), str(out)],
                          capture_output=True, cwd=Path(__file__).parent.parent, check=False)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert (out / "000001_stats.json").is_file() and not (out / "000002_stats.json").exists()
    assert (out / "000002.tar.tmp").is_file()  # the partial shard, left by the kill
    summary = run_ingest(_cfg(root, out, shard_size=40))
    assert summary["shards_skipped"] == 2 and summary["shards_run"] == summary["shards"] - 2
    assert not list(out.glob("*.tmp"))
    assert _shard_bytes(out) == _shard_bytes(tmp_path / "ref")


def test_different_config_is_refused_overwrite_starts_over(synth_root, tmp_path, model):
    root = synth_root("samm")
    first = run_ingest(_cfg(root, tmp_path, shard_size=200, dataset="samm"))
    again = run_ingest(_cfg(root, tmp_path, shard_size=200, dataset="samm"))
    assert again["shards_skipped"] == first["shards"] and again["shards_run"] == 0
    assert json.loads((tmp_path / "ingest.json").read_text())["config"]["face_runtime"] == "litert"
    with pytest.raises(MerDataError, match="different config.*face_runtime"):  # the other runtime's bytes differ
        run_ingest(_cfg(root, tmp_path, shard_size=200, dataset="samm", face_runtime="mediapipe"))
    with pytest.raises(MerDataError, match="different config.*delta"):
        run_ingest(_cfg(root, tmp_path, shard_size=200, dataset="samm", delta=(2, 3)))
    summary = run_ingest(_cfg(root, tmp_path, shard_size=200, dataset="samm", delta=(2, 3), overwrite=True))
    assert summary["shards_skipped"] == 0
    assert json.loads((tmp_path / "ingest.json").read_text())["config"]["delta"] == [2, 3]
    assert {s["json"]["delta"] for s in _samples(tmp_path)} <= {2, 3}


def _damaged_clips(src: Path, tmp: Path) -> dict[str, Clip]:
    """Copies of one synthetic CASME II clip folder, each broken in one way, plus a garbage video."""
    def copy(name: str) -> Path:
        return Path(shutil.copytree(src, tmp / "sub99" / name))

    frames = sorted(src.iterdir(), key=lambda p: int(p.stem[3:]))
    copy("ok")
    (copy("corrupt") / frames[3].name).write_bytes(b"not a jpeg at all" * 10)
    (copy("zero") / frames[4].name).write_bytes(b"")
    (copy("truncated") / frames[5].name).write_bytes(frames[5].read_bytes()[:2000])
    (copy("missing") / frames[6].name).unlink()
    for p in sorted(copy("short").iterdir(), key=lambda p: int(p.stem[3:]))[4:]:
        p.unlink()
    for p in copy("noface").iterdir():
        cv2.imwrite(str(p), np.full((480, 640, 3), 90, np.uint8))
    (tmp / "sub99" / "broken.avi").write_bytes(b"RIFF garbage" * 100)
    clips = {name: Clip("casme2", "casme2/sub99", name, str(tmp / "sub99" / name), pattern=r"img(\d+)\.jpg")
             for name in ("ok", "corrupt", "zero", "truncated", "missing", "short", "noface")}
    clips["broken"] = Clip("casme2", "casme2/sub99", "broken", str(tmp / "sub99" / "broken.avi"), kind="video")
    return clips


def test_bad_input_becomes_rows(synth_root, tmp_path, model):
    src = next(c for c in ADAPTERS["casme2"].iter_clips(synth_root("casme2")) if c.kind == "frames")
    clips = _damaged_clips(Path(src.source), tmp_path / "tree")
    summary = run_ingest(_cfg("", tmp_path / "out", shard_size=1000), clips=list(clips.values()))
    rows = _rows(tmp_path / "out")
    by_clip = {name: [r for r in rows if r["clip"] == name] for name in clips}
    assert all(r["status"] == STATUS_OK for r in by_clip["ok"])
    for name, words in {"corrupt": "corrupt", "zero": "zero-byte", "truncated": "truncated", "missing": "missing"}.items():
        bad = [r for r in by_clip[name] if r["status"] != STATUS_OK]
        assert bad and {r["status"] for r in bad} == {"bad_frame"} and all(words in r["reason"] for r in bad), name
        assert len(bad) < len(by_clip[name])  # only the pairs touching the bad frame fail
    assert [r["status"] for r in by_clip["short"]] == ["clip_too_short"]
    assert [r["status"] for r in by_clip["broken"]] == ["unreadable_video"]
    assert {r["status"] for r in by_clip["noface"]} == {"no_face"}
    assert summary["ok"] and summary["failures_by_reason"]["no_face"] == len(by_clip["noface"])
    assert inspect_dir(tmp_path / "out")["problems"] == []
    nothing = run_ingest(_cfg("", tmp_path / "none"), clips=[clips["noface"], clips["short"]])
    assert not nothing["ok"] and nothing["message"] == "nothing was written"


def test_exclude_subjects(synth_root, tmp_path, model):
    root = synth_root("casme2")
    subjects = sorted({c.subject for c in ADAPTERS["casme2"].iter_clips(root)})
    run_ingest(_cfg(root, tmp_path, exclude_subjects=(subjects[0],)))
    assert subjects[0] not in {r["subject"] for r in _rows(tmp_path)}
    assert set(subjects[1:]) <= {r["subject"] for r in _rows(tmp_path)}
    info = json.loads((tmp_path / "ingest.json").read_text())
    assert info["exclude_subjects"] == [subjects[0]] and info["excluded_clips"] > 0


def test_resolve_excluded(tmp_path):
    import pyarrow as pa

    manifest = tmp_path / "m.parquet"
    pq.write_table(pa.table({"subject": ["samm/006", "samm/007", "samm/007"], "fold": [0, 1, 1]}), manifest)
    assert resolve_excluded(str(manifest)) == ("samm/006", "samm/007")
    assert resolve_excluded(str(manifest), "1") == ("samm/007",)
    (tmp_path / "list.txt").write_text("casme2/sub01\n\ncasme2/sub02\n")
    assert resolve_excluded(str(tmp_path / "list.txt")) == ("casme2/sub01", "casme2/sub02")
    assert resolve_excluded("smic/s1, smic/s2") == ("smic/s1", "smic/s2")
    with pytest.raises(MerDataError, match="dataset-qualified"):
        resolve_excluded("sub01")
    with pytest.raises(MerDataError, match="--fold 9"):
        resolve_excluded(str(manifest), "9")


def test_cli_ingest_inspect_preview(synth_root, tmp_path, model):
    runner, out = CliRunner(), tmp_path / "shards"
    root = synth_root("smic")
    res = runner.invoke(data_app, ["ingest", "smic", "--root", str(root), "--out", str(out), "--workers", "0",
                                   "--shard-size", "150"])
    assert res.exit_code == 0, res.output
    assert "pairs in" in res.output and "failures: 0" in res.output
    res = runner.invoke(data_app, ["inspect", str(out)])
    assert res.exit_code == 0 and "shards" in res.output
    res = runner.invoke(data_app, ["preview", str(out), "--out", str(tmp_path / "sheet.png"), "--count", "3"])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "sheet.png")).shape == (3 * (160 + 18), 3 * 160, 3)
    stats = out / "000000_stats.json"
    stats.write_text(stats.read_text().replace('"written": ', '"written": 1'))
    assert runner.invoke(data_app, ["inspect", str(out)]).exit_code == 1
    res = runner.invoke(data_app, ["ingest", "smic", "--root", str(root), "--out", str(out), "--delta", "9:2"])
    assert res.exit_code == 2 and "--delta" in res.output


def test_cli_fails_above_max_failure_rate(synth_root, tmp_path, model):
    root = Path(shutil.copytree(synth_root("casme2"), tmp_path / "casme2"))
    victim = next(root.rglob("*.jpg"))
    victim.write_bytes(b"")
    res = CliRunner().invoke(data_app, ["ingest", "casme2", "--root", str(root), "--out", str(tmp_path / "o"),
                                        "--workers", "0", "--max-failure-rate", "0"])
    assert res.exit_code == 1 and "FAILED" in res.output and "bad_frame" in res.output
    assert os.path.isfile(tmp_path / "o" / "000000_stats.json")  # the shards are still written


def test_face_detector_none_resizes_whole_frames(synth_root, tmp_path):
    root = synth_root("casme2")
    summary = run_ingest(_cfg(root, tmp_path, face_detector="none", size=64))
    assert summary["ok"] and summary["detections"] == 0 and summary["encodes_per_frame"] == 1.0
    samples = _samples(tmp_path)
    assert len(samples) == summary["written"] and samples[0]["f0.jpg"].shape == (64, 64, 3)
    src = ADAPTERS["casme2"].iter_clips(root).__next__()
    h, w = cv2.imread(str(next(Path(src.source).iterdir()))).shape[:2]
    assert all(np.allclose(s["json"]["crop"], [[64 / w, 0, 0], [0, 64 / h, 0]], atol=1e-6) for s in samples)
    assert all("eyes" not in s["json"] for s in samples)
    assert "track" not in json.loads((tmp_path / "ingest.json").read_text())["config"]


def test_pair_json_is_json_dumps_of_the_pair_meta():
    """`PairJson` writes the bytes `json.dumps(pair_meta(...), sort_keys=True)` would, for any names and numbers:
    odd characters in names, with and without eyes, a reduced decode, several matrices in a block, NaN eyes."""
    from mer_data.pair_align import PairMatrix
    from pipelines.worker import PairJson, WorkerOptions, pair_meta

    rng = np.random.default_rng(3)
    for names, reduction, opts in [(("casme2", "sub01", "EP02_01f", "/data/CASME2/sub01/EP02_01f"), 1, WorkerOptions(out="o")),
                                   (("samm", 'ü"\\x', "clip\t1", "/ä/b c"), 2, WorkerOptions(out="o", size=112, image_format="png"))]:
        dataset, subject, clip, source = names
        rows = [{"dataset": dataset, "subject": subject, "clip": clip, "source": source, "t0": t0, "t1": t0 + d,
                 "delta": d, "index": 1000 + t0, "key": f"{1000 + t0:09d}-{subject}_{t0}", "sample_id": "",
                 "status": STATUS_OK} for t0, d in [(0, 5), (1, 11), (7, 6), (40, 9)]]
        matrices = [np.round(rng.normal(size=(2, 3)) * 50, 6), np.round(rng.normal(size=(2, 3)), 6)]
        eyes = [rng.normal(size=(2, 2, 2)) * 300, None, np.full((2, 2, 2), np.nan), rng.normal(size=(2, 2, 2))]
        block = [PairMatrix(k, matrices[k % 2], "", e) for k, e in enumerate(eyes)]
        as_json = PairJson(rows[0], opts, reduction)
        keys = [item.matrix.tobytes() for item in block]
        got = as_json.encode_block(rows, block, keys)
        for row, item in zip(rows, block):
            want = json.dumps(pair_meta(row, item, opts, reduction), sort_keys=True).encode()
            assert got[item.index] == want
            assert json.loads(want)["key"] == row["key"]
        with pytest.raises(ValueError, match="not a pair of the segment's clip"):
            as_json.encode_block([{**rows[0], "clip": "other"}], block[:1], keys[:1])
