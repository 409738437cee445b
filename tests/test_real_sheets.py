"""The published counts, from trees built around the real official sheets in ../shared/me-annotations (skipped without them).

Each tree holds a copy of the sheet and zero-byte frame files for exactly the frames the sheet names, so the adapters
see a dataset as shipped (only existence is checked when building splits). SMIC has no sheet: its HS tree is built
from the official MEGC2019 list, as a user's SMIC_all_raw folder tree would be.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from manifests.build import SplitConfig, build_manifest
from manifests.megc2019 import compare_official, read_official
from mer_data.sheets import read_sheet, to_int, to_text

REPO = Path(__file__).resolve().parents[1]
SHARED = next((p for p in (Path("/work/shared"), REPO.parent / "shared") if (p / "me-annotations").is_dir()), None)
pytestmark = pytest.mark.skipif(SHARED is None, reason="the real sheets (../shared/me-annotations) are not available")
ANN = SHARED / "me-annotations" if SHARED else Path()
OFFICIAL = ANN / "megc2019" / "combined_3class_gt.csv"
SMIC_EMOTION = {0: "negative", 1: "positive", 2: "surprise"}


def _touch_frames(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


def _frames(cells: dict, onset: str, offset: str) -> range:
    first, _ = to_int(cells[onset])
    last, _ = to_int(cells[offset])
    return range(first, last + 1)


def build_casme2(root: Path, sheet_file: str) -> Path:
    shutil.copy(ANN / "casme2" / sheet_file, root)
    for row in read_sheet(root / sheet_file, ["Subject", "Filename", "OnsetFrame", "OffsetFrame"], "Sheet1").rows:
        folder = root / "CASME2_RAW_selected" / f"sub{to_text(row.cells['Subject'])}" / to_text(row.cells["Filename"])
        _touch_frames(folder, [f"img{n}.jpg" for n in _frames(row.cells, "OnsetFrame", "OffsetFrame")])
    return root


def build_samm(root: Path) -> Path:
    name = "SAMM_Micro_FACS_Codes_v2.xlsx"
    shutil.copy(ANN / "samm" / name, root)
    for row in read_sheet(root / name, ["Subject", "Filename", "Onset Frame", "Offset Frame"], "MICRO_ONLY").rows:
        subject = to_text(row.cells["Subject"])
        folder = root / "SAMM" / subject / to_text(row.cells["Filename"])
        _touch_frames(folder, [f"{subject}_{n:05d}.jpg" for n in _frames(row.cells, "Onset Frame", "Offset Frame")])
    return root


def build_casme3(root: Path) -> Path:
    name = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    shutil.copy(ANN / "casme3" / name, root)
    for row in read_sheet(root / name, ["Subject", "Filename", "Onset", "Offset"], "label").rows:
        letter = to_text(row.cells["Filename"]).lower()
        folder = root / "part_A" / "data" / "part_A" / to_text(row.cells["Subject"]) / letter / "color"
        _touch_frames(folder, [f"{n}.jpg" for n in _frames(row.cells, "Onset", "Offset")])
    return root


def build_smic(root: Path) -> Path:
    """SMIC_all_raw/HS/s<k>/micro/<emotion>/s<k>_<code>_<nn>/ with 5 frames each, from the official list's SMIC rows."""
    unpad = lambda text: re.sub(r"^s0*(\d+)", r"s\1", text)  # noqa: E731 — the folders are s1, s1_ne_01
    for k, (dataset, subject, clip, label) in enumerate(read_official(OFFICIAL)):
        if dataset == "smic":
            folder = root / "SMIC_all_raw" / "HS" / unpad(subject) / "micro" / SMIC_EMOTION[label] / unpad(clip)
            _touch_frames(folder, [f"image{1000 * k + n:06d}.bmp" for n in range(5)])
    (root / "SMIC_all_raw" / "HS" / "s1" / "non_micro" / "s1_x_01").mkdir(parents=True)  # must be skipped
    return root


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("real")
    out = {}
    for name, build in [("casme2", lambda r: build_casme2(r, "CASME2-coding-20140508.xlsx")),
                        ("casme2_20190701", lambda r: build_casme2(r, "CASME2-coding-20190701.xlsx")),
                        ("samm", build_samm), ("casme3", build_casme3), ("smic", build_smic)]:
        (base / name).mkdir()
        out[name] = build(base / name)
    megc = base / "megc2019"
    megc.mkdir()
    for name in ("casme2", "samm", "smic"):
        (megc / name).symlink_to(out[name], target_is_directory=True)
    out["megc2019"] = megc
    megc_new = base / "megc2019_20190701"  # the composite from the newer CASME II sheet must come out the same
    megc_new.mkdir()
    for name, source in (("casme2", "casme2_20190701"), ("samm", "samm"), ("smic", "smic")):
        (megc_new / name).symlink_to(out[source], target_is_directory=True)
    out["megc2019_20190701"] = megc_new
    return out


