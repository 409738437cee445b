"""SAMM: SAMM_Micro_FACS_Codes_v2.xlsx (MICRO_ONLY, header under 13 note rows), frames <sss>/<clip>/<sss>_<N:05d>.jpg."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer_data.datasets import tabular
from mer_data.records import Clip, Sample

FPS = 200.0  # capture rate (frames/s) of the frame folders; a video's own rate takes precedence

SPEC = tabular.SheetSpec(
    dataset="samm",
    what="SAMM coding sheet",
    sheet_files=("SAMM_Micro_FACS_Codes_v2.xlsx", "SAMM_20181215_Micro_FACS_Codes_v2.xlsx"),
    sheet_name="MICRO_ONLY",
    columns={"subject": "Subject", "clip": "Filename", "onset": "Onset Frame", "apex": "Apex Frame",
             "offset": "Offset Frame", "emotion": "Estimated Emotion"},
    frame_dirs=("SAMM", "SAMM_CROP", "SAMM_Cropped"),
    pattern=r"\d+_(\d+)\.jpg",  # 006_05562.jpg: subject, then the absolute frame number
    subject_folder=lambda subject: subject.zfill(3) if subject.isdigit() else subject,  # 6 (numeric re-save) → '006'
    clip_name=str,
    rel_path=lambda subject, clip: f"{subject}/{clip}",
    key=lambda subject, clip, onset: f"{subject}/{clip}",
    video_starts_at_onset=True,
)


def annotation_file(root: Path, annotations: Path | None = None) -> Path:
    """The coding sheet used for this root."""
    return tabular.annotation_file(SPEC, root, annotations)


def iter_samples(root: Path, annotations: Path | None = None, *, apply_fixes: bool = True, **_: object) -> Iterator[Sample]:
    """Every row of MICRO_ONLY as a Sample (bad rows with a status), frames located under the root."""
    return tabular.iter_samples(SPEC, root, annotations, apply_fixes)


def iter_clips(root: Path) -> Iterator[Clip]:
    """Every clip folder `<sss>/<sss_i_n>/` or video on disk, labelled or not, in sorted order."""
    return tabular.iter_clips(SPEC, root, "[0-9]*")


def clip_for(sample: Sample) -> Clip:
    """The Clip holding a sample's frames."""
    return tabular.clip_for(SPEC, sample)
