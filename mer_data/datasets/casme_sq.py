"""CAS(ME)^2 (registry name `casme_sq`): long videos rawpic/s<NN>/<NN>_<code><name>/img<N>.jpg, and a sheet without header.

The sheet (`CAS(ME)^2code_final.xlsx`; the copy checked is MEGC2021's `CASME_sq_gt.xlsx`) has no header row: its
first worksheet's columns are subject (1-22), `<video>_<k>` (`anger1_1`), onset, apex, offset, AUs, emotion class,
type (`macro-expression` / `micro-expression`) and self-reported emotion. Two more worksheets name the folders:
`naming rule1` maps the subject to its folder (1 → s15) and `naming rule2` the video to its code (anger1 → 0401),
so `anger1_1` of subject 1 is in `rawpic/s15/15_0401*/` (the folder name goes on with a description,
`15_0401girlcrashing`). The sheet is checked ([V]); the folder layout and the frame names `img<N>.jpg`, N the sheet's
frame number, are known from others' code only ([C], genbing99/MEAN `load_images.py`).

Micro rows are samples in whole-video clips (see longvideo.py); the macro rows, 44 of them with offset 0, are left
out and counted. A sample id is `casme_sq/s15/anger1_1`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from mer_data import MerDataError
from mer_data.datasets.locate import Labels, check_root, find_dirs, find_sheet, mark_duplicates
from mer_data.datasets import longvideo
from mer_data.datasets.longvideo import Where, count_other, is_micro, video_sample
from mer_data.records import Clip, Sample
from mer_data.sheets import Sheet, SheetRow, read_headerless, read_values, to_text

FPS = 30.0  # capture rate (frames/s) of the frame folders [L]
NAME = "casme_sq"
SHEET_FILES = ("CAS(ME)^2code_final.xlsx", "CAS(ME)^2code_final(Updated).xlsx", "code_final.xlsx", "CASME_sq_gt.xlsx")
COLUMNS = ("subject", "name", "onset", "apex", "offset", "au", "emotion", "type", "self_report")  # by position
SUBJECTS, VIDEOS = "naming rule1", "naming rule2"  # worksheets: subject → folder; video name → code
FRAME_DIRS = ("rawpic", "rawpic_aligned", "cropped")  # raw release first
PATTERN = r"img(\d+)\.jpg"


def annotation_file(root: Path, annotations: Path | None = None) -> Path:
    """The coding sheet used for this root: `annotations`, else the first known name found under it."""
    return find_sheet(check_root(root, NAME), SHEET_FILES, annotations, "CAS(ME)^2 coding sheet")


def _read(root: Path, annotations: Path | None) -> tuple[Sheet, dict[str, str], dict[str, str]]:
    """(the data rows, subject → folder, video name → code) of the sheet."""
    path = annotation_file(root, annotations)
    sheet = read_headerless(path, COLUMNS)  # the first worksheet, named CASFEcode_final or CASMEcode_final
    subjects = {to_text(r[2]): to_text(r[1]) for r in read_values(path, SUBJECTS)[1] if len(r) > 2 and r[1] and r[2]}
    videos = {to_text(r[1]): to_text(r[0]).zfill(4) for r in read_values(path, VIDEOS)[1] if len(r) > 1 and r[0] and r[1]}
    if not subjects or not videos:
        raise MerDataError(f"{path}: worksheets {SUBJECTS!r} and {VIDEOS!r} name no folders")
    return sheet, subjects, videos


def iter_samples(root: Path, annotations: Path | None = None, *, apply_fixes: bool = True,
                 **_: object) -> Iterator[Sample]:
    """Every micro-expression row of the sheet as a Sample (bad rows with a status) in its whole-video clip."""
    root = check_root(root, NAME)
    sheet, subjects, videos = _read(root, annotations)
    bases = find_dirs(root, FRAME_DIRS)
    rows = (row for row in sheet.rows if is_micro(row.cells["type"]))
    yield from mark_duplicates(_sample(row, subjects, videos, bases, apply_fixes) for row in rows)


def _sample(row: SheetRow, subjects: dict[str, str], videos: dict[str, str], bases: list[Path],
            apply_fixes: bool) -> Sample:
    subject_id, name = to_text(row.cells["subject"]), to_text(row.cells["name"])
    folder = subjects.get(subject_id, f"subject{subject_id}")
    video = name.rsplit("_", 1)[0]
    code = videos.get(video, "")
    cells = {f: row.cells[f] for f in ("onset", "apex", "offset")}
    labels = Labels(to_text(row.cells["emotion"]), to_text(row.cells["au"]))
    known = subject_id in subjects and bool(code)
    rel = f"{folder}/{folder.lstrip('s')}_{code}*" if known else f"{folder}/{video}"  # unknown: not searched
    sample = video_sample(Where(NAME, folder, f"{folder}/{name}", rel, PATTERN), cells, {f: f"column {f}" for f in cells},
                          labels, row.row, bases if known else [], apply_fixes, "CAS(ME)^2 sheet")
    if subject_id not in subjects:
        return dataclasses.replace(sample, status="bad_row", reason=f"subject {subject_id!r} is not in {SUBJECTS!r}")
    if not code:
        return dataclasses.replace(sample, status="bad_row", reason=f"video {video!r} of {name!r} is not in {VIDEOS!r}")
    return sample


def other_rows(root: Path, annotations: Path | None = None) -> dict[str, int]:
    """The sheet's rows that are not micro-expressions, counted by type ({'macro-expression': 300} on the real sheet)."""
    sheet, _, _ = _read(check_root(root, NAME), annotations)
    return count_other(row.cells["type"] for row in sheet.rows)


def iter_clips(root: Path) -> Iterator[Clip]:
    """Every long video `s<NN>/<NN>_<code><name>/` on disk, labelled or not, in sorted order."""
    return longvideo.video_clips(root, NAME, FRAME_DIRS, "s[0-9]*/*", lambda video: video.parent.name, PATTERN)


def clip_for(sample: Sample) -> Clip:
    """The Clip (the whole video folder) holding a sample's frames."""
    return longvideo.clip_for(sample, PATTERN)
