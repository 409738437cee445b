"""CAS(ME)^3 Part A: the JpgIndex ME sheet (sheet `label`, numbers as text) and frames spNO.<k>/<letter>/color/<idx>.jpg from 0.

One video (subject, letter) holds several micro-expressions, so a sample id carries the onset: casme3/spNO.1/a/355.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer_data.datasets import tabular
from mer_data.datasets.locate import VIDEO_EXTENSIONS, check_root, find_dirs
from mer_data.records import Clip

FPS = 30.0  # capture rate (frames/s) of the frame folders; a video's own rate takes precedence

SPEC = tabular.SheetSpec(
    dataset="casme3",
    what="CAS(ME)^3 Part A ME sheet",
    sheet_files=("cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", "CAS(ME)3_part_A_ME_label_JpgIndex_v2.xlsx"),
    sheet_name="label",
    columns={"subject": "Subject", "clip": "Filename", "onset": "Onset", "apex": "Apex", "offset": "Offset",
             "emotion": "emotion"},
    optional={"au": ("AU",), "objective": ("Objective class",)},
    frame_dirs=("part_A/data/part_A", "data/part_A", "part_A"),
    pattern=r"(\d+)\.jpg",  # 0.jpg, 1.jpg, ...: the JpgIndex the sheet uses
    subject_folder=str,
    clip_name=str.lower,  # the sheet once writes 'J' (spNO.14); folders are lower case
    rel_path=lambda subject, clip: f"{subject}/{clip}/color",  # color/ frames, or color.mp4
    key=lambda subject, clip, onset: f"{subject}/{clip}/{onset}",
    video_starts_at_onset=False,
    spans_me=False,  # a video holds several MEs
)


annotation_file, iter_samples, _, clip_for = tabular.bind(SPEC, subject_glob="spNO.*")  # its own iter_clips


def iter_clips(root: Path) -> Iterator[Clip]:
    """Every (subject, letter) video on disk — its color/ frame folder or color.mp4 — in sorted order."""
    root = check_root(root, SPEC.dataset)
    for base in find_dirs(root, SPEC.frame_dirs):
        subjects = sorted((p for p in base.glob("spNO.*") if p.is_dir()), key=_subject_order)
        if not subjects:
            continue
        for sub in subjects:
            for video in sorted(p for p in sub.iterdir() if p.is_dir()):
                color = video / "color"
                if color.is_dir():
                    yield Clip(SPEC.dataset, f"casme3/{sub.name}", video.name, str(color), "frames", SPEC.pattern)
                    continue
                for ext in VIDEO_EXTENSIONS:
                    if color.with_suffix(ext).is_file():
                        yield Clip(SPEC.dataset, f"casme3/{sub.name}", video.name, str(color) + ext, "video", SPEC.pattern)
                        break
        return


def _subject_order(path: Path) -> tuple[int, str]:
    """spNO.2 before spNO.10."""
    tail = path.name.rsplit(".", 1)[-1]
    return (int(tail) if tail.isdigit() else 1 << 30, path.name)

