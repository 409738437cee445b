"""Decoding only the part of a JPEG frame that an alignment warp reads.

A 224×224 face crop reads a small part of a CAS(ME)^3 or SAMM frame (at 960×720, the warp of a face 140 px between
the eyes reads about 340×350 px, 17 % of the frame), yet a full decode transforms and colour-converts every block.
libjpeg-turbo can skip the rows above a box (entropy-decoding them only), stop below it, and transform only the
columns that hold it (`mer_data/_jpeg.c`, built against the system's libjpeg-turbo when its headers are there; the
build leaves it out otherwise). Measured at 960×720, quality 95: 0.91 ms for that box against 2.44 ms for the whole
frame.

The pixels are those of OpenCV's full decode: rows match exactly; the crop's first and last columns do not
(libjpeg-turbo's chroma upsampling replicates the crop's edge where a full decode has the neighbour), so a column
more is decoded each side and dropped. The box is written into a zeroed frame-sized array at its own place: a warp
with the frame's matrix then reads the same pixels at the same coordinates (warping the box alone with the matrix
shifted by its corner changed about 5 of 50,176 output pixels by one level: OpenCV's warp rounds source coordinates
in float32). `available()` checks this on first use against `cv2.imdecode` on a
small JPEG made for the purpose, at every DCT scale, and leaves the module unused where it fails (another libjpeg
build): a warp of the region then gives the same bytes as a warp of the full frame, with the extension or without.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

_FLAGS = {1: cv2.IMREAD_UNCHANGED, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
          8: cv2.IMREAD_REDUCED_COLOR_8}


@dataclass(frozen=True)
class Region:
    """A frame decoded in part: `image` has the whole frame's shape (at the scale it was decoded) and OpenCV's channel
    order, with the pixels of a full decode inside `box` (x0, y0, x1, y1, end exclusive) and zeros outside it, so a
    warp whose footprint lies in the box reads what it reads from the full frame at the same coordinates. A whole
    frame is the Region whose box is the frame."""

    image: np.ndarray
    box: tuple[int, int, int, int]

    @classmethod
    def whole(cls, image: np.ndarray) -> Region:
        return cls(image, (0, 0, image.shape[1], image.shape[0]))

    def covers(self, box: tuple[int, int, int, int]) -> bool:
        """Whether the box, clipped to the frame, lies inside the decoded one."""
        x0, y0, x1, y1 = clip_box(box, self.image.shape[1], self.image.shape[0])
        return self.box[0] <= x0 and self.box[1] <= y0 and x1 <= self.box[2] and y1 <= self.box[3]


def clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    x0, y0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
    return x0, y0, min(max(x1, x0 + 1), width), min(max(y1, y0 + 1), height)


def decode_region(data: np.ndarray | bytes, box: tuple[int, int, int, int], reduction: int = 1,
                  reuse: Region | None = None) -> Region | None:
    """The box (x0, y0, x1, y1, end exclusive, px of the 1/`reduction`-scale frame) of a JPEG, or a little more of
    it, as a Region; None where the extension is missing or failed its check, or for a JPEG that is neither YCbCr nor
    grayscale (CMYK). A grayscale JPEG gives 2-D pixels at full scale and 3 channels reduced, as OpenCV does. Raises
    ValueError where OpenCV's full decode fails too (a truncated or broken file). `reuse`: a Region no longer needed
    whose array the new one may take over (its box is zeroed first; a frame of another size is not reused), which
    saves zeroing a whole frame per decode."""
    if not available():
        return None
    return _decode(data, box, reduction, reuse)


def _decode(data, box: tuple[int, int, int, int], reduction: int, reuse: Region | None = None) -> Region | None:
    from mer_data import _jpeg

    x0, y0, x1, y1 = box
    into = None
    if reuse is not None and reuse.image.flags.writeable:
        a, b, c, d = reuse.box
        reuse.image[b:d, a:c] = 0
        into = reuse.image
    got = _jpeg.decode_region(memoryview(data), x0, y0, x1, y1, reduction, reduction != 1, into)
    if got is None:
        return None
    pixels, kept0, kept1, width, height, channels = got
    shape = (height, width) if channels == 1 else (height, width, channels)
    image = pixels if pixels is into else np.frombuffer(pixels, np.uint8).reshape(shape)
    y0, y1 = min(max(y0, 0), height - 1), min(max(y1, y0 + 1), height)
    return Region(image, (kept0, y0, kept1, y1))


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether the region decoder is built and gives OpenCV's full-decode pixels here (checked once per process on a
    96×80 test JPEG in 4:2:0 and in grayscale, boxes at the frame's corners and inside, every DCT scale)."""
    try:
        from mer_data import _jpeg  # noqa: F401
    except ImportError:
        return False
    ys, xs = np.mgrid[0:80, 0:96]
    colour = np.stack([(xs * 3 + ys) % 256, (xs * ys) % 256, (255 - 2 * ys + xs) % 256], axis=-1).astype(np.uint8)
    for image in (colour, colour[:, :, 1]):
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        for reduction, flag in _FLAGS.items():
            full = cv2.imdecode(data, flag | cv2.IMREAD_IGNORE_ORIENTATION)
            h, w = full.shape[:2]
            for box in ((0, 0, w // 2, h // 2), (w // 4, h // 3, w - 3, h - 2), (w // 2, h // 2, w, h)):
                region = _decode(data, box, reduction)
                if region is None or not region.covers(box) or region.image.shape != full.shape:
                    return False
                a, b, c, d = region.box
                if not np.array_equal(region.image[b:d, a:c], full[b:d, a:c]):
                    return False
    return True
