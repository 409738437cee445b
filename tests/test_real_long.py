"""The long-video sheets, CAS(ME)^2 and SAMM Long Videos, read from the real copies in ../shared/me-annotations (skipped
without them): the facts ../shared/DATASETS.md marks [V], and the micro-expression samples the adapters make of them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from manifests.build import SplitConfig, build_manifest
from mer_data import MerDataError
from mer_data.datasets import ADAPTERS
from mer_data.sheets import read_headerless, read_sheet, read_values, to_text
from real_trees import ANN, build_samm_lv, build_trees, needs_shared

pytestmark = needs_shared
CASME_SQ = ANN / "casme_sq" / "CASME_sq_gt.xlsx"
SAMM_LV = ANN / "samm_lv" / "SAMMLV_gt.xlsx"
LV_COLUMNS = ["Subject", "Filename", "Onset", "Apex", "Offset", "Type", "Action Units"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("real-long")
    out = build_trees(base, ["casme_sq", "samm_lv"])
    (base / "samm_lv_alone").mkdir()
    out["samm_lv_alone"] = build_samm_lv(base / "samm_lv_alone", with_samm_sheet=False)
    return out


def _ok(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["status"] == "ok"]


def test_casme_sq_sheet_facts():
    sheet = read_headerless(CASME_SQ, ["subject", "name", "onset", "apex", "offset", "au", "emotion", "type", "self"])
    rows = [r.cells for r in sheet.rows]
    assert (sheet.name, sheet.header_row, len(rows)) == ("CASFEcode_final", 0, 357)  # the first row is data
    assert Counter(r["type"] for r in rows) == {"macro-expression": 300, "micro-expression": 57}
    assert len({r["subject"] for r in rows}) == 22 and all(isinstance(r["subject"], int) for r in rows)
    assert Counter(r["emotion"] for r in rows) == {"negative": 126, "positive": 124, "others": 82, "surprise": 25}
    assert [r["type"] for r in rows if r["offset"] == 0] == ["macro-expression"] * 44
    assert Counter(type(r["au"]) for r in rows) == {int: 213, str: 144}
    assert sum(r["self"] == "happyiness" for r in rows) == 1
    assert len({(r["subject"], r["name"].rsplit("_", 1)[0]) for r in rows}) == 95
    codes = read_values(CASME_SQ, "naming rule2")[1]
    assert len(codes) == 9 and ("0101", "disgust1") in codes and all(isinstance(c, str) for c, _ in codes)


def test_casme_sq_micro_rows_are_the_samples(trees):
    root = trees["casme_sq"]
    samples = list(ADAPTERS["casme_sq"].iter_samples(root))
    assert len(samples) == 57 and all(s.status == "ok" for s in samples)
    assert ADAPTERS["casme_sq"].other_rows(root) == {"macro-expression": 300}
    first = samples[0]
    assert (first.sample_id, first.subject, first.clip) == ("casme_sq/s15/disgust2_3", "casme_sq/s15", "15_0102disgust2x")
    assert (first.onset, first.apex, first.offset, first.emotion, first.au) == (699, 703, 707, "others", "43")
    assert len({s.subject for s in samples}) == 14 and len({(s.subject, s.clip) for s in samples}) == 33
    clips = {(c.subject, c.clip) for c in ADAPTERS["casme_sq"].iter_clips(root)}
    assert len(clips) == 95 and {(s.subject, s.clip) for s in samples} <= clips  # whole videos, for ingest
    manifest = build_manifest(SplitConfig("casme_sq", root=root))
    assert Counter(r["label"] for r in _ok(manifest.rows)) == {"negative": 21, "others": 19, "surprise": 9, "positive": 8}
    assert manifest.metadata()["sheets"]["casme_sq"]["other_rows"] == {"macro-expression": 300}
    three = _ok(build_manifest(SplitConfig("casme_sq", classes=3, root=root)).rows)
    assert len(three) == 38 and len({r["subject"] for r in three}) == 9


def test_samm_lv_sheet_facts():
    sheet = read_sheet(SAMM_LV, LV_COLUMNS)
    rows = [r.cells for r in sheet.rows]
    assert (sheet.name, sheet.header_row, len(rows)) == ("FACS_Movement_Only", 10, 502)
    assert Counter(r["Type"] for r in rows) == {"Macro": 343, "Micro - 1/2": 159}
    assert len({r["Subject"] for r in rows}) == 30 and all(isinstance(r["Subject"], str) for r in rows)
    assert len({r["Filename"].rsplit("_", 1)[0] for r in rows}) == 147
    assert sum(r["Apex"] == -1 for r in rows) == 6
    assert {r["Filename"] for r in rows if r["Apex"] == -1 and r["Type"] != "Macro"} == {"028_4_1", "032_3_1"}
    micro = [r for r in rows if r["Type"] != "Macro"]
    assert all(isinstance(r[c], int) for r in micro for c in ("Onset", "Apex", "Offset"))
    assert any(isinstance(r["Onset"], float) for r in rows if r["Type"] == "Macro")


def test_samm_lv_frames_are_the_samm_clips_shifted_per_video():
    samm = {to_text(r.cells["Filename"]): r.cells for r in read_sheet(
        ANN / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx", ["Filename", "Onset Frame", "Offset Frame"], "MICRO_ONLY").rows}
    micro = [r.cells for r in read_sheet(SAMM_LV, LV_COLUMNS).rows if r.cells["Type"] != "Macro"]
    assert {r["Filename"] for r in micro} == set(samm)
    shifts: dict[str, set[tuple[int, int]]] = {}
    for r in micro:
        clip = samm[r["Filename"]]
        shifts.setdefault(r["Filename"].rsplit("_", 1)[0], set()).add(
            (clip["Onset Frame"] - r["Onset"], clip["Offset Frame"] - r["Offset"]))
    assert all(len(s) == 1 and onset == offset for s in shifts.values() for onset, offset in s)  # one shift a video
    assert (shifts["006_1"], shifts["006_2"], shifts["010_2"]) == ({(2000, 2000)}, {(100, 100)}, {(0, 0)})


def test_samm_lv_micro_rows_labelled_from_the_samm_sheet(trees):
    root = trees["samm_lv"]
    assert ADAPTERS["samm_lv"].other_rows(root) == {"Macro": 343}
    manifest = build_manifest(SplitConfig("samm_lv", root=root))
    by_id = {r["sample_id"]: r for r in manifest.rows}
    assert len(by_id) == 159 and by_id["samm_lv/006/006_1_2"]["clip"] == "006_1"
    assert (by_id["samm_lv/006/006_1_2"]["onset"], by_id["samm_lv/006/006_1_2"]["emotion"]) == (3562, "Anger")
    for sample_id, middle in (("samm_lv/028/028_4_1", 1071 + (1134 - 1071) // 2), ("samm_lv/032/032_3_1", 1933)):
        assert (by_id[sample_id]["apex"], by_id[sample_id]["apex_policy"]) == (middle, "middle")
        assert by_id[sample_id]["fixes"] == "samm_lv-apex-not-annotated"
    assert Counter(r["label"] for r in _ok(manifest.rows)) == {"anger": 57, "contempt": 12, "happiness": 26,
                                                               "surprise": 15, "others": 26}
    three = _ok(build_manifest(SplitConfig("samm_lv", classes=3, root=root)).rows)
    assert len(three) == 133 and len({r["subject"] for r in three}) == 28
    objective = _ok(build_manifest(SplitConfig("samm_lv", classes="objective", root=root)).rows)
    assert Counter(r["label"] for r in objective) == {"VII": 84, "I": 24, "III": 20, "II": 13, "IV": 8, "VI": 7, "V": 3}


def test_samm_lv_without_the_samm_sheet_has_no_labels(trees):
    samples = list(ADAPTERS["samm_lv"].iter_samples(trees["samm_lv_alone"]))
    assert len(samples) == 159 and all(s.status == "ok" and s.emotion == "" for s in samples)  # ingest still works
    with pytest.raises(MerDataError, match="no usable samm_lv samples .*no_label 159"):
        build_manifest(SplitConfig("samm_lv", root=trees["samm_lv_alone"]))
