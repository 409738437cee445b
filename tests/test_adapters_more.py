"""The adapters of CASME, MMEW, 4DME, CAS(ME)^3 Part C, CAS(ME)^2 and SAMM Long Videos, on small trees built here in
each format, and on the synthetic trees; the sheet-versus-folder warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from manifests.build import SplitConfig, build_manifest
from mer_data import MerDataError
from mer_data.datasets import ADAPTERS, clip_for, nominal_fps
from mer_data.frames import frame_numbers
from real_trees import touch_frames as touch

NEW = ("casme", "casme_sq", "samm_lv", "mmew", "4dme", "casme3c")


def write_xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def test_casme_padded_and_unpadded_frames_and_the_au_column(tmp_path):
    header = ["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "AU", "Emotion"]
    write_xlsx(tmp_path / "casme.xlsx", {"Sheet1": [header, [1, "EP01_5", None, 10, 12, None, 20, None, "4+L10", "tense"],
                                                    [12, "EP03_2", None, 95, 99, 100, 105, None, 14, "repression"]]})
    touch(tmp_path / "CASME_raw_selected" / "sub01" / "EP01_5", [f"EP01_5-{n}.jpg" for n in range(10, 21)])
    touch(tmp_path / "CASME_raw_selected" / "sub12" / "EP03_2", [f"EP03_2-{n:03d}.jpg" for n in range(93, 106)])
    first, second = ADAPTERS["casme"].iter_samples(tmp_path)
    assert (first.sample_id, first.status, first.au, first.span) == ("casme/sub01/EP01_5", "ok", "4+L10", (10, 20))
    assert (second.sample_id, second.status, second.span, second.apex) == ("casme/sub12/EP03_2", "ok", (93, 105), 99)
    rows = build_manifest(SplitConfig("casme", root=tmp_path)).rows
    assert [(r["label"], r["aus"]) for r in rows] == [("others", ["4", "L10"]), ("others", ["14"])]
    assert rows[0]["warnings"] == "" and rows[1]["warnings"].startswith("first frame on disk 93 is 2 before the sheet's")
    tolerant = build_manifest(SplitConfig("casme", root=tmp_path, frame_tolerance=2)).rows
    assert [r["warnings"] for r in tolerant] == ["", ""] and all(r["status"] == "ok" for r in tolerant)


def test_mmew_finds_the_clip_in_its_emotion_folder(tmp_path):
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
              "remarks"]
    write_xlsx(tmp_path / "MMEW_Micro_Exp.xlsx", {"Sheet1": [header, [1, "S01-01-001", 1, 15, 31, "6+12", "happiness", None],
                                                             [2, "S02-01-001", 1, 5, 9, "10R", "others", None]]})
    touch(tmp_path / "MMEW" / "Micro_Expression" / "happiness" / "S01-01-001", [f"{n}.jpg" for n in range(1, 32)])
    first, second = ADAPTERS["mmew"].iter_samples(tmp_path)
    assert (first.subject, first.status, first.source.endswith("happiness/S01-01-001")) == ("mmew/S01", "ok", True)
    assert second.status == "missing_frames"
    assert [c.key for c in ADAPTERS["mmew"].iter_clips(tmp_path)] == ["mmew/S01/S01-01-001"]


def test_4dme_multi_label_rows_are_excluded_and_static_aus_dropped(tmp_path):
    header = ["sub_ID", "fold_name", "Onset", "Apex", "Offset", "AUs", "Emotion"]
    rows = [header, ["S01", "S01_1st_001_01_1", 30, 35, 40, "AU4(k)+L7", "Negative"],
            ["S01", "S01_1st_001_02_1", 50, 55, 60, "1+2", "Surprise+Positive"]]
    write_xlsx(tmp_path / "4DME_Labelling_Micro_release v1.xlsx", {"Sheet1": rows})
    for clip, first in (("S01_1st_001_01_1", 30), ("S01_1st_001_02_1", 50)):
        touch(tmp_path / "gray_micro" / "S01" / clip, [f"img{n}.jpg" for n in range(first, first + 11)])
    rows = build_manifest(SplitConfig("4dme", root=tmp_path)).rows
    assert [(r["status"], r["label"], r["aus"]) for r in rows] == [("ok", "negative", ["L7"]),
                                                                    ("excluded_class", None, ["1", "2"])]
    assert "names several emotions" in rows[1]["reason"] and rows[0]["AU4"] == 0


def test_casme3c_takes_the_middle_frame_and_reads_full_width_commas(tmp_path):
    rows = [["sub", "count", "onset", "offset", "au", "emotion"], [1, 1, 100, 131, "1，2", "surprise"],
            [1, 1, 100, 131, "4", "disgust"]]
    write_xlsx(tmp_path / "CAS(ME)3_part_C_ME.xlsx", {"Sheet1": rows})
    touch(tmp_path / "part_C" / "ME_C" / "01" / "1" / "color", [f"{n}.jpg" for n in range(100, 132)])
    first, repeated = ADAPTERS["casme3c"].iter_samples(tmp_path)
    assert (first.sample_id, first.apex, first.apex_policy, first.status) == ("casme3c/01/1", 115, "middle", "ok")
    assert repeated.status == "duplicate"
    row = build_manifest(SplitConfig("casme3c", root=tmp_path)).rows[0]
    assert (row["label"], row["aus"], row["AU1"], row["AU2"]) == ("surprise", ["1", "2"], 1, 1)
    with pytest.raises(MerDataError, match="--classes objective is not defined for casme3c"):
        build_manifest(SplitConfig("casme3c", root=tmp_path, classes="objective"))


@pytest.fixture
def casme_sq_root(tmp_path) -> Path:
    data = [[1, "anger1_1", 100, 105, 110, 4, "negative", "micro-expression", "anger"],
            [1, "anger1_2", 200, 210, 0, "4+7", "negative", "macro-expression", "anger"],
            [2, "happy1_1", 50, 55, 60, 12, "positive", "micro-expression", "happyiness"],
            [1, "sad9_1", 10, 12, 14, 1, "others", "micro-expression", "sadness"]]
    sheets = {"CASMEcode_final": data, "naming rule1": [[15, "s15", 1]] * 3 + [[16, "s16", 2]],
              "naming rule2": [["0401", "anger1"], ["0502", "happy1"]]}
    write_xlsx(tmp_path / "CAS(ME)^2code_final.xlsx", sheets)
    touch(tmp_path / "rawpic" / "s15" / "15_0401girlcrashing", [f"img{n}.jpg" for n in range(1, 300)])
    return tmp_path


def test_casme_sq_micro_rows_in_whole_videos_and_bad_names(casme_sq_root):
    samples = list(ADAPTERS["casme_sq"].iter_samples(casme_sq_root))
    assert [(s.sample_id, s.clip, s.status) for s in samples] == [
        ("casme_sq/s15/anger1_1", "15_0401girlcrashing", "ok"), ("casme_sq/s16/happy1_1", "16_0502", "missing_frames"),
        ("casme_sq/s15/sad9_1", "sad9", "bad_row")]
    assert "'sad9' of 'sad9_1' is not in 'naming rule2'" in samples[2].reason and samples[0].span is None
    assert ADAPTERS["casme_sq"].other_rows(casme_sq_root) == {"macro-expression": 1}
    [clip] = ADAPTERS["casme_sq"].iter_clips(casme_sq_root)
    assert clip == clip_for(samples[0]) and frame_numbers(clip) == list(range(1, 300))


def test_samm_lv_apex_minus_one_floats_and_labels_from_the_samm_sheet(tmp_path):
    notes = [["SAMM Long Videos Dataset - FACS Codes"]] + [[] for _ in range(8)]
    header = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type", "Action Units",
              "Notes"]
    rows = [["006", "006_1_1", 1, 566.4, 647.6, 743.2, 177.8, "Macro", "4(B/C)+7B", None],
            ["006", "006_1_2", 1, 100, -1, 120, 21, "Micro - 1/2", "4+7", None],
            ["006", "006_1_3", 1, 130, 131.5, 140, 11, "Micro - 1/2", 4, None]]
    write_xlsx(tmp_path / "SAMM_LongVideos_V2_Release.xlsx", {"FACS_Movement_Only": notes + [header] + rows})
    touch(tmp_path / "SAMM_longvideos" / "006_1", [f"006_1_{n:05d}.jpg" for n in range(0, 200)])
    first, second = ADAPTERS["samm_lv"].iter_samples(tmp_path)
    assert (first.apex, first.apex_policy, first.fixes, first.clip) == (110, "middle", ("samm_lv-apex-not-annotated",),
                                                                       "006_1")
    assert second.status == "bad_apex" and "131.5 is not a whole frame number" in second.reason
    assert first.emotion == "" and ADAPTERS["samm_lv"].other_rows(tmp_path) == {"Macro": 1}
    samm_header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
                   "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
    write_xlsx(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", {"MICRO_ONLY": [samm_header, [
        "006", "006_1_2", 1, 2100, 2110, 2120, 21, "Micro - 1/2", "4+7", "Anger", 3, None]]})
    first = next(ADAPTERS["samm_lv"].iter_samples(tmp_path))
    assert (first.emotion, first.objective, first.onset) == ("Anger", "3", 100)  # labels joined, frames the video's


@pytest.mark.parametrize("name", NEW)
def test_synthetic_tree_round_trip(synth_root, name):
    root = synth_root(name)
    samples = list(ADAPTERS[name].iter_samples(root))
    clips = list(ADAPTERS[name].iter_clips(root))
    truth = json.loads((root / "mer-data-synth.json").read_text())
    assert samples and all(s.status == "ok" for s in samples), [s.reason for s in samples if s.status != "ok"]
    assert (len(samples), len(clips)) == (truth["samples"], truth["clips"])
    assert ({(s.onset, s.apex, s.offset, s.emotion) for s in samples}
            == {(t["onset"], t["apex"], t["offset"], t["emotion"]) for t in truth["truth"]})
    assert all(clip_for(s) in clips for s in samples)  # the same Clip iter_clips gives: ingest finds the frames
    assert nominal_fps(name) == ADAPTERS[name].FPS and all(s.au for s in samples)
    manifest = build_manifest(SplitConfig(name, root=root))
    assert any(r["status"] == "ok" for r in manifest.rows) and all(r["aus"] for r in manifest.rows)
    warned = [r["sample_id"] for r in manifest.rows if r["warnings"]]
    assert warned == ([manifest.rows[-1]["sample_id"]] if name == "casme" else [])  # the one folder made longer


@pytest.mark.parametrize("name", NEW)
def test_missing_root_and_sheet(tmp_path, name):
    with pytest.raises(MerDataError, match="is not a folder"):
        list(ADAPTERS[name].iter_samples(tmp_path / "absent"))
    (tmp_path / "x").mkdir()
    with pytest.raises(MerDataError, match="pass --annotations"):
        list(ADAPTERS[name].iter_samples(tmp_path))
