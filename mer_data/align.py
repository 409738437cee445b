"""Face alignment primitives: the BlazeFace detector, the eye-based similarity transform and the warp.

A matrix puts the eyes level at a fixed inter-ocular distance with the face centred and a margin, and a frame is warped
with it straight to the output size: one resampling, no intermediate crop. Which matrix a frame gets comes from the
face track (`mer_data/track.py`, `mer_data/pair_align.py`): per-frame detections jitter by more than a micro-expression
moves, so matrices come from smoothed tracks and both frames of a pair share one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import cv2
import numpy as np

from mer_data.blazeface import Face, open_runtime, resolve_runtime
from mer_data.frames import REDUCTIONS

EYE_DISTANCE = 0.30  # inter-ocular distance as a fraction of the output width (leaves the whole face plus a margin)
EYE_LINE = 0.38  # height of the eye line as a fraction of the output height (mouth and chin fit below)
REFINE_CONTEXT = 2.5  # side of the refinement crop as a multiple of the first detection's box
REFINE_SIDE = 256  # the crop is resampled to this side (px; LiteRT samples the same points straight at 128)


def eye_transform(right_eye, left_eye, size: int, eye_distance: float = EYE_DISTANCE,
                  eye_line: float = EYE_LINE) -> np.ndarray:
    """The 2×3 similarity matrix (float64) mapping frame pixels to a size×size aligned face.

    The eye midpoint goes to (size/2, eye_line·size), the eye vector becomes horizontal, and its length becomes
    eye_distance·size. Rounded to 1e-6 so the matrix stored in a sample's json is exactly the one used to warp.
    """
    r = np.asarray(right_eye, dtype=np.float64)
    l = np.asarray(left_eye, dtype=np.float64)
    d = l - r  # points image-right for an upright face
    length = float(np.hypot(d[0], d[1]))
    if length < 1e-6:
        raise ValueError("eye keypoints coincide")
    scale = eye_distance * size / length
    cos, sin = d[0] / length, d[1] / length
    rot = scale * np.array([[cos, sin], [-sin, cos]])  # rotates the eye vector onto +x, then scales
    centre = (r + l) / 2.0
    target = np.array([size / 2.0, eye_line * size])
    shift = target - rot @ centre
    return np.round(np.hstack([rot, shift[:, None]]), 6)


def resize_transform(height: int, width: int, size: int) -> np.ndarray:
    """The 2×3 matrix that resizes a whole (pre-cropped) frame to size×size, used with `--face-detector none`."""
    return np.round(np.array([[size / width, 0.0, 0.0], [0.0, size / height, 0.0]]), 6)


def warp(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply a 2×3 matrix to an (H, W[, C]) uint8 frame → (size, size[, C]); outside the frame is black."""
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def footprint(matrices: Iterable[np.ndarray], size: int, pad: int = 0) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1, end exclusive) of frame pixels that `warp(frame, m, size)` reads for each of
    `matrices`, widened by `pad` px: every output pixel centre mapped back, with its bilinear neighbours and a pixel
    more for the warp's fixed-point rounding. Unclipped: part of it may lie outside the frame."""
    corners = np.array([[0.0, 0.0], [size - 1.0, 0.0], [0.0, size - 1.0], [size - 1.0, size - 1.0]])
    back = np.concatenate([apply(cv2.invertAffineTransform(m), corners) for m in matrices])
    lo, hi = np.floor(back.min(axis=0)) - 1 - pad, np.floor(back.max(axis=0)) + 2 + pad
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def apply(matrix: np.ndarray, points) -> np.ndarray:
    """Map (N, 2) pixel points through a 2×3 matrix → (N, 2)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2×3 matrix applying `inner`, then `outer`."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def decode_reduction(face: Face | None, size: int, reductions: tuple[int, ...] = REDUCTIONS) -> int:
    """The largest DCT reduction d (of `reductions`) at which the face's eyes in the 1/d-scale frame are still at
    least the output's eye distance (EYE_DISTANCE·size) apart, so the warp never enlarges; 1 without a face."""
    if face is None:
        return 1
    eyes = np.hypot(*np.subtract(face.left_eye, face.right_eye))
    return max(d for d in reductions if d == 1 or eyes / d >= EYE_DISTANCE * size)


