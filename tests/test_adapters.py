"""Adapters on small trees built here in each dataset's real format, and on the synthetic trees (folders and videos)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from mer_data import MerDataError
from mer_data.datasets import ADAPTERS, adapter, clip_for
from mer_data.frames import frame_numbers, iter_frames

CASME2_HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
                 "Estimated Emotion"]
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]


def write_xlsx(path: Path, title: str, rows: list[list]) -> Path:
    wb = Workbook()
    wb.active.title = title
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def touch(folder: Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


@pytest.fixture
def synth(synth_root):
    """The session's synthetic trees (tests/conftest.py): `synth(dataset, video=False) -> root`."""
    return synth_root


@pytest.fixture
def casme2_root(tmp_path) -> Path:
    rows = [CASME2_HEADER,
            ["01", "EP02_01f", None, 46, 59, 86, None, 12, "happiness"],
            ["04", "EP12_01f", None, 261, "/", 321, None, "4+7", "disgust"],  # a known quirk: the apex is '/'
            ["02", "EP03_02", None, "abc", 10, 20, None, 18, "others"],
            ["02", "EP04_02", None, 10, 30, 20, None, 4, "others"],  # apex after offset, no known correction
            ["03", "EP05_01", None, 10, 12, 20, None, 4, "others"],  # no folder on disk
            ["03", "EP06_01", None, 10, 12, 20, None, 4, "others"],  # frame 15 missing
            ["01", "EP02_01f", None, 46, 59, 86, None, 12, "happiness"],  # repeated row
            [None, None, None, None, None, None, None, None, None]]
    write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", "Sheet1", rows)
    raw = tmp_path / "CASME2_RAW_selected"
    touch(raw / "sub01" / "EP02_01f", [f"img{n}.jpg" for n in range(46, 87)])
    touch(raw / "sub04" / "EP12_01f", [f"img{n}.jpg" for n in range(261, 322)])
    touch(raw / "sub03" / "EP06_01", [f"img{n}.jpg" for n in range(10, 21) if n != 15])
    (raw / "sub01" / "Desktop - Shortcut.lnk").touch()  # a stray file seen in a real release
    return tmp_path


def test_casme2_rows_become_samples_with_statuses(casme2_root):
    samples = list(ADAPTERS["casme2"].iter_samples(casme2_root))
    got = {s.sample_id: (s.status, s.apex, s.fixes) for s in samples}
    assert got["casme2/sub01/EP02_01f"] == ("ok", 59, ())
    assert got["casme2/sub04/EP12_01f"] == ("ok", 291, ("casme2-sub04-EP12_01f-apex",))
    assert got["casme2/sub02/EP03_02"][0] == "bad_frame_number"
    assert got["casme2/sub02/EP04_02"][0] == "bad_apex"
    assert got["casme2/sub03/EP05_01"][0] == "missing_frames"
    assert got["casme2/sub03/EP06_01"][0] == "missing_frames"
    assert got["casme2/sub01/EP02_01f~row8"][0] == "duplicate"
    by_id = {s.sample_id: s for s in samples}
    assert "OnsetFrame 'abc' is not a frame number" in by_id["casme2/sub02/EP03_02"].reason
    assert "first missing: 15" in by_id["casme2/sub03/EP06_01"].reason
    assert by_id["casme2/sub01/EP02_01f"].subject == "casme2/sub01" and by_id["casme2/sub01/EP02_01f"].row == 2
    assert len(samples) == 7  # the blank row is not a sample


def test_casme2_without_fixes_the_slash_apex_is_bad(casme2_root):
    sample = next(s for s in ADAPTERS["casme2"].iter_samples(casme2_root, apply_fixes=False) if s.clip == "EP12_01f")
    assert (sample.status, sample.fixes) == ("bad_apex", ())
    assert "ApexFrame '/' is not a frame number" in sample.reason


