"""Decoding a clip's frames, from a folder of numbered images or from a video file, into RGB uint8 arrays."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

import cv2
import numpy as np

from mer_data.records import Clip

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class FrameError(Exception):
    """A frame that cannot be decoded: corrupt, truncated, zero bytes or absent."""


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def frame_files(clip: Clip) -> dict[int, str]:
    """Frame number → file path for a folder clip, in numeric order; files not matching the pattern are ignored."""
    rx = _compiled(clip.pattern)
    found: dict[int, str] = {}
    try:
        names = os.listdir(clip.source)
    except OSError:
        return {}
    for name in names:
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            continue
        m = rx.fullmatch(name)
        if m:
            found[int(m.group(1))] = os.path.join(clip.source, name)
    return dict(sorted(found.items()))


def video_length(path: str) -> int:
    """Number of frames OpenCV reports for a video (0 when it cannot be opened)."""
    cap = cv2.VideoCapture(path)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


def frame_numbers(clip: Clip) -> list[int]:
    """The clip's frame numbers in order (for a video: first .. first + length - 1)."""
    if clip.kind == "video":
        return list(range(clip.first, clip.first + video_length(clip.source)))
    return list(frame_files(clip))


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, BGR, BGRA) → contiguous RGB uint8; grayscale is replicated to 3 channels."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str) -> np.ndarray:
    """Decode one image file to RGB uint8, raising FrameError with the reason when it cannot be."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise FrameError(f"unreadable file {path}: {exc.strerror}") from exc
    if data.size == 0:
        raise FrameError(f"zero-byte file {path}")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FrameError(f"corrupt or truncated image {path}")
    if image.dtype != np.uint8:  # 16-bit PNGs and the like
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    return to_rgb(image)


def iter_frames(clip: Clip, numbers: Iterable[int]) -> Iterator[tuple[int, np.ndarray | FrameError]]:
    """Yield (number, RGB frame) for the requested numbers in increasing order; a bad frame yields its FrameError.

    Videos are decoded sequentially in one pass (seeking only forward), so asking for every frame costs one decode each.
    """
    wanted = sorted(set(numbers))
    if clip.kind == "frames":
        files = frame_files(clip)
        for n in wanted:
            if n not in files:
                yield n, FrameError(f"frame {n} missing from {clip.source}")
                continue
            try:
                yield n, read_image(files[n])
            except FrameError as exc:
                yield n, exc
        return
    yield from _iter_video(clip, wanted)


def _iter_video(clip: Clip, wanted: list[int]) -> Iterator[tuple[int, np.ndarray | FrameError]]:
    cap = cv2.VideoCapture(clip.source)
    try:
        if not cap.isOpened():
            for n in wanted:
                yield n, FrameError(f"unreadable video {clip.source}")
            return
        position = clip.first  # number of the frame the next read() returns
        for n in wanted:
            if n < clip.first:
                yield n, FrameError(f"frame {n} precedes the first frame {clip.first} of {clip.source}")
                continue
            ok = True
            while ok and position < n:  # grab() skips without decoding to pixels
                ok = cap.grab()
                position += 1
            ok, image = cap.read() if ok else (False, None)
            position += 1
            if not ok or image is None:
                yield n, FrameError(f"frame {n} could not be decoded from {clip.source}")
                continue
            yield n, to_rgb(image)
    finally:
        cap.release()
