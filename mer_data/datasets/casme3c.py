"""CAS(ME)^3 Part C: the sheet CAS(ME)3_part_C_ME.xlsx and frames ME_C/<sub:02d>/<count>/color/<N>.jpg; no apex.

Known only from others' code ([C] in ../shared/DATASETS.md, from MEB): the columns `sub`, `count`, `onset`,
`offset`, `au` and `emotion`, the two-digit subject folders and the `<subject>/<count>/color/` layout. The sheet
has no apex: the middle frame onset + (offset - onset) // 2 is used (apex_policy `middle`; MEB takes the same
midpoint). AUs are comma-separated, once with the full-width "，"; the AU parser reads both. Not seen anywhere and
assumed here: one `<count>` folder holds one expression, its files named by the frame numbers the sheet uses, as in
Part A. The emotion labels are taken to be Part A's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer_data.datasets import tabular
from mer_data.records import Clip

FPS = 30.0  # capture rate (frames/s) of the frame folders [L]

SPEC = tabular.SheetSpec(
    dataset="casme3c",
    what="CAS(ME)^3 Part C ME sheet",
    sheet_files=("CAS(ME)3_part_C_ME.xlsx", "cas(me)3_part_C_ME.xlsx"),
    sheet_name=None,  # its worksheet name is not known: the first one
    columns={"subject": "sub", "clip": "count", "onset": "onset", "offset": "offset", "emotion": "emotion"},
    optional={"au": ("au", "AU")},
    frame_dirs=("part_C/ME_C", "ME_C", "part_C"),
    pattern=r"(\d+)\.jpg",
    subject_folder=lambda subject: subject.zfill(2) if subject.isdigit() else subject,  # 1 → 01, as MEB pads it
    clip_name=str,
    rel_path=lambda subject, clip: f"{subject}/{clip}/color",
    key=lambda subject, clip, onset: f"{subject}/{clip}",
    video_starts_at_onset=True,
)

annotation_file, iter_samples, _, clip_for = tabular.bind(SPEC, subject_glob="[0-9]*")  # its own iter_clips


def iter_clips(root: Path) -> Iterator[Clip]:
    """Every `<subject>/<count>/color/` frame folder on disk, labelled or not, in sorted order."""
    for clip in tabular.iter_clips(SPEC, root, "[0-9]*"):
        color = Path(clip.source) / "color"
        if color.is_dir():
            yield Clip(clip.dataset, clip.subject, clip.clip, str(color), "frames", SPEC.pattern)
