"""The BlazeFace short-range detector on two runtimes that give the same detections: LiteRT's interpreter with
MediaPipe's pre- and post-processing written out here (the default where `ai-edge-litert` is installed), and the
MediaPipe Tasks `FaceDetector` itself (the reference, and the fallback elsewhere).

Why two: a Tasks call costs 2–3.5 ms on a 2-core machine whatever the input size, of which the network is about 1.3 ms;
the rest is the Tasks API's dispatch thread and graph scheduling. The ingest makes two calls per detection (the whole
frame, then the refinement crop, `mer_data.align.find_face`), so on short clips that overhead was the largest cost
after decoding. `LiteRTBlazeFace` runs the same .tflite on one thread and does what the Tasks graph does around it:

- the frame is letterboxed into the 128×128 input with MediaPipe's corner-to-corner mapping (input px u ↔ frame px
  u·s, bilinear, zero border; the graph's `ImageToTensorCalculator`), as float32 in [-1, 1];
- 896 SSD anchors, fixed size, centres on 16×16 (2 per cell) and 8×8 (6 per cell) grids (`SsdAnchorsCalculator`);
- box centre, size and the 6 keypoints are offsets from the anchor in input px; score = sigmoid of the logit clipped to
  ±100; detections below `min_score` are dropped (`TensorsToDetectionsCalculator`);
- weighted non-maximum suppression: the best remaining detection and all those overlapping it by IoU > 0.3 are
  averaged (box corners and keypoints, weighted by score) into one with the best one's score
  (`NonMaxSuppressionCalculator`, WEIGHTED);
- the letterbox is removed and the box reported in whole pixels, truncated, as the Tasks API reports it.

`tests/test_blazeface.py` checks it against the Tasks detector. Where the frame's long side is a multiple of 128 (the
refinement crop's 256 px always is) the two agree to 0.01 px; elsewhere the two bilinear resamplers differ slightly
and the keypoints by up to 2.5 % of the eye distance (0.7 px at 960×720), scores by ±0.003, which moves the
refinement crop by a pixel at most. Through the ingest (bench/bench_align.py, 960×720) the eye errors of the two
runtimes agree within 0.05 px at p90.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from mer_data import MerDataError

RUNTIMES = ("auto", "litert", "mediapipe")
ToRGB = Callable[[np.ndarray], np.ndarray] | None  # a frame in another colour order → RGB
INPUT_SIDE = 128  # the short-range model's input
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold for face detection


@dataclass(frozen=True)
class Face:
    """One detection in pixel coordinates of the frame it was found in."""

    score: float  # detector confidence in [0, 1]
    bbox: tuple[float, float, float, float]  # x, y, width, height
    right_eye: tuple[float, float]  # the subject's right eye (x, y): the image-left one in an unmirrored photo
    left_eye: tuple[float, float]


def litert_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def resolve_runtime(runtime: str) -> str:
    """"litert" or "mediapipe" for a requested runtime ("auto": LiteRT where `ai-edge-litert` is installed)."""
    if runtime not in RUNTIMES:
        raise MerDataError(f"--face-runtime {runtime}: expected {'|'.join(RUNTIMES)}")
    if runtime == "auto":
        return "litert" if litert_available() else "mediapipe"
    if runtime == "litert" and not litert_available():
        raise MerDataError("--face-runtime litert: the ai-edge-litert package is not installed (pip install ai-edge-litert)")
    return runtime


def open_runtime(runtime: str, model_path: str, min_score: float):
    """The detector of a resolved runtime name: call it on a frame (→ list[Face], any order), or `region` on a crop."""
    return (LiteRTBlazeFace if runtime == "litert" else TasksBlazeFace)(model_path, min_score)


def _face(score: float, box: np.ndarray, eyes: np.ndarray) -> Face:
    """A Face from a box (x0, y0, x1, y1) and eyes (2, 2) in output px; the box in whole px, truncated, as the Tasks API
    reports it."""
    (x0, y0, x1, y1), (right, left) = box, eyes
    return Face(score, (float(int(x0)), float(int(y0)), float(int(x1 - x0)), float(int(y1 - y0))),
                (float(right[0]), float(right[1])), (float(left[0]), float(left[1])))


def ssd_anchors() -> np.ndarray:
    """The short-range model's 896 anchor centres (x, y), normalised to the input, in the model's output order."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):  # strides 8, 16, 16, 16 with 2 anchors each; equal strides share a grid
        cells = INPUT_SIDE // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out)


ANCHORS = ssd_anchors()


def weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray,
                 threshold: float = NMS_IOU) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's weighted non-maximum suppression over boxes (n, 4) x0 y0 x1 y1, keypoints (n, k, 2) and scores
    (n,): (score, box, keypoints) per face, best first."""
    order = np.argsort(-scores, kind="stable")
    boxes, points, scores = boxes[order], points[order], scores[order]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    left, out = np.arange(len(scores)), []
    while left.size:
        top, b = left[0], boxes[left]
        w = np.clip(np.minimum(b[:, 2], boxes[top, 2]) - np.maximum(b[:, 0], boxes[top, 0]), 0, None)
        h = np.clip(np.minimum(b[:, 3], boxes[top, 3]) - np.maximum(b[:, 1], boxes[top, 1]), 0, None)
        inter = w * h
        iou = inter / np.maximum(area[left] + area[top] - inter, 1e-12)
        group, left = left[iou > threshold], left[iou <= threshold]
        weight = scores[group] / scores[group].sum()
        out.append((float(scores[top]), weight @ boxes[group], np.tensordot(weight, points[group], axes=1)))
    return out


class LiteRTBlazeFace:
    """The BlazeFace short-range .tflite on LiteRT's interpreter (one thread), with MediaPipe's pre- and post-processing."""

    def __init__(self, model_path: str, min_score: float):
        from ai_edge_litert.interpreter import Interpreter  # imported only where a detector is built

        self.min_score = min_score
        with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate" would break progress bars
            self._interpreter = Interpreter(model_path=str(model_path), num_threads=1)
            self._interpreter.allocate_tensors()
        (inp,), outs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        # outputs told apart by shape (boxes + keypoints: 16 values per anchor; scores: 1), not by tensor name
        by_width = {int(o["shape"][-1]): o for o in outs if len(o["shape"]) == 3 and o["shape"][1] == len(ANCHORS)}
        if list(inp["shape"]) != [1, INPUT_SIDE, INPUT_SIDE, 3] or set(by_width) != {16, 1}:
            raise MerDataError(f"{model_path}: not the BlazeFace short-range model (input {list(inp['shape'])}, "
                               f"outputs {[list(o['shape']) for o in outs]})")
        self._input, self._boxes, self._scores = inp["index"], by_width[16]["index"], by_width[1]["index"]

    def __call__(self, image: np.ndarray, to_rgb: ToRGB = None) -> list[Face]:
        """Faces in a whole frame (RGB, or any colour order `to_rgb` converts), in frame px."""
        h, w = image.shape[:2]
        s = INPUT_SIDE / max(h, w)
        pad_x, pad_y = (INPUT_SIDE - w * s) / 2, (INPUT_SIDE - h * s) / 2  # the letterbox, input px
        found = self._detect(image, np.array([[s, 0.0, pad_x], [0.0, s, pad_y]]), to_rgb)
        return [_face(score, (box - np.tile((pad_x, pad_y), 2)) / s, (eyes - (pad_x, pad_y)) / s)
                for score, box, eyes in found]

    def region(self, image: np.ndarray, to_crop: np.ndarray, side: int, to_rgb: ToRGB = None) -> list[Face]:
        """Faces in the side × side crop that `to_crop` (2×3, frame px → crop px) maps out of `image`, in crop px:
        what the Tasks detector reports for that crop, without making it (the frame is resampled straight to the
        model's input, at the same points as the crop resampled to it when `side` is a multiple of 128)."""
        s = INPUT_SIDE / side
        return [_face(score, box / s, eyes / s) for score, box, eyes in self._detect(image, s * to_crop, to_rgb)]

    def _detect(self, image: np.ndarray, to_input: np.ndarray, to_rgb: ToRGB) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """(score, box x0 y0 x1 y1, eyes (2, 2)) in input px for the input that `to_input` maps out of `image`."""
        tensor = cv2.warpAffine(image, to_input, (INPUT_SIDE, INPUT_SIDE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT)
        if to_rgb is not None:
            tensor = to_rgb(tensor)
        self._interpreter.set_tensor(self._input, (tensor.astype(np.float32) * np.float32(2 / 255) - 1)[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes)[0]
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0].astype(np.float64), -100, 100)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.flatnonzero(scores >= self.min_score)
        if not keep.size:
            return []
        anchors = ANCHORS[keep] * INPUT_SIDE
        centre, size = raw[keep, 0:2] + anchors, raw[keep, 2:4]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        points = raw[keep, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        return [(score, box, kp[:2]) for score, box, kp in weighted_nms(boxes, points, scores[keep])]

    def close(self) -> None:
        self._interpreter = None


class TasksBlazeFace:
    """The MediaPipe Tasks FaceDetector with the model, at `min_score`."""

    def __init__(self, model_path: str, min_score: float):
        from mediapipe.tasks.python import BaseOptions, vision  # heavy import, only where a detector is built

        options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_path=str(model_path)),
                                             min_detection_confidence=min_score)
        with quiet_native_stderr():
            self._detector = vision.FaceDetector.create_from_options(options)

    def __call__(self, image: np.ndarray, to_rgb: ToRGB = None) -> list[Face]:
        import mediapipe as mp

        rgb = to_rgb(image) if to_rgb is not None else image
        h, w = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        faces = []
        for det in self._detector.detect(image).detections:
            b, kp = det.bounding_box, det.keypoints  # keypoints are normalised; 0 = right eye, 1 = left eye
            faces.append(Face(score=float(det.categories[0].score),
                              bbox=(float(b.origin_x), float(b.origin_y), float(b.width), float(b.height)),
                              right_eye=(kp[0].x * w, kp[0].y * h), left_eye=(kp[1].x * w, kp[1].y * h)))
        return faces

    def region(self, image: np.ndarray, to_crop: np.ndarray, side: int, to_rgb: ToRGB = None) -> list[Face]:
        """Faces in the side × side crop that `to_crop` maps out of `image`, in crop px."""
        crop = cv2.warpAffine(image, to_crop, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return self(crop, to_rgb)

    def close(self) -> None:
        with quiet_native_stderr():
            self._detector.close()


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what native code writes to file descriptor 2 inside the block (LiteRT prints INFO lines when a
    detector is created and closed, which would break progress bars); Python exceptions still propagate."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
