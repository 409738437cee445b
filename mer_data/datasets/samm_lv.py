"""SAMM Long Videos (registry name `samm_lv`): long videos SAMM_longvideos/<sss>_<i>/*.jpg and their FACS sheet.

The sheet (`SAMM_LongVideos_V2_Release.xlsx` / `_V1_`; the copy checked is MEGC2021's `SAMMLV_gt.xlsx`, worksheet
`FACS_Movement_Only`) has 9 note rows above its header (`Subject | Filename | Inducement Code | Onset | Apex | Offset |
Duration | Type | Action Units | Notes`), writes an apex that was not annotated as -1 (a `*` row of quirks.csv takes
the middle frame) and macro frame numbers as floats. Its `Filename` (`006_1_2`) names the expression; the video is
`006_1`. The sheet has no emotion: the micro rows are the SAMM clips of the same names, so when
`SAMM_Micro_FACS_Codes_v2.xlsx` is under the root too, each micro row takes that sheet's emotion and objective class
(joined on Filename); without it the manifest marks them `no_label`. The frame numbers are the long video's own: a
SAMM clip's are shifted by a constant per video (2000 for 006_1, 0 for 010_2), so they are never mixed. The sheet is
checked ([V]); the folder layout is known from others' code ([C], genbing99/MEAN `load_images.py`), the frame file
names were not seen: the last number in a name is taken as the frame number.

Micro rows are samples in whole-video clips (see longvideo.py); the macro rows are left out and counted. A sample id
is `samm_lv/006/006_1_2`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer_data import MerDataError
from mer_data.datasets import samm, tabular
from mer_data.datasets.locate import Labels, check_root, find_dirs, find_sheet, mark_duplicates
from mer_data.datasets import longvideo
from mer_data.datasets.longvideo import Where, count_other, is_micro, video_sample
from mer_data.records import Clip, Sample
from mer_data.sheets import Sheet, SheetRow, read_sheet, to_text

FPS = 200.0  # capture rate (frames/s) of the frame folders [L]
NAME = "samm_lv"
SHEET_FILES = ("SAMM_LongVideos_V2_Release.xlsx", "SAMM_LongVideos_V1_Release.xlsx", "SAMMLV_gt.xlsx")
COLUMNS = {"subject": "Subject", "clip": "Filename", "onset": "Onset", "apex": "Apex", "offset": "Offset",
           "type": "Type"}
AU_COLUMN = "Action Units"
FRAME_DIRS = ("SAMM_longvideos", "SAMM_LongVideos")
PATTERN = r"(?:.*\D)?(\d+)\.jpg"  # the last number of the name is the frame number


def annotation_file(root: Path, annotations: Path | None = None) -> Path:
    """The FACS sheet used for this root: `annotations`, else the first known name found under it."""
    return find_sheet(check_root(root, NAME), SHEET_FILES, annotations, "SAMM Long Videos sheet")


def _read(root: Path, annotations: Path | None) -> Sheet:
    return read_sheet(annotation_file(root, annotations), list(COLUMNS.values()), None, [AU_COLUMN])


def clip_labels(root: Path) -> dict[str, Labels]:
    """Filename → the emotion and objective class the SAMM clip sheet under the root gives it (empty without one)."""
    try:
        samm.annotation_file(root)
    except MerDataError:  # no SAMM clip sheet next to the long videos: the micro rows stay unlabelled
        return {}
    sheet = tabular.read_rows(samm.SPEC, root)  # a sheet that is there but unreadable is an error
    col, objective = samm.SPEC.columns, samm.SPEC.optional["objective"][0]
    return {to_text(r.cells[col["clip"]]): Labels(to_text(r.cells[col["emotion"]]), None,
                                                  to_text(r.cells.get(objective))) for r in sheet.rows}


def iter_samples(root: Path, annotations: Path | None = None, *, apply_fixes: bool = True,
                 **_: object) -> Iterator[Sample]:
    """Every micro row of the sheet as a Sample (bad rows with a status) in its whole-video clip, labelled from the
    SAMM clip sheet when the root holds one."""
    root = check_root(root, NAME)
    sheet = _read(root, annotations)
    labels = clip_labels(root)
    bases = find_dirs(root, FRAME_DIRS)
    rows = (row for row in sheet.rows if is_micro(row.cells[COLUMNS["type"]]))
    yield from mark_duplicates(_sample(row, labels, bases, apply_fixes) for row in rows)


def _sample(row: SheetRow, labels: dict[str, Labels], bases: list[Path], apply_fixes: bool) -> Sample:
    subject, filename = to_text(row.cells[COLUMNS["subject"]]), to_text(row.cells[COLUMNS["clip"]])
    subject = subject.zfill(3) if subject.isdigit() else subject
    cells = {f: row.cells[COLUMNS[f]] for f in ("onset", "apex", "offset")}
    joined = labels.get(filename, Labels(""))
    au = to_text(row.cells[AU_COLUMN]) if AU_COLUMN in row.cells else None
    said = Labels(joined.emotion, au, joined.objective)
    where = Where(NAME, subject, f"{subject}/{filename}", filename.rsplit("_", 1)[0], PATTERN)
    return video_sample(where, cells, {f: COLUMNS[f] for f in cells}, said, row.row, bases, apply_fixes,
                        "SAMM Long Videos sheet")


def other_rows(root: Path, annotations: Path | None = None) -> dict[str, int]:
    """The sheet's rows that are not micro-expressions, counted by type ({'Macro': 343} on the real sheet)."""
    return count_other(row.cells[COLUMNS["type"]] for row in _read(check_root(root, NAME), annotations).rows)


def iter_clips(root: Path) -> Iterator[Clip]:
    """Every long video `<sss>_<i>/` on disk, labelled or not, in sorted order."""
    return longvideo.video_clips(root, NAME, FRAME_DIRS, "[0-9]*_[0-9]*", lambda video: video.name.split("_")[0],
                                 PATTERN)


def clip_for(sample: Sample) -> Clip:
    """The Clip (the whole video folder) holding a sample's frames."""
    return longvideo.clip_for(sample, PATTERN)
