"""CASME II: the coding sheet (CASME2-coding-*.xlsx) and frames subNN/<Filename>/img<N>.jpg, reg_img<N>.jpg or videos."""

from __future__ import annotations

from mer_data.datasets import tabular

FPS = 200.0  # capture rate (frames/s) of the frame folders; a video's own rate takes precedence


def subject_folder(subject: str) -> str:
    """'01' (or 1, from a sheet re-saved with numeric ids) → 'sub01'; an id already written 'sub01' is kept."""
    return f"sub{subject.zfill(2)}" if subject.isdigit() else subject


SPEC = tabular.SheetSpec(
    dataset="casme2",
    what="CASME II coding sheet",
    # newest first: 20190701 relabels three sub24 clips sadness → surprise; pass --annotations to choose the other
    sheet_files=("CASME2-coding-20190701.xlsx", "CASME2-coding-20140508.xlsx", "CASME2-coding-updated.xlsx"),
    sheet_name="Sheet1",
    columns={"subject": "Subject", "clip": "Filename", "onset": "OnsetFrame", "apex": "ApexFrame",
             "offset": "OffsetFrame", "emotion": "Estimated Emotion"},
    optional={"au": ("Action Units",), "objective": ("Objective Classes",)},
    frame_dirs=("CASME2_RAW_selected", "Cropped", "CASME2-RAW", "Cropped_original"),  # raw release first
    pattern=r"(?:reg_)?img(\d+)\.jpg",  # img46.jpg (raw) or reg_img46.jpg (cropped): the absolute frame number
    subject_folder=subject_folder,
    clip_name=str,
    rel_path=lambda subject, clip: f"{subject}/{clip}",
    key=lambda subject, clip, onset: f"{subject}/{clip}",
    video_starts_at_onset=True,
)

annotation_file, iter_samples, iter_clips, clip_for = tabular.bind(SPEC, subject_glob="sub*")
