"""Dataset trees built around the real official sheets in ../shared/me-annotations, for the tests that use them.

Each tree holds a copy of the sheet and zero-byte frame files for exactly the frames the sheet names, so the adapters
see a dataset as shipped (only existence is checked when building splits). SMIC has no sheet: its HS tree is built
from the official MEGC2019 list, as a user's SMIC_all_raw folder tree would be. MMEW's sheet is not public: its tree
holds an xlsx written from HTNet's CSV export of it (the 234 rows other than `others`, same columns).
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
from openpyxl import Workbook

from manifests.megc2019 import read_official
from mer_data.sheets import read_headerless, read_sheet, read_values, to_int, to_text

REPO = Path(__file__).resolve().parents[1]
SHARED = next((p for p in (Path("/work/shared"), REPO.parent / "shared") if (p / "me-annotations").is_dir()), None)
needs_shared = pytest.mark.skipif(SHARED is None, reason="the real sheets (../shared/me-annotations) are not available")
ANN = SHARED / "me-annotations" if SHARED else Path()
OFFICIAL = ANN / "megc2019" / "combined_3class_gt.csv"
SMIC_EMOTION = {0: "negative", 1: "positive", 2: "surprise"}


def touch_frames(folder: Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


def frame_range(cells: dict, onset: str, offset: str) -> range:
    first, _ = to_int(cells[onset])
    last, _ = to_int(cells[offset])
    return range(first, last + 1)


def build_casme2(root: Path, sheet_file: str) -> Path:
    shutil.copy(ANN / "casme2" / sheet_file, root)
    for row in read_sheet(root / sheet_file, ["Subject", "Filename", "OnsetFrame", "OffsetFrame"], "Sheet1").rows:
        folder = root / "CASME2_RAW_selected" / f"sub{to_text(row.cells['Subject'])}" / to_text(row.cells["Filename"])
        touch_frames(folder, [f"img{n}.jpg" for n in frame_range(row.cells, "OnsetFrame", "OffsetFrame")])
    return root


def build_samm(root: Path) -> Path:
    name = "SAMM_Micro_FACS_Codes_v2.xlsx"
    shutil.copy(ANN / "samm" / name, root)
    for row in read_sheet(root / name, ["Subject", "Filename", "Onset Frame", "Offset Frame"], "MICRO_ONLY").rows:
        subject = to_text(row.cells["Subject"])
        folder = root / "SAMM" / subject / to_text(row.cells["Filename"])
        touch_frames(folder, [f"{subject}_{n:05d}.jpg" for n in frame_range(row.cells, "Onset Frame", "Offset Frame")])
    return root


def build_casme3(root: Path) -> Path:
    name = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    shutil.copy(ANN / "casme3" / name, root)
    for row in read_sheet(root / name, ["Subject", "Filename", "Onset", "Offset"], "label").rows:
        letter = to_text(row.cells["Filename"]).lower()
        folder = root / "part_A" / "data" / "part_A" / to_text(row.cells["Subject"]) / letter / "color"
        touch_frames(folder, [f"{n}.jpg" for n in frame_range(row.cells, "Onset", "Offset")])
    return root


def build_smic(root: Path) -> Path:
    """SMIC_all_raw/HS/s<k>/micro/<emotion>/s<k>_<code>_<nn>/ with 5 frames each, from the official list's SMIC rows."""
    unpad = lambda text: re.sub(r"^s0*(\d+)", r"s\1", text)  # noqa: E731 — the folders are s1, s1_ne_01
    for k, (dataset, subject, clip, label) in enumerate(read_official(OFFICIAL)):
        if dataset == "smic":
            folder = root / "SMIC_all_raw" / "HS" / unpad(subject) / "micro" / SMIC_EMOTION[label] / unpad(clip)
            touch_frames(folder, [f"image{1000 * k + n:06d}.bmp" for n in range(5)])
    (root / "SMIC_all_raw" / "HS" / "s1" / "non_micro" / "s1_x_01").mkdir(parents=True)  # must be skipped
    return root


