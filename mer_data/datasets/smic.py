"""SMIC: no sheet; labels from the folders <HS|VIS|NIR>/s<k>/micro/<emotion>/<clip>/image<N:06d>.bmp, `non_micro` skipped.

Onset and offset are the first and last frame of the clip. SMIC has no apex, so one is chosen by an explicit policy
recorded in each sample's `apex_policy`: `middle` (default; onset + (offset - onset) // 2) or `max_diff` (the frame
whose mean absolute difference from the onset frame is largest; decodes every frame).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mer_data import MerDataError
from mer_data.datasets.locate import VIDEO_EXTENSIONS, check_root, find_dirs
from mer_data.frames import FrameError, frame_numbers, iter_frames
from mer_data.records import STATUS_OK, Clip, Sample

NAME = "smic"
FPS = 100.0  # SMIC-HS capture rate (frames/s; VIS and NIR are 25); a video's own rate takes precedence
RELEASE_DIRS = ("SMIC_all_raw", "SMIC_all_cropped", "SMIC")  # raw release first
CAMERAS = ("HS", "VIS", "NIR")
APEX_POLICIES = ("middle", "max_diff")
PATTERN = r"(?:reg_)?image(\d+)\.bmp"  # image000123.bmp (raw) or reg_image000123.bmp (cropped)


def annotation_file(root: Path, annotations: Path | None = None) -> None:
    """SMIC ships no sheet for its short clips: the labels are the folder names."""
    if annotations is not None:
        raise MerDataError(f"--annotations {annotations}: SMIC has no annotation sheet "
                           "(labels are the micro/<emotion> folders)")
    return None


def camera_dir(root: Path, camera: str) -> Path:
    """The `<release>/<camera>` folder holding s<k>/ subject folders."""
    if camera not in CAMERAS:
        raise MerDataError(f"--camera {camera!r} is not one of {', '.join(CAMERAS)}")
    root = check_root(root, NAME)
    for base in find_dirs(root, RELEASE_DIRS):
        if (base / camera).is_dir():
            return base / camera
    raise MerDataError(f"no SMIC {camera} folder under --root {root} "
                       f"(expected SMIC_all_raw/{camera}/s<k>/micro/<emotion>/<clip>/)")


def _natural(path: Path) -> tuple[int, str]:
    """s2 before s10."""
    digits = "".join(ch for ch in path.name if ch.isdigit())
    return (int(digits) if digits else -1, path.name)


def iter_clips(root: Path, camera: str = "HS") -> Iterator[Clip]:
    """Every micro-expression clip folder or video of one camera (micro/ only; non_micro/ is skipped), in sorted order."""
    for subject, emotion, clip in _walk(camera_dir(root, camera)):
        yield clip


def _walk(cam: Path) -> Iterator[tuple[str, str, Clip]]:
    """(subject folder, emotion folder, Clip) for s<k>/micro/<emotion>/<clip> folders and videos."""
    for sub in sorted((p for p in cam.iterdir() if p.is_dir()), key=_natural):
        micro = sub / "micro"
        if not micro.is_dir():
            continue
        for emotion in sorted(p for p in micro.iterdir() if p.is_dir()):
            for entry in sorted(emotion.iterdir()):
                subject = f"{NAME}/{sub.name}"
                if entry.is_dir():
                    yield sub.name, emotion.name, Clip(NAME, subject, entry.name, str(entry), "frames", PATTERN)
                elif entry.suffix.lower() in VIDEO_EXTENSIONS:  # a video starts at frame 0
                    yield sub.name, emotion.name, Clip(NAME, subject, entry.stem, str(entry), "video", PATTERN)


def iter_samples(root: Path, annotations: Path | None = None, *, camera: str = "HS", smic_apex: str = "middle",
                 **_: object) -> Iterator[Sample]:
    """Every micro clip of one camera as a Sample labelled by its emotion folder, with the apex from `smic_apex`."""
    annotation_file(root, annotations)
    if smic_apex not in APEX_POLICIES:
        raise MerDataError(f"--smic-apex {smic_apex!r} is not one of {', '.join(APEX_POLICIES)}")
    for subject, emotion, clip in _walk(camera_dir(root, camera)):
        yield _sample(clip, emotion, smic_apex)


def _sample(clip: Clip, emotion: str, policy: str) -> Sample:
    numbers = frame_numbers(clip)
    base = dict(sample_id=f"{clip.subject}/{clip.clip}", dataset=NAME, subject=clip.subject, clip=clip.clip,
                emotion=emotion, source=clip.source, apex_policy=policy)
    if not numbers:
        return Sample(onset=None, apex=None, offset=None, status="missing_frames",
                      reason=f"no frames in {clip.source}", **base)
    onset, offset = numbers[0], numbers[-1]
    gaps = offset - onset + 1 - len(numbers)
    if gaps:
        return Sample(onset=onset, apex=None, offset=offset, status="missing_frames",
                      reason=f"{gaps} of frames {onset}..{offset} missing in {clip.source}", **base)
    if policy == "middle":
        return Sample(onset=onset, apex=onset + (offset - onset) // 2, offset=offset, **base)
    apex, why = max_diff_apex(clip, onset, offset)
    status = STATUS_OK if apex is not None else "unreadable_frames"
    return Sample(onset=onset, apex=apex, offset=offset, status=status, reason=why, **base)


def max_diff_apex(clip: Clip, onset: int, offset: int) -> tuple[int | None, str]:
    """(apex, '') where apex is the frame differing most from the onset (mean |Δ| of gray levels), or (None, why)."""
    reference: np.ndarray | None = None
    best, apex = -1.0, onset
    for number, image in iter_frames(clip, range(onset, offset + 1)):
        if isinstance(image, FrameError):
            return None, str(image)
        gray = image.mean(axis=2, dtype=np.float32)  # (H, W) in [0, 255]
        if reference is None:
            reference = gray
            continue
        diff = float(np.abs(gray - reference).mean())
        if diff > best:
            best, apex = diff, number
    return apex, ""


def clip_for(sample: Sample) -> Clip:
    """The Clip holding a sample's frames (a video numbered from 0)."""
    kind = "video" if sample.source.lower().endswith(VIDEO_EXTENSIONS) else "frames"
    return Clip(NAME, sample.subject, sample.clip, sample.source, kind, PATTERN)
