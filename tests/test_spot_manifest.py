"""Spotting manifests of the synthetic long videos: every sheet row an interval, every video a row, LOSO by subject."""

from __future__ import annotations

import os
import shutil
from collections import Counter

import pytest
from typer.testing import CliRunner

from cli import data_app, eval_app
from manifests.spot import SpotConfig, build_spot_manifest, read_spot_manifest, write_spot_manifest
from mer_data import MerDataError
from mer_data.datasets.longvideo import is_micro
from mer_data.datasets import casme_sq, samm_lv
from mer_data.sheets import read_headerless
from mer_data.spot.predictions import write_predictions


def _sheet_types(dataset, root) -> Counter:
    if dataset == "casme_sq":
        rows = read_headerless(casme_sq.annotation_file(root), casme_sq.COLUMNS).rows
        return Counter("micro" if is_micro(r.cells["type"]) else "macro" for r in rows)
    rows = samm_lv._read(root, None).rows
    return Counter("micro" if is_micro(r.cells["Type"]) else "macro" for r in rows)


@pytest.mark.parametrize("dataset", ["casme_sq", "samm_lv"])
def test_every_row_is_an_interval_and_every_video_a_row(synth_root, dataset):
    root = synth_root(dataset)
    m = build_spot_manifest(SpotConfig(dataset, root=root))
    types = _sheet_types(dataset, root)
    assert Counter(r["type"] for r in m.intervals) == types and types["macro"] > 0  # macro rows are intervals now
    assert all(r["status"] == "ok" for r in m.intervals + m.videos)
    for video in m.videos:
        files = [f for f in os.listdir(video["source"]) if f.endswith(".jpg")]
        assert video["frames"] == len(files) == video["last_frame"] - video["first_frame"] + 1
        assert video["fold"] == video["subject"] and video["video"].startswith(video["subject"] + "/")
    span = {v["video"]: (v["first_frame"], v["last_frame"]) for v in m.videos}
    for r in m.intervals:
        assert span[r["video"]][0] <= r["onset"] <= r["offset"] <= span[r["video"]][1]
        assert r["fold"] == r["subject"]
    assert len({v["subject"] for v in m.videos}) == 3  # the synthetic subjects = folds


def test_casme3_has_micro_intervals_only(synth_root):
    m = build_spot_manifest(SpotConfig("casme3", root=synth_root("casme3")))
    assert {r["type"] for r in m.intervals} == {"micro"} and all(r["status"] == "ok" for r in m.intervals)
    assert {r["video"] for r in m.intervals} <= {v["video"] for v in m.videos}


def test_a_video_missing_on_disk_marks_its_intervals(synth_root, tmp_path):
    root = shutil.copytree(synth_root("samm_lv"), tmp_path / "samm_lv")
    gone = sorted((root / "SAMM_longvideos").iterdir())[0]
    shutil.rmtree(gone)
    m = build_spot_manifest(SpotConfig("samm_lv", root=root))
    mine = [r for r in m.intervals if r["video"].endswith("/" + gone.name)]
    assert mine and all(r["status"] == "missing_frames" and r["fold"] is None for r in mine)
    assert [v["status"] for v in m.videos if v["video"].endswith("/" + gone.name)] == ["missing_frames"]
    assert all(r["status"] == "ok" for r in m.intervals if r not in mine)


def test_not_a_long_video_dataset_is_an_error():
    with pytest.raises(MerDataError, match="casme2.*no long videos"):
        SpotConfig("casme2")


def test_split_spot_then_score_the_ground_truth(synth_root, tmp_path):
    out = tmp_path / "spot.parquet"
    runner = CliRunner()
    result = runner.invoke(data_app, ["splits", "casme_sq", "--task", "spot", "--root", str(synth_root("casme_sq")),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    intervals, videos, meta = read_spot_manifest(out)
    assert meta["task"] == "spot" and len(videos) == len({v["video"] for v in videos})
    truth = [{"video": r["video"], "onset": r["onset"], "offset": r["offset"], "type": r["type"]} for r in intervals]
    preds = write_predictions(truth + [{"video": videos[0]["video"], "onset": videos[0]["first_frame"],
                                        "offset": videos[0]["first_frame"] + 2, "type": "micro"}], tmp_path / "p.csv")
    result = runner.invoke(eval_app, ["spot", "--manifest", str(out), "--predictions", str(preds)])
    assert result.exit_code == 0, result.output
    overall = next(line for line in result.output.splitlines() if line.startswith("all") and "overall" in line)
    assert overall.split()[2:5] == [str(len(intervals)), "1", "0"]  # every ground truth found, one FP
    bad = tmp_path / "bad.csv"
    bad.write_text("video,onset,offset\nnope,1,2\n")
    result = runner.invoke(eval_app, ["spot", "--manifest", str(out), "--predictions", str(bad)])
    assert result.exit_code == 2 and "row 2: video 'nope' is not in the manifest" in result.output


def test_manifest_round_trip(synth_root, tmp_path):
    m = build_spot_manifest(SpotConfig("samm_lv", root=synth_root("samm_lv")))
    intervals, videos, _ = read_spot_manifest(write_spot_manifest(m, tmp_path / "m.parquet"))
    assert [r["id"] for r in intervals] == [r["id"] for r in m.intervals]
    assert [v["frames"] for v in videos] == [v["frames"] for v in m.videos]