def build_mmew(root: Path) -> Path:
    """MMEW_Micro_Exp.xlsx written from HTNet's CSV (its own columns dropped) and Micro_Expression/<emotion>/<clip>/."""
    columns = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
               "remarks"]
    wb = Workbook()
    wb.active.append(columns)
    with open(ANN / "mmew" / "MMEW_Micro_Exp_delete_others.csv", encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            cells = [int(row[c]) if c in ("Subject", "OnsetFrame", "ApexFrame", "OffsetFrame") else row[c] or None
                     for c in columns]
            wb.active.append(cells)
            folder = root / "MMEW" / "Micro_Expression" / row["Estimated Emotion"] / row["Filename"]
            touch_frames(folder, [f"{n}.jpg" for n in range(int(row["OnsetFrame"]), int(row["OffsetFrame"]) + 1)])
    wb.save(root / "MMEW_Micro_Exp.xlsx")
    return root


def build_casme_sq(root: Path) -> Path:
    """The CAS(ME)^2 sheet and rawpic/s<NN>/<NN>_<code><name>x/ holding the frames of every row (macro rows too)."""
    path = root / "CAS(ME)^2code_final.xlsx"
    shutil.copy(ANN / "casme_sq" / "CASME_sq_gt.xlsx", path)
    folders = {to_text(r[2]): to_text(r[1]) for r in read_values(path, "naming rule1")[1]}
    codes = {to_text(r[1]): to_text(r[0]) for r in read_values(path, "naming rule2")[1]}
    for row in read_headerless(path, ["subject", "name", "onset", "apex", "offset"]).rows:
        folder, video = folders[to_text(row.cells["subject"])], to_text(row.cells["name"]).rsplit("_", 1)[0]
        last = max(to_int(row.cells["offset"])[0], to_int(row.cells["onset"])[0])  # offset 0 in 44 macro rows
        touch_frames(root / "rawpic" / folder / f"{folder[1:]}_{codes[video]}{video}x",
                     [f"img{n}.jpg" for n in range(to_int(row.cells["onset"])[0], last + 1)])
    return root


def build_samm_lv(root: Path, with_samm_sheet: bool = True) -> Path:
    """The SAMM Long Videos sheet (and the SAMM clip sheet, for labels) and SAMM_longvideos/<video>/ frames of the
    micro rows (the macro rows' frame numbers are partly floats)."""
    shutil.copy(ANN / "samm_lv" / "SAMMLV_gt.xlsx", root)
    if with_samm_sheet:
        shutil.copy(ANN / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx", root)
    for row in read_sheet(root / "SAMMLV_gt.xlsx", ["Filename", "Onset", "Offset", "Type"]).rows:
        if to_text(row.cells["Type"]).startswith("Micro"):
            video = to_text(row.cells["Filename"]).rsplit("_", 1)[0]
            touch_frames(root / "SAMM_longvideos" / video,
                         [f"{video}_{n:05d}.jpg" for n in frame_range(row.cells, "Onset", "Offset")])
    return root


BUILDERS = {"casme2": lambda r: build_casme2(r, "CASME2-coding-20140508.xlsx"),
            "casme2_20190701": lambda r: build_casme2(r, "CASME2-coding-20190701.xlsx"),
            "samm": build_samm, "casme3": build_casme3, "smic": build_smic, "mmew": build_mmew,
            "casme_sq": build_casme_sq, "samm_lv": build_samm_lv}


def build_trees(base: Path, names) -> dict[str, Path]:
    """name → root of a real-sheet tree under `base`, for each name of BUILDERS."""
    out = {}
    for name in names:
        (base / name).mkdir()
        out[name] = BUILDERS[name](base / name)
    return out


def composite(base: Path, name: str, parts: dict[str, Path]) -> Path:
    """A composite root `base/name` holding each part (dataset → tree) as a symlink `base/name/<dataset>`."""
    root = base / name
    root.mkdir()
    for dataset, tree in parts.items():
        (root / dataset).symlink_to(tree, target_is_directory=True)
    return root
