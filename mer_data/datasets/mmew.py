"""MMEW: the sheet MMEW_Micro_Exp.xlsx and frames Micro_Expression/<emotion>/<Filename>/<N>.jpg, N from 1.

The layout is known from others' code ([C] in ../shared/DATASETS.md: MEB's loaders, HTNet's image names
`happiness/S01-01-001/15.jpg`); the columns (`Subject` an int, `Filename`, `OnsetFrame`, `ApexFrame`, `OffsetFrame`,
`Action Units`, `Estimated Emotion`, `remarks`) are checked on HTNet's CSV export of the sheet, where the onset is
always frame 1. The emotion folder is not part of the Filename, so a clip is found as `<any folder>/<Filename>`; the
subject is `S01` (the Filename's prefix, also the sheet's Subject 1). MEB overrides apex and offset of 16 rows of its
copy ("Incorrect apex and offset") and renames `others` to `repression`; we keep the sheet's values and labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer_data.datasets import tabular
from mer_data.datasets.locate import check_root, find_dirs
from mer_data.records import Clip

FPS = 90.0  # capture rate (frames/s) of the frame folders [L]

SPEC = tabular.SheetSpec(
    dataset="mmew",
    what="MMEW sheet",
    sheet_files=("MMEW_Micro_Exp.xlsx",),
    sheet_name=None,  # its worksheet name is not known: the first one
    columns={"subject": "Subject", "clip": "Filename", "onset": "OnsetFrame", "apex": "ApexFrame",
             "offset": "OffsetFrame", "emotion": "Estimated Emotion"},
    optional={"au": ("Action Units",)},
    frame_dirs=("MMEW/Micro_Expression", "Micro_Expression"),
    pattern=r"(\d+)\.jpg",  # 1.jpg, 2.jpg, ...
    subject_folder=lambda subject: f"S{int(subject):02d}" if subject.isdigit() else subject,  # 1 → S01
    clip_name=str,
    rel_path=lambda subject, clip: f"*/{clip}",  # <emotion>/<Filename>
    key=lambda subject, clip, onset: f"{subject}/{clip}",
    video_starts_at_onset=True,
)

annotation_file, iter_samples, _, clip_for = tabular.bind(SPEC, subject_glob="*")  # its own iter_clips


def iter_clips(root: Path) -> Iterator[Clip]:
    """Every clip folder `<emotion>/<Filename>/` on disk, labelled or not, in the order of their ids (S01/S01-01-001)."""
    root = check_root(root, SPEC.dataset)
    for base in find_dirs(root, SPEC.frame_dirs):
        folders = [p for p in base.glob("*/*") if p.is_dir() and "-" in p.name]
        if folders:
            clips = [Clip(SPEC.dataset, f"mmew/{p.name.split('-')[0]}", p.name, str(p), "frames", SPEC.pattern)
                     for p in folders]
            yield from sorted(clips, key=lambda c: c.key)
            return