def test_casme2_cropped_release_and_clips(casme2_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("cropped")
    write_xlsx(root / "CASME2-coding-20190701.xlsx", "Sheet1",
               [CASME2_HEADER + ["Objective Classes"], ["01", "EP02_01f", None, 46, 59, 86, None, 12, "happiness", 1]])
    touch(root / "Cropped" / "sub01" / "EP02_01f", [f"reg_img{n}.jpg" for n in range(46, 87)])
    [sample] = ADAPTERS["casme2"].iter_samples(root)
    assert sample.status == "ok" and sample.source.endswith("Cropped/sub01/EP02_01f")
    assert frame_numbers(clip_for(sample)) == list(range(46, 87))
    clips = list(ADAPTERS["casme2"].iter_clips(casme2_root))
    assert [c.key for c in clips] == ["casme2/sub01/EP02_01f", "casme2/sub03/EP06_01", "casme2/sub04/EP12_01f"]


def test_samm_note_rows_quirks_and_bad_apex(tmp_path):
    notes = [["SAMM Dataset - Master FACS Codes"]] + [[] for _ in range(12)]
    rows = notes + [SAMM_HEADER,
                    ["006", "006_1_2", 1, 100, 105, 110, "=SUM(F15-D15)+1", "Micro - 1/2", "4+7", "Anger", 3, None],
                    ["028", "028_4_1", 4, 1071, 1143, 1134, "=SUM(F16-D16)+1", "Micro - 1/2", "A14C", "Contempt", 7, None],
                    ["007", "007_2_1", 2, 200, 150, 210, "=SUM(F17-D17)+1", "Micro - 1/2", "12", "Happiness", 1, None]]
    write_xlsx(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", "MICRO_ONLY", rows)
    touch(tmp_path / "SAMM" / "006" / "006_1_2", [f"006_{n:05d}.jpg" for n in range(100, 111)])
    touch(tmp_path / "SAMM" / "028" / "028_4_1", [f"028_{n:05d}.jpg" for n in range(1071, 1135)])
    touch(tmp_path / "SAMM" / "007" / "007_2_1", [f"007_{n:05d}.jpg" for n in range(200, 211)])
    got = {s.sample_id: s for s in ADAPTERS["samm"].iter_samples(tmp_path)}
    assert (got["samm/006/006_1_2"].status, got["samm/006/006_1_2"].row) == ("ok", 15)
    assert (got["samm/028/028_4_1"].apex, got["samm/028/028_4_1"].apex_policy) == (1102, "middle")
    assert got["samm/007/007_2_1"].status == "bad_apex" and "150 outside" in got["samm/007/007_2_1"].reason


def test_casme3_text_numbers_several_mes_per_video_and_upper_case_letter(tmp_path):
    rows = [CASME3_HEADER, ["spNO.1", "a", "5", "7", "9", "5", "II", "others"],
            ["spNO.1", "a", "20", "22", "25", "4", "III", "disgust"], ["spNO.14", "J", "1", "2", "3", "14", "VII", "Others"],
            ["spNO.1", "a", "5", "7", "9", "5", "II", "others"]]
    write_xlsx(tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", "label", rows)
    base = tmp_path / "part_A" / "data" / "part_A"
    touch(base / "spNO.1" / "a" / "color", [f"{n}.jpg" for n in range(0, 30)])
    touch(base / "spNO.14" / "j" / "color", [f"{n}.jpg" for n in range(0, 4)])
    samples = list(ADAPTERS["casme3"].iter_samples(tmp_path))
    assert [(s.sample_id, s.status) for s in samples] == [
        ("casme3/spNO.1/a/5", "ok"), ("casme3/spNO.1/a/20", "ok"), ("casme3/spNO.14/j/1", "ok"),
        ("casme3/spNO.1/a/5~row5", "duplicate")]
    assert (samples[1].onset, samples[1].apex, samples[1].offset) == (20, 22, 25)
    assert [c.key for c in ADAPTERS["casme3"].iter_clips(tmp_path)] == ["casme3/spNO.1/a", "casme3/spNO.14/j"]


@pytest.fixture
def smic_root(tmp_path) -> Path:
    hs = tmp_path / "SMIC_all_raw" / "HS"
    touch(hs / "s1" / "micro" / "negative" / "s1_ne_01", [f"image{n:06d}.bmp" for n in range(10, 15)])
    (hs / "s1" / "micro" / "positive" / "s1_po_01").mkdir(parents=True)  # empty clip folder
    touch(hs / "s10" / "micro" / "surprise" / "s10_sur_01", ["image000001.bmp", "image000002.bmp", "image000004.bmp"])
    touch(hs / "s2" / "micro" / "happy" / "s2_ha_01", [f"image{n:06d}.bmp" for n in range(3)])
    touch(hs / "s1" / "non_micro" / "negative" / "s1_ne_09", ["image000001.bmp"])
    return tmp_path


def test_smic_labels_from_folders_and_apex_policy(smic_root):
    samples = list(ADAPTERS["smic"].iter_samples(smic_root))
    assert [(s.sample_id, s.emotion, s.status) for s in samples] == [
        ("smic/s1/s1_ne_01", "negative", "ok"), ("smic/s1/s1_po_01", "positive", "missing_frames"),
        ("smic/s2/s2_ha_01", "happy", "ok"), ("smic/s10/s10_sur_01", "surprise", "missing_frames")]
    assert (samples[0].onset, samples[0].apex, samples[0].offset, samples[0].apex_policy) == (10, 12, 14, "middle")
    assert "1 of frames 1..4 missing" in samples[3].reason


@pytest.mark.parametrize("options, message", [
    ({"camera": "VIS"}, "no SMIC VIS folder"), ({"camera": "XYZ"}, "--camera 'XYZ'"),
    ({"smic_apex": "peak"}, "--smic-apex 'peak'"), ({"annotations": Path("x.xlsx")}, "SMIC has no annotation sheet"),
])
def test_smic_bad_options(smic_root, options, message):
    with pytest.raises(MerDataError, match=message):
        list(ADAPTERS["smic"].iter_samples(smic_root, **options))


@pytest.mark.parametrize("name", ["casme2", "samm", "casme3", "smic"])
def test_missing_or_empty_root_is_one_clear_error(tmp_path, name):
    with pytest.raises(MerDataError, match="is not a folder"):
        list(ADAPTERS[name].iter_samples(tmp_path / "absent"))
    with pytest.raises(MerDataError, match="is empty"):
        list(ADAPTERS[name].iter_samples(tmp_path))


def test_missing_sheet_wrong_sheet_and_missing_annotations(tmp_path):
    (tmp_path / "CASME2_RAW_selected").mkdir()
    with pytest.raises(MerDataError, match=r"no CASME II coding sheet .*pass --annotations"):
        list(ADAPTERS["casme2"].iter_samples(tmp_path))
    with pytest.raises(MerDataError, match="--annotations .*nope.xlsx does not exist"):
        list(ADAPTERS["casme2"].iter_samples(tmp_path, tmp_path / "nope.xlsx"))
    write_xlsx(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", "Sheet1", [SAMM_HEADER])
    with pytest.raises(MerDataError, match="no worksheet 'MICRO_ONLY'"):
        list(ADAPTERS["samm"].iter_samples(tmp_path))
    with pytest.raises(MerDataError, match="unknown dataset 'casme4'"):
        adapter("casme4")


@pytest.mark.parametrize("name", ["casme2", "samm", "smic", "casme3"])
@pytest.mark.parametrize("video", [False, True])
def test_synthetic_tree_round_trip(synth, name, video):
    root = synth(name, video=video)
    samples = list(ADAPTERS[name].iter_samples(root))
    clips = list(ADAPTERS[name].iter_clips(root))
    assert samples and all(s.status == "ok" for s in samples), [s.reason for s in samples if s.status != "ok"]
    truth = json.loads((root / "mer-data-synth.json").read_text())
    micro_clips = truth["samples"] if name == "smic" else truth["clips"]  # SMIC non_micro/ sequences are skipped
    assert (len(samples), len(clips)) == (truth["samples"], micro_clips)
    expected = {(t["clip"].lower() if name == "casme3" else t["clip"], t["emotion"]) + ((t["onset"], t["apex"], t["offset"]) if name != "smic" else ())
                for t in truth["truth"]}
    assert {(s.clip, s.emotion) + ((s.onset, s.apex, s.offset) if name != "smic" else ()) for s in samples} == expected
    assert all(c.kind == ("video" if video else "frames") for c in clips)
    assert {(s.subject, s.clip) for s in samples} == {(c.subject, c.clip) for c in clips}
    sample = samples[-1]
    clip = clip_for(sample)
    assert clip in clips  # the same Clip iter_clips gives, video first frame included
    decoded = dict(iter_frames(clip, [sample.onset, sample.apex, sample.offset]))
    assert all(getattr(img, "ndim", 0) == 3 for img in decoded.values()), decoded