class FaceDetector:
    """The BlazeFace short-range detector; loads the model once, call it on RGB uint8 frames.

    `runtime` "auto" runs the model on LiteRT where `ai-edge-litert` is installed and through MediaPipe Tasks
    otherwise; both give the same detections (`mer_data/blazeface.py`), LiteRT at about half the cost per call. The
    detector keeps faces down to the lower `fallback_confidence`, so one instance serves both passes of
    `locate_face`; use it as a context manager or call `close()`.
    """

    def __init__(self, model_path: str, min_confidence: float = 0.5, fallback_confidence: float = 0.3,
                 runtime: str = "auto"):
        self.min_confidence = min_confidence
        self.fallback_confidence = min(fallback_confidence, min_confidence)
        self.runtime = resolve_runtime(runtime)
        self._detect = open_runtime(self.runtime, model_path, self.fallback_confidence)

    def __call__(self, frame: np.ndarray, to_rgb: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Face]:
        """All faces found in an (H, W, 3) uint8 frame, RGB or in any colour order `to_rgb` converts (LiteRT converts
        only the model's 128×128 input), best score first."""
        return sorted(self._detect(frame, to_rgb), key=lambda f: -f.score)

    def refine(self, rgb: np.ndarray, face: Face, to_rgb: Callable[[np.ndarray], np.ndarray] | None = None) -> Face:
        """Detect again in a square crop around `face` (REFINE_CONTEXT × its box, resampled to REFINE_SIDE px) and
        map the result back; `face` unchanged when the crop has none.

        The short-range model sees the frame shrunk to 128×128, where the face's share of the input, hence the
        keypoints' bias, depends on the framing; in the crop the face fills about 40 % of the input whatever its size
        in the frame. Measured with bench/bench_align.py (960×720 frames): a still head's eye-midpoint error p90 drops
        from 2.45 to 0.92 px (at 224), a drifting head's (against each pair's mean eyes) from 2.37 to 2.00 px; the eye
        distance stays within about −2 … +3 % either way. With `to_rgb`, `rgb` is a frame in another colour order and
        only the crop is converted.
        """
        x, y, w, h = face.bbox
        side = max(16.0, REFINE_CONTEXT * max(w, h))
        scale = REFINE_SIDE / side
        x0, y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
        to_crop = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])  # black outside the frame
        found = sorted(self._detect.region(rgb, to_crop, REFINE_SIDE, to_rgb), key=lambda f: -f.score)
        if not found:
            return face
        f = found[0]

        def back(px: float, py: float) -> tuple[float, float]:
            return px / scale + x0, py / scale + y0

        bx, by = back(f.bbox[0], f.bbox[1])
        return Face(f.score, (bx, by, f.bbox[2] / scale, f.bbox[3] / scale), back(*f.right_eye), back(*f.left_eye))

    def close(self) -> None:
        self._detect.close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def find_face(detector: FaceDetector, frame: np.ndarray,
              to_rgb: Callable[[np.ndarray], np.ndarray] | None = None) -> Face | None:
    """The subject's face in a frame (RGB, or any colour order `to_rgb` converts): the largest face above the
    detector's fallback confidence, refined in a crop; None when there is none or when its eyes lie outside the frame
    (a face leaving the picture is not tracked).

    The largest, not the most confident: the subject is the face nearest the camera; another person shows up as a
    jump in the track, which the track cuts (see mer_data/track.py). The whole frame goes to the detector: locating
    the face in a copy shrunk to 256 px, whose refinement crop then starts from a coarser box, moved the keypoints of a
    still head at 960×720 from p90 0.92 to 1.29 px off (bench/bench_align.py --motion none), for no measurable speed
    (a detector call costs the same at any input size: the model sees 128×128; 1.3–1.7 ms on LiteRT here)."""
    h, w = frame.shape[:2]
    faces = detector(frame, to_rgb)
    if not faces:
        return None
    face = detector.refine(frame, max(faces, key=lambda f: f.bbox[2] * f.bbox[3]), to_rgb)
    if not all(0 <= x < w and 0 <= y < h for x, y in (face.right_eye, face.left_eye)):
        return None
    return face


def locate_face(detector: FaceDetector, frames: Iterable[np.ndarray]) -> Face | None:
    """The first face with score ≥ min_confidence over `frames` (consumed lazily, in order), refined in a crop.

    When no frame reaches it, the best face above the detector's fallback confidence over all frames; None if none.
    """
    best: Face | None = None
    for frame in frames:
        faces = detector(frame)
        if not faces:
            continue
        face = detector.refine(frame, faces[0])
        if face.score >= detector.min_confidence:
            return face
        if best is None or face.score > best.score:
            best = face
    return best
