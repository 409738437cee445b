"""SAMM: SAMM_Micro_FACS_Codes_v2.xlsx (MICRO_ONLY, header under 13 note rows), frames <sss>/<clip>/<sss>_<N:05d>.jpg."""

from __future__ import annotations

from mer_data.datasets import tabular

FPS = 200.0  # capture rate (frames/s) of the frame folders; a video's own rate takes precedence

SPEC = tabular.SheetSpec(
    dataset="samm",
    what="SAMM coding sheet",
    sheet_files=("SAMM_Micro_FACS_Codes_v2.xlsx", "SAMM_20181215_Micro_FACS_Codes_v2.xlsx"),
    sheet_name="MICRO_ONLY",
    columns={"subject": "Subject", "clip": "Filename", "onset": "Onset Frame", "apex": "Apex Frame",
             "offset": "Offset Frame", "emotion": "Estimated Emotion"},
    optional={"au": ("Action Units",), "objective": ("Objective Classes",)},
    frame_dirs=("SAMM", "SAMM_CROP", "SAMM_Cropped"),
    pattern=r"\d+_(\d+)\.jpg",  # 006_05562.jpg: subject, then the absolute frame number
    subject_folder=lambda subject: subject.zfill(3) if subject.isdigit() else subject,  # 6 (numeric re-save) → '006'
    clip_name=str,
    rel_path=lambda subject, clip: f"{subject}/{clip}",
    key=lambda subject, clip, onset: f"{subject}/{clip}",
    video_starts_at_onset=True,
)

annotation_file, iter_samples, iter_clips, clip_for = tabular.bind(SPEC, subject_glob="[0-9]*")
