"""CASME (v1): the coding sheet (casme.xlsx) and frames subNN/<Filename>/<Filename>-<j>.jpg or reg_<Filename>-<j>.jpg.

Known only from others' code ([C] in ../shared/DATASETS.md, from MEB's loaders): no public copy of the sheet exists,
so its name (MEB calls it `casme.xlsx`), its columns (`Subject` as an int, `Filename`, a blank C, `OnsetF`, `ApexF1`,
`ApexF2`, `OffsetF`, a blank H, the AUs, `Emotion`) and the frame names come from MEB, and the emotion vocabulary from
the CASME paper. The frame index j is written without padding in the first part of the sheet and zero-padded to 3
digits in the later part (Class A / Class B); the pattern reads both. The first apex (`ApexF1`) is the apex. MEB
corrects onset, apex and offset of five rows "based on the image folders"; we cannot key those rows without the
sheet, so the manifest's `warnings` column shows where the folders and the sheet disagree instead.
"""

from __future__ import annotations

from mer_data.datasets import tabular

FPS = 60.0  # capture rate (frames/s) of the frame folders [L]

SPEC = tabular.SheetSpec(
    dataset="casme",
    what="CASME coding sheet",
    sheet_files=("casme.xlsx", "CASME.xlsx"),
    sheet_name=None,  # its worksheet name is not known: the first one
    columns={"subject": "Subject", "clip": "Filename", "onset": "OnsetF", "apex": "ApexF1", "offset": "OffsetF",
             "emotion": "Emotion"},
    optional={"au": ("AU", "AUs", "Action Units")},  # MEB reads the column as "AU"
    frame_dirs=("CASME_raw_selected", "Cropped", "CASME_raw"),  # raw release first
    pattern=r"(?:reg_)?.+-(\d+)\.jpg",  # EP01_5-12.jpg, EP01_5-012.jpg, reg_EP01_5-012.jpg: the frame number after "-"
    subject_folder=lambda subject: f"sub{int(subject):02d}" if subject.isdigit() else subject,  # 1 → sub01
    clip_name=str,
    rel_path=lambda subject, clip: f"{subject}/{clip}",
    key=lambda subject, clip, onset: f"{subject}/{clip}",
    video_starts_at_onset=True,
)

annotation_file, iter_samples, iter_clips, clip_for = tabular.bind(SPEC, subject_glob="sub*")
