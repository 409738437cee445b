"""Spotting manifests of the real CAS(ME)^2 and SAMM Long Videos sheets in ../shared/me-annotations (skipped without
them): every macro and micro row is an interval (../shared/DATASETS.md: 300 + 57, 22 subjects; 343 + 159, 30 subjects)."""

from __future__ import annotations

from collections import Counter

import pytest

from manifests.spot import SpotConfig, build_spot_manifest
from mer_data.sheets import read_headerless, read_values, to_int, to_text
from real_trees import build_trees, touch_frames, needs_shared

pytestmark = needs_shared


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    roots = build_trees(tmp_path_factory.mktemp("real-spot"), ["casme_sq", "samm_lv"])
    root = roots["casme_sq"]
    sheet = root / "CAS(ME)^2code_final.xlsx"
    folders = {to_text(r[2]): to_text(r[1]) for r in read_values(sheet, "naming rule1")[1]}
    codes = {to_text(r[1]): to_text(r[0]) for r in read_values(sheet, "naming rule2")[1]}
    for row in read_headerless(sheet, ["subject", "name", "onset", "apex", "offset"]).rows:
        if row.cells["offset"] == 0:  # the tree holds onset..onset of these rows; spotting takes apex as offset
            folder, video = folders[to_text(row.cells["subject"])], to_text(row.cells["name"]).rsplit("_", 1)[0]
            onset, apex = to_int(row.cells["onset"])[0], to_int(row.cells["apex"])[0]
            touch_frames(root / "rawpic" / folder / f"{folder[1:]}_{codes[video]}{video}x",
                         [f"img{n}.jpg" for n in range(onset, apex + 1)])
    return roots


def test_casme_sq_every_row_is_an_interval(trees):
    m = build_spot_manifest(SpotConfig("casme_sq", root=trees["casme_sq"]))
    assert Counter((r["type"], r["status"]) for r in m.intervals) == {("macro", "ok"): 300, ("micro", "ok"): 57}
    assert len({r["subject"] for r in m.intervals}) == 22 and len({r["fold"] for r in m.videos}) == 22
    assert len(m.videos) == 95  # 95 subject/video pairs in the sheet, each a folder of the tree
    assert sum("spot-offset0-apex" in r["fixes"] for r in m.intervals) == 44
    assert {r["video"] for r in m.intervals if r["type"] == "micro"} <= {v["video"] for v in m.videos}
    assert all(r["video"].count("/") == 2 and r["video"].split("/")[2][:2].isdigit() for r in m.intervals)


def test_samm_lv_every_row_is_an_interval(trees):
    m = build_spot_manifest(SpotConfig("samm_lv", root=trees["samm_lv"]))
    assert Counter(r["type"] for r in m.intervals) == {"macro": 343, "micro": 159}
    assert len({r["subject"] for r in m.intervals}) == 30 and len({r["video"] for r in m.intervals}) == 147
    ok = [r for r in m.intervals if r["status"] == "ok"]
    assert Counter(r["type"] for r in ok) == {"micro": 159}  # the tree holds the micro rows' frames only
    assert sum("spot-float-frame" in r["fixes"] for r in m.intervals) == 178  # macro frame numbers written as floats
    assert all(r["emotion"] for r in ok)  # joined from the SAMM clip sheet
