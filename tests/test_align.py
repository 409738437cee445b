"""Face model fetch and alignment: the eye similarity transform, BlazeFace on the astronaut, the face inside the crop."""

import numpy as np
import pytest
from skimage.data import astronaut

from mer_data import MerDataError
from mer_data.align import EYE_DISTANCE, EYE_LINE, FaceDetector, apply, eye_transform, locate_face, resize_transform, warp
from mer_data.facemodel import ENV_VAR, fetch_model, resolve_model, sha256_file


@pytest.fixture(scope="module")
def model():
    return fetch_model().path  # the user cache; fetched (URL, else the mediapipe wheel) on the first run only


@pytest.fixture(scope="module")
def detector(model):
    with FaceDetector(str(model)) as det:
        yield det


@pytest.mark.parametrize("angle", [0.0, 0.3, -0.5])
def test_eye_transform_levels_and_scales_the_eyes(angle):
    centre, half = np.array([300.0, 200.0]), 40.0
    offset = half * np.array([np.cos(angle), np.sin(angle)])
    m = eye_transform(centre - offset, centre + offset, 224)
    right, left = apply(m, [centre - offset, centre + offset])
    assert right[1] == pytest.approx(left[1], abs=1e-3)  # level
    assert left[0] - right[0] == pytest.approx(EYE_DISTANCE * 224, abs=1e-3)
    assert (right + left) / 2 == pytest.approx([112.0, EYE_LINE * 224], abs=1e-3)
    assert np.linalg.det(m[:, :2]) > 0  # no mirroring


def test_resize_transform_maps_corners():
    m = resize_transform(480, 640, 224)
    assert apply(m, [[0, 0], [640, 480]]) == pytest.approx(np.array([[0, 0], [224, 224]]))
    assert warp(np.zeros((480, 640, 3), np.uint8), m, 224).shape == (224, 224, 3)


def test_detector_finds_the_astronaut(detector):
    faces = detector(astronaut())
    assert faces and faces[0].score > 0.8
    assert faces[0].bbox == pytest.approx((177, 82, 95, 95), abs=4)
    assert faces[0].right_eye == pytest.approx((201, 105), abs=3)
    assert faces[0].left_eye == pytest.approx((246, 109), abs=3)


def test_aligned_face_lands_on_the_template(detector):
    """Warp once with the eye matrix, detect again in the 224×224 crop: the eyes sit where the template puts them."""
    frame = np.full((600, 800, 3), 30, np.uint8)
    frame[40:552, 200:712] = astronaut()
    face = locate_face(detector, [frame])
    crop = warp(frame, eye_transform(face.right_eye, face.left_eye, 224), 224)
    again = detector(crop)[0]
    assert again.right_eye == pytest.approx((112 - EYE_DISTANCE * 112, EYE_LINE * 224), abs=4)
    assert again.left_eye == pytest.approx((112 + EYE_DISTANCE * 112, EYE_LINE * 224), abs=4)
    x, y, w, h = again.bbox
    assert x >= 0 and y >= 0 and x + w <= 224 and y + h <= 224  # the whole face is inside the crop


def test_locate_face_skips_faceless_frames(detector):
    blank = np.full((300, 300, 3), 128, np.uint8)
    assert locate_face(detector, [blank, blank]) is None
    face = locate_face(detector, iter([blank, astronaut()]))
    assert face is not None and face.score > 0.8


def test_fetch_falls_back_to_the_wheel(tmp_path, model):
    got = fetch_model(tmp_path, url="http://127.0.0.1:9/unreachable.tflite")
    assert got.source == "wheel" and got.path.is_file()
    assert got.sha256 == sha256_file(got.path) == sha256_file(model)
    assert fetch_model(tmp_path).source == "cache"
    with FaceDetector(str(got.path)) as det:  # the wheel's file loads in the current FaceDetector
        assert det(astronaut())


def test_resolve_model_order(tmp_path, monkeypatch, model):
    assert resolve_model(model) == model
    with pytest.raises(MerDataError, match="--face-model"):
        resolve_model(tmp_path / "nope.tflite")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.tflite"))
    with pytest.raises(MerDataError, match=ENV_VAR):
        resolve_model()
    monkeypatch.setenv(ENV_VAR, str(model))
    assert resolve_model() == model
