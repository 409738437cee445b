"""The LiteRT BlazeFace runtime against its reference, the MediaPipe Tasks FaceDetector, and its parts."""

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from mer_data import MerDataError
from mer_data import blazeface
from mer_data.blazeface import ANCHORS, LiteRTBlazeFace, TasksBlazeFace, resolve_runtime, weighted_nms
from mer_data.facemodel import fetch_model


@pytest.fixture(scope="module")
def runtimes():
    path = str(fetch_model().path)
    lite, tasks = LiteRTBlazeFace(path, 0.3), TasksBlazeFace(path, 0.3)
    yield lite, tasks
    lite.close()
    tasks.close()


def framed(width: int, height: int, fill: float = 0.8) -> np.ndarray:
    """The astronaut photograph scaled to `fill` of the frame's short side on a grey frame of width × height."""
    canvas = np.full((height, width, 3), 90, np.uint8)
    s = min(width, height) / 512 * fill
    photo = cv2.resize(astronaut(), None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    y, x = (height - photo.shape[0]) // 3, (width - photo.shape[1]) // 2
    canvas[y:y + photo.shape[0], x:x + photo.shape[1]] = photo
    return canvas


def test_anchors_follow_the_short_range_layout():
    assert ANCHORS.shape == (896, 2)
    assert ANCHORS[0] == pytest.approx([1 / 32, 1 / 32]) and ANCHORS[1] == pytest.approx([1 / 32, 1 / 32])
    assert ANCHORS[511] == pytest.approx([31 / 32, 31 / 32])  # 16×16 cells, 2 anchors each
    assert ANCHORS[512] == pytest.approx([1 / 16, 1 / 16]) and ANCHORS[-1] == pytest.approx([15 / 16, 15 / 16])
    assert (ANCHORS[512:518] == ANCHORS[512]).all()  # 8×8 cells, 6 anchors each


def test_weighted_nms_averages_overlapping_detections_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float64)
    points = np.array([[[2, 2]], [[5, 2]], [[55, 55]]], np.float64)
    scores = np.array([0.6, 0.9, 0.5])
    faces = weighted_nms(boxes, points, scores)
    assert [f[0] for f in faces] == [0.9, 0.5]  # the best one's score; the far box stays on its own
    assert faces[0][1] == pytest.approx((0.6 * boxes[0] + 0.9 * boxes[1]) / 1.5)
    assert faces[0][2][0] == pytest.approx([(0.6 * 2 + 0.9 * 5) / 1.5, 2])


@pytest.mark.parametrize("shape, exact", [((512, 512), True), ((640, 480), True), ((1280, 720), True),
                                          ((960, 720), False), ((320, 240), False), ((720, 576), False)])
def test_litert_gives_the_tasks_detections(runtimes, shape, exact):
    """Frames whose long side is a multiple of 128 resample alike in both runtimes: the same detection to 0.02 px
    (the refinement crop, 256 px, always is one); other sizes within the two bilinear resamplers' difference, a few
    percent of the eye distance."""
    lite, tasks = runtimes
    image = framed(*shape, fill=0.5 if shape == (1280, 720) else 0.8)
    ours, ref = (max(run(image), key=lambda f: f.score) for run in (lite, tasks))
    eyes = np.hypot(*np.subtract(ref.left_eye, ref.right_eye))
    tol = 0.02 if exact else 0.03 * eyes
    assert ours.score == pytest.approx(ref.score, abs=0.001 if exact else 0.005)
    assert np.hypot(*np.subtract(ours.right_eye, ref.right_eye)) <= tol
    assert np.hypot(*np.subtract(ours.left_eye, ref.left_eye)) <= tol
    assert np.subtract(ours.bbox, ref.bbox) == pytest.approx([0, 0, 0, 0], abs=1 if exact else 3)


def test_no_face_gives_nothing(runtimes):
    lite, tasks = runtimes
    blank = np.full((480, 640, 3), 120, np.uint8)
    assert lite(blank) == [] and tasks(blank) == []


def test_runtime_names(monkeypatch):
    assert resolve_runtime("mediapipe") == "mediapipe"
    assert resolve_runtime("auto") == "litert"  # installed with the project
    with pytest.raises(MerDataError, match="--face-runtime tpu"):
        resolve_runtime("tpu")
    monkeypatch.setattr(blazeface, "litert_available", lambda: False)
    assert resolve_runtime("auto") == "mediapipe"
    with pytest.raises(MerDataError, match="ai-edge-litert"):
        resolve_runtime("litert")


def test_find_face_is_the_same_on_either_runtime():
    """Both detector calls of `find_face` agree where the frame resamples alike (640×480; the refinement crop,
    which LiteRT samples straight at the model's input, always does)."""
    from mer_data.align import FaceDetector, find_face

    path = str(fetch_model().path)
    image = framed(640, 480)
    with FaceDetector(path, runtime="litert") as lite, FaceDetector(path, runtime="mediapipe") as tasks:
        ours, ref = find_face(lite, image), find_face(tasks, image)
    assert ours.bbox == pytest.approx(ref.bbox, abs=1e-3)
    assert ours.right_eye == pytest.approx(ref.right_eye, abs=1e-3)
    assert ours.left_eye == pytest.approx(ref.left_eye, abs=1e-3)
