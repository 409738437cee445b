"""Labeled samples as whole expressions: which frames a sample stores, what its tar holds, and a sample whose frames
are missing midway becoming a row with its reason while every other sample is written."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mer_data import MerDataError
from mer_data.datasets import ADAPTERS
from mer_data.frames import frame_files
from mer_data.records import STATUS_OK
from mer_data.shards import inspect_dir
from mer_data.synth import generate
from pipelines.ingest import IngestConfig, run_ingest
from pipelines.samples import expression_numbers


def test_all_frames_onset_to_offset_by_default():
    assert expression_numbers(10, 14, 20) == list(range(10, 21))
    assert expression_numbers(10, 14, None) == list(range(10, 15))  # no offset: the expression ends at the apex
    assert expression_numbers(10, 14, 12) == list(range(10, 15))  # offset before the apex: likewise


@pytest.mark.parametrize("onset, apex, offset, n", [(0, 37, 150, 8), (100, 101, 300, 5), (5, 299, 300, 3),
                                                     (0, 50, 100, 11), (3, 9, 40, 4)])
def test_n_frames_spread_uniformly_keep_onset_apex_offset(onset, apex, offset, n):
    got = expression_numbers(onset, apex, offset, n)
    assert len(got) == n and got == sorted(set(got))
    assert got[0] == onset and got[-1] == offset and apex in got
    grid = np.linspace(onset, offset, n)
    moved = [i for i, (g, q) in enumerate(zip(got, grid)) if abs(g - q) > 0.5]
    assert len(moved) <= 1 and all(got[i] == apex for i in moved)  # only the point nearest the apex moves onto it


def test_fewer_frames_than_asked_stores_them_all():
    assert expression_numbers(0, 2, 4, 8) == [0, 1, 2, 3, 4]


def _metas(out: Path) -> list[tuple[dict, list[str]]]:
    found = []
    for path in sorted(out.glob("*.tar")):
        with tarfile.open(path) as tar:
            names = tar.getnames()
            for m in tar.getmembers():
                if m.name.endswith(".json"):
                    key = m.name.split(".")[0]
                    found.append((json.loads(tar.extractfile(m).read()), [n.split(".", 1)[1] for n in names
                                                                          if n.split(".")[0] == key]))
    return found


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate("casme2", tmp_path_factory.mktemp("samples") / "casme2", subjects=2, clips_per_subject=3, seed=5)


def _ingest(root: Path, out: Path, face_model: Path, **kw) -> dict:
    cfg = IngestConfig(dataset="casme2", root=str(root), out=str(out), labeled=True, workers=0, size=64,
                       face_model=str(face_model), **kw)
    return run_ingest(cfg)


def test_a_sample_stores_its_expression_and_its_frame_numbers(small, tmp_path, face_model):
    summary = _ingest(small, tmp_path, face_model, frames=5, views=("flow",))
    ok = {s.sample_id: s for s in ADAPTERS["casme2"].iter_samples(small) if s.status == STATUS_OK}
    metas = _metas(tmp_path)
    assert summary["written"] == len(ok) == len(metas) > 0
    assert inspect_dir(tmp_path)["problems"] == []
    for meta, members in metas:
        s = ok[meta["sample_id"]]
        assert meta["frames"] == expression_numbers(s.onset, s.apex, s.offset, 5)
        others = [f"t{n}.jpg" for n in meta["frames"] if n not in (s.onset, s.apex)]
        assert members == ["f0.jpg", "f1.jpg", *others, "flow.npy", "json"]
        assert meta["views"] == ["flow"] and meta["apex_policy"] == "sheet"


@pytest.mark.parametrize("damage, status", [("delete", "missing_frames"), ("empty", "bad_frame")])
def test_frames_missing_midway_fail_that_sample_only(small, tmp_path, face_model, damage, status):
    """A deleted frame is caught by the adapter's gap check; an unreadable one (zero bytes) at ingest."""
    import shutil

    root = tmp_path / "casme2"
    shutil.copytree(small, root)
    samples = [s for s in ADAPTERS["casme2"].iter_samples(root) if s.status == STATUS_OK]
    victim = next(s for s in samples if s.offset - s.apex >= 2)
    gone = (victim.apex + victim.offset) // 2  # after the apex: the (onset, apex) pair alone would not notice
    clip = next(c for c in ADAPTERS["casme2"].iter_clips(root) if c.key == f"{victim.subject}/{victim.clip}")
    path = Path(frame_files(clip)[gone])
    path.unlink() if damage == "delete" else path.write_bytes(b"")
    summary = _ingest(root, tmp_path / "out", face_model)
    rows = [r for p in sorted((tmp_path / "out").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    bad = [r for r in rows if r["status"] != STATUS_OK]
    assert [r["sample_id"] for r in bad] == [victim.sample_id]
    assert bad[0]["status"] == status and bad[0]["reason"]
    if status == "bad_frame":
        assert f"frame {gone} of " in bad[0]["reason"] and "zero-byte" in bad[0]["reason"]
    assert summary["written"] == len(samples) - 1 == len(rows) - 1
    assert inspect_dir(tmp_path / "out")["problems"] == []


def test_frames_and_views_options_are_checked():
    with pytest.raises(MerDataError, match="--frames 2"):
        IngestConfig(labeled=True, frames=2)
    with pytest.raises(MerDataError, match="--views"):
        IngestConfig(labeled=True, views=("strain",))
    with pytest.raises(MerDataError, match="need --labeled"):
        IngestConfig(frames=8)


@pytest.mark.parametrize("args, words", [(["--labeled", "--frames", "2"], "--frames 2"),
                                         (["--labeled", "--views", "flow,strain"], "--views flow,strain"),
                                         (["--views", "flow"], "need --labeled")])
def test_cli_frames_and_views_errors_are_one_line(small, tmp_path, args, words):
    from typer.testing import CliRunner

    import cli

    out = CliRunner().invoke(cli.data_app, ["ingest", "casme2", "--root", str(small), "--out", str(tmp_path), *args])
    assert out.exit_code != 0 and words in out.output and len(out.output.strip().splitlines()) == 1
    assert "Traceback" not in out.output
