"""Dense per-frame features along a tracked, aligned long video: each frame's window of aligned faces, streamed.

A spotter's `Extractor` names the frame offsets it looks at (MDMD: t−k, t, t+k; SOFTNet and μ-BERT: t, t+k) and
turns the faces of one window into a feature vector. `video_features` walks a video once: the face is tracked as the
ingest tracks it (`mer_data.track`, `mer_data.pair_align.align_pairs`), every window's frames are warped with ONE
matrix (the pair (t + first offset, t + last offset)'s, from the block holding its middle frame), so head motion
between blocks never shows up inside a window. A window whose frames leave the tracked face (lost, cut, unreadable)
is a gap: its row is NaN and `valid` is False, never a motion score. Frames are released as the walk passes them, so
memory is bounded by a matrix block plus the tracker's margin, not by the video's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from mer_data.align import FaceDetector, find_face, resize_transform, warp
from mer_data.frame_window import FrameWindow
from mer_data.frames import FrameError, to_rgb
from mer_data.pair_align import Tracker, align_pairs
from mer_data.records import Clip
from mer_data.track import TrackConfig

FLOWS = ("tvl1", "farneback")


@dataclass(frozen=True)
class FeatureConfig:
    """How a long video is tracked, aligned and turned into per-frame flow."""

    flow: str = "tvl1"  # optical flow: "tvl1" (cv2 DualTVL1, as SOFTNet) | "farneback" (about 10x faster, tests)
    face_detector: str = "mediapipe"  # "mediapipe" (BlazeFace, tracked) | "none" (frames are pre-cropped faces)
    face_model: str = ""  # path of the BlazeFace .tflite ("" = the cached default)
    track: TrackConfig = field(default_factory=TrackConfig)  # detection schedule and thresholds (ingest defaults)

    def __post_init__(self) -> None:
        if self.flow not in FLOWS:
            raise ValueError(f"flow must be one of {', '.join(FLOWS)}, got {self.flow!r}")


class Extractor(Protocol):
    """What a spotter computes on each window of aligned faces."""

    offsets: tuple[int, ...]  # frames of a window relative to t, ascending (e.g. (-k, 0, k))
    size: int  # aligned face side, px
    gray: bool  # faces as (size, size) grayscale, else (size, size, 3) RGB
    width: int  # length of the feature vector

    def __call__(self, faces: list[np.ndarray]) -> np.ndarray: ...


@dataclass
class VideoFeatures:
    """One video's features: row i belongs to frame `frames[i]`; rows of gaps are NaN with `valid` False."""

    frames: np.ndarray  # (T,) int frame numbers t (the window's reference frame)
    values: np.ndarray  # (T, width) float32
    valid: np.ndarray  # (T,) bool: the whole window was on the tracked face
    fps: float  # frames per second
    decoded: int = 0  # frames decoded (a frame decoded twice counts twice)


def compute_flow(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Dense optical flow from gray uint8 a to b: (H, W, 2) float32 (u, v) in px.

    tvl1 uses 3 scales and 3 warps (OpenCV's defaults are 5 and 5): on 64 px faces that is 17 ms against 200 ms a
    flow, with the same motion found on faces this small."""
    if method == "tvl1":
        return _tvl1().calc(a, b, None)
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)


_TVL1: list = []


def _tvl1():
    if not _TVL1:
        _TVL1.append(cv2.optflow.DualTVL1OpticalFlow_create(nscales=3, warps=3, epsilon=0.05))
    return _TVL1[0]


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """The optical strain magnitude of a flow field (H, W, 2): sqrt(εxx² + εyy² + 2·εxy²), εxy = (∂u/∂y + ∂v/∂x)/2,
    with central differences (np.gradient)."""
    du_dy, du_dx = np.gradient(flow[..., 0])
    dv_dy, dv_dx = np.gradient(flow[..., 1])
    exy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx ** 2 + dv_dy ** 2 + 2 * exy ** 2).astype(np.float32)


def _face(image: np.ndarray, matrix: np.ndarray, size: int, gray: bool) -> np.ndarray:
    """A native frame (BGR or gray) warped to size×size, as gray or RGB."""
    face = warp(image, matrix, size)
    if gray:
        return face if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    return to_rgb(face)


def _matrices(frames: FrameWindow, clip_span: tuple[int, int, float], pairs: list[tuple[int, int]],
              cfg: FeatureConfig, size: int, detector: FaceDetector | None) -> Iterator[np.ndarray | None]:
    """Each pair's one alignment matrix at `size`, or None where the pair leaves the tracked face."""
    first, last, fps = clip_span
    if detector is None:
        for t0, _ in pairs:
            image = frames.get(t0)
            yield None if isinstance(image, FrameError) else resize_transform(image.shape[0], image.shape[1], size)
        return

    def detect(n: int):
        image = frames.get(n)
        return None if isinstance(image, FrameError) else find_face(detector, image, to_rgb)

    track = TrackConfig(**{**cfg.track.__dict__, "size": size})
    for item in align_pairs(Tracker(detect, first, last, fps, track, frames.release), pairs, labeled=False):
        yield item.matrix


def aligned_windows(frames: FrameWindow, first: int, last: int, fps: float, extractor: Extractor,
                    cfg: FeatureConfig, detector: FaceDetector | None) -> Iterator[tuple[int, list[np.ndarray] | None]]:
    """(t, the window's faces, or None for a gap) for every t whose window fits in first..last, in order."""
    lo, hi = extractor.offsets[0], extractor.offsets[-1]
    ts = list(range(first - lo, last - hi + 1))
    pairs = [(t + lo, t + hi) for t in ts]
    for t, matrix in zip(ts, _matrices(frames, (first, last, fps), pairs, cfg, extractor.size, detector)):
        images = [frames.get(t + o) for o in extractor.offsets]
        if matrix is None or any(isinstance(im, FrameError) for im in images):
            yield t, None
        else:
            yield t, [_face(im, matrix, extractor.size, extractor.gray) for im in images]
        frames.release(t + lo)  # later windows start at t + 1 + lo or after


def open_detector(cfg: FeatureConfig) -> FaceDetector | None:
    """The face detector the config asks for (None with face_detector "none")."""
    if cfg.face_detector == "none":
        return None
    from mer_data.facemodel import resolve_model

    return FaceDetector(str(resolve_model(cfg.face_model or None)), cfg.track.min_confidence,
                        cfg.track.fallback_confidence)


def video_features(clip: Clip, first: int, last: int, fps: float, extractor: Extractor,
                   cfg: FeatureConfig) -> VideoFeatures:
    """The extractor's features over a whole video, streamed window by window (see the module docstring)."""
    detector = open_detector(cfg)
    ts, rows, valid = [], [], []
    try:
        with FrameWindow(clip) as frames:
            for t, faces in aligned_windows(frames, first, last, fps, extractor, cfg, detector):
                ts.append(t)
                valid.append(faces is not None)
                rows.append(np.full(extractor.width, np.nan, np.float32) if faces is None
                            else np.asarray(extractor(faces), np.float32).reshape(extractor.width))
            decoded = frames.decoded
    finally:
        if detector is not None:
            detector.close()
    values = np.stack(rows) if rows else np.zeros((0, extractor.width), np.float32)
    return VideoFeatures(np.asarray(ts, np.int64), values, np.asarray(valid, bool), fps, decoded)