def _ok_counts(cfg: SplitConfig) -> tuple[Counter, list[dict]]:
    rows = build_manifest(cfg).rows
    return Counter(r["label"] for r in rows if r["status"] == "ok"), rows


def test_casme2_5class_246_from_20140508(trees):
    counts, rows = _ok_counts(SplitConfig("casme2", root=trees["casme2"]))
    assert counts == {"happiness": 32, "disgust": 63, "repression": 27, "surprise": 25, "others": 99}
    assert Counter(r["status"] for r in rows) == {"ok": 246, "excluded_class": 9}
    fixed = [r for r in rows if r["fixes"]]
    assert [(r["sample_id"], r["apex"], r["apex_policy"]) for r in fixed] == [("casme2/sub04/EP12_01f", 291, "middle")]
    assert len({r["fold"] for r in rows if r["fold"]}) == 26


def test_casme2_5class_249_from_20190701(trees):
    counts, _ = _ok_counts(SplitConfig("casme2", root=trees["casme2_20190701"]))
    assert sum(counts.values()) == 249 and counts["surprise"] == 28


def test_casme2_without_fixes_keeps_the_slash_apex_as_bad_apex(trees):
    _, rows = _ok_counts(SplitConfig("casme2", root=trees["casme2"], apply_fixes=False))
    bad = [r for r in rows if r["status"] == "bad_apex"]
    assert [r["sample_id"] for r in bad] == ["casme2/sub04/EP12_01f"] and "'/'" in bad[0]["reason"]


def test_samm_5class_136_and_3class_133(trees):
    counts, rows = _ok_counts(SplitConfig("samm", root=trees["samm"]))
    assert counts == {"anger": 57, "contempt": 12, "happiness": 26, "surprise": 15, "others": 26}
    by_id = {r["sample_id"]: r for r in rows}
    assert (by_id["samm/028/028_4_1"]["apex"], by_id["samm/028/028_4_1"]["apex_policy"]) == (1102, "middle")
    assert (by_id["samm/032/032_3_1"]["apex"], by_id["samm/032/032_3_1"]["apex_policy"]) == (4930, "quirk")
    counts3, rows3 = _ok_counts(SplitConfig("samm", classes=3, root=trees["samm"]))
    assert counts3 == {"negative": 92, "positive": 26, "surprise": 15}
    assert len({r["subject"] for r in rows3 if r["status"] == "ok"}) == 28


def test_casme3_7_4_and_3_classes(trees):
    counts7, rows = _ok_counts(SplitConfig("casme3", root=trees["casme3"]))
    assert sum(counts7.values()) == 860 and counts7["others"] == 161
    assert len({r["subject"] for r in rows}) == 94
    by_id = {r["sample_id"]: r for r in rows}
    assert by_id["casme3/spNO.214/c/5"]["offset"] == 34 and by_id["casme3/spNO.214/c/5"]["fixes"]
    assert by_id["casme3/spNO.216/e/0"]["flags"] == "casme3-spNO.216-e-onset"
    assert by_id["casme3/spNO.14/j/1012"]["status"] == "ok"  # the sheet's upper-case 'J'
    counts4, _ = _ok_counts(SplitConfig("casme3", classes=4, root=trees["casme3"]))
    assert counts4 == {"negative": 457, "surprise": 187, "others": 161, "positive": 55}
    counts3, _ = _ok_counts(SplitConfig("casme3", classes=3, root=trees["casme3"]))
    assert sum(counts3.values()) == 699


@pytest.mark.parametrize("tree", ["megc2019", "megc2019_20190701"])
def test_megc2019_reproduces_the_official_list(trees, tree):
    official = read_official(OFFICIAL)
    assert len(official) == 442
    rows = build_manifest(SplitConfig("megc2019", root=trees[tree])).rows
    assert compare_official(rows, official) == {"missing": [], "extra": [], "relabelled": []}
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 442 and len({r["subject"] for r in ok}) == 68
    assert Counter(r["label"] for r in ok) == {"negative": 250, "positive": 109, "surprise": 83}
    lodo = build_manifest(SplitConfig("megc2019", protocol="lodo", root=trees[tree])).rows
    assert Counter(r["fold"] for r in lodo if r["fold"]) == {"casme2": 145, "samm": 133, "smic": 164}
