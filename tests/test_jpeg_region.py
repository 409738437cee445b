"""JPEG region decoding (mer_data/jpeg_region.py, mer_data/_jpeg.c): the box of a full decode's pixels and zeros
elsewhere, at every DCT scale and chroma layout; faults as a full decode sees them; warps equal to the full frame's;
the frame window's reuse and re-decoding."""

import io

import cv2
import numpy as np
import pytest

from mer_data import jpeg_region
from mer_data.align import footprint, warp
from mer_data.frame_window import FrameWindow
from mer_data.frames import FrameError
from mer_data.jpeg_region import Region, decode_region
from mer_data.records import Clip

pytestmark = pytest.mark.skipif(not jpeg_region.available(),
                                reason="the JPEG region decoder (mer_data._jpeg) is not built here")

FLAGS = {1: cv2.IMREAD_UNCHANGED, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
         8: cv2.IMREAD_REDUCED_COLOR_8}
SAMPLING = {"420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
            "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444}


def _picture(h: int = 203, w: int = 301, seed: int = 0) -> np.ndarray:
    """Texture with edges in every channel (odd sizes: partial blocks at the right and bottom)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w]
    base = np.stack([(xs * 3 + ys) % 256, (xs * ys // 7) % 256, (255 - 2 * ys + xs) % 256], axis=-1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _jpeg(image: np.ndarray, sampling: str = "420", **extra) -> np.ndarray:
    params = [cv2.IMWRITE_JPEG_QUALITY, 92]
    if image.ndim == 3:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, SAMPLING[sampling]]
    for flag, value in extra.items():
        params += [getattr(cv2, flag), value]
    return cv2.imencode(".jpg", image, params)[1]


BOXES = [(0, 0, 40, 30), (57, 33, 190, 171), (150, 100, 301, 203), (-20, -9, 400, 300), (290, 190, 340, 260)]


@pytest.mark.parametrize("layout", ["420", "422", "444", "gray", "progressive"])
@pytest.mark.parametrize("d", [1, 2, 4, 8])
def test_the_box_holds_the_full_decode_and_zeros_surround_it(layout, d):
    image = _picture()
    data = (_jpeg(image[:, :, 1]) if layout == "gray" else
            _jpeg(image, IMWRITE_JPEG_PROGRESSIVE=1) if layout == "progressive" else _jpeg(image, layout))
    full = cv2.imdecode(data, FLAGS[d] | cv2.IMREAD_IGNORE_ORIENTATION)
    h, w = full.shape[:2]
    for box in BOXES:
        box = tuple(v // d for v in box)
        region = decode_region(data, box, d)
        assert region.image.shape == full.shape and region.covers(box)
        x0, y0, x1, y1 = region.box
        assert np.array_equal(region.image[y0:y1, x0:x1], full[y0:y1, x0:x1])
        outside = np.ones((h, w), bool)
        outside[y0:y1, x0:x1] = False
        assert not region.image[outside].any()
        # the box is the one asked for (clipped), widened by at most the decoder's block alignment
        cx0, cy0, cx1, cy1 = jpeg_region.clip_box(box, w, h)
        assert (y0, y1) == (cy0, cy1) and cx0 - 32 <= x0 <= cx0 and cx1 <= x1 <= cx1 + 32


def test_faults_are_those_a_full_decode_sees():
    data = _jpeg(_picture(480, 640))
    box = (100, 50, 200, 150)  # near the top: a cut below it is only seen by reading past the box
    for keep in (0.3, 0.9, 0.99):
        cut = data[: int(len(data) * keep)]
        assert cv2.imdecode(cut, cv2.IMREAD_UNCHANGED) is None
        with pytest.raises(ValueError, match="Premature end"):
            decode_region(cut, box)
    with pytest.raises(ValueError):
        decode_region(np.frombuffer(b"not a jpeg at all", np.uint8), box)
    damaged = data.copy()
    damaged[len(data) // 2: len(data) // 2 + 64] = 0  # corrupt entropy data: a warning, decoded anyway, like OpenCV
    full = cv2.imdecode(damaged, cv2.IMREAD_UNCHANGED)
    region = decode_region(damaged, (0, 0, 640, 480))
    assert full is not None and np.array_equal(region.image, full)


def test_colour_spaces_other_than_ycbcr_and_grey_are_left_to_the_full_decode():
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_picture()).convert("CMYK").save(buf, "JPEG", quality=90)
    assert decode_region(np.frombuffer(buf.getvalue(), np.uint8), (0, 0, 50, 50)) is None


def test_a_warp_inside_the_footprint_gives_the_full_frames_bytes():
    data = _jpeg(_picture(720, 960, seed=1))
    full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    rng = np.random.default_rng(3)
    for _ in range(20):
        s, a = 0.4 + 0.3 * rng.random(), 0.1 * rng.normal()
        matrix = np.round(np.array([[s * np.cos(a), s * np.sin(a), -s * rng.uniform(-100, 700)],
                                    [-s * np.sin(a), s * np.cos(a), -s * rng.uniform(-100, 500)]]), 6)
        region = decode_region(data, footprint([matrix], 224))
        assert np.array_equal(warp(region.image, matrix, 224), warp(full, matrix, 224))
        assert not region.covers((0, 0, 960, 720)) or np.array_equal(region.image, full)


def test_a_region_array_taken_over_is_cleared_outside_the_new_box():
    data = [_jpeg(_picture(seed=k)) for k in (0, 1)]
    first = decode_region(data[0], (0, 0, 150, 100))
    second = decode_region(data[1], (150, 100, 301, 203), reuse=first)
    assert second.image is first.image  # the same array, now the second frame's
    full = cv2.imdecode(data[1], cv2.IMREAD_UNCHANGED)
    x0, y0, x1, y1 = second.box
    expected = np.zeros_like(full)
    expected[y0:y1, x0:x1] = full[y0:y1, x0:x1]
    assert np.array_equal(second.image, expected)
    other = decode_region(_jpeg(_picture(100, 120)), (0, 0, 50, 50), reuse=second)  # another size: a new array
    assert other.image.shape == (100, 120, 3) and other.image is not second.image


def test_frame_window_serves_boxes_and_decodes_again_for_a_box_it_lacks(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for n in (1, 2):
        (folder / f"img{n}.jpg").write_bytes(_jpeg(_picture(seed=n)).tobytes())
    (folder / "img3.jpg").write_bytes(_jpeg(_picture(seed=3)).tobytes()[:500])
    clip = Clip("d", "s1", "c", str(folder), "frames", r"img(\d+)\.jpg")
    full = cv2.imread(str(folder / "img1.jpg"), cv2.IMREAD_UNCHANGED)
    with FrameWindow(clip) as frames:
        small = frames.region(1, (10, 10, 60, 60))
        assert isinstance(small, Region) and not small.covers((0, 0, 301, 203))
        assert frames.region(1, (20, 20, 50, 50)) is small  # held, and covers it
        wider = frames.region(1, (100, 100, 200, 150))  # not covered: decoded again, both boxes in
        assert wider.covers((10, 10, 200, 150)) and (frames.decoded, frames.decoded_regions) == (2, 2)
        assert np.array_equal(frames.get(1), full)  # `get` is always the whole frame
        assert frames.region(1, (0, 0, 301, 203)).covers((0, 0, 301, 203))  # now held whole
        assert isinstance(frames.region(3, (0, 0, 10, 10)), FrameError)  # a truncated frame stays a bad frame
    with FrameWindow(clip, regions=False) as frames:
        assert frames.region(2, (10, 10, 60, 60)).covers((0, 0, 301, 203))  # off: whole frames
        assert frames.decoded_regions == 0
