"""Decoding a clip's frames, from a folder of numbered images or from a video file, into RGB uint8 arrays."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

import cv2
import numpy as np

from mer_data.jpeg_region import Region, decode_region
from mer_data.records import Clip

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
JPEG_EXTENSIONS = (".jpg", ".jpeg")
REDUCTIONS = (1, 2, 4, 8)  # the DCT scalings libjpeg-turbo decodes directly: 1/1, 1/2, 1/4, 1/8
_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
VIDEO_THREADS = os.cpu_count() or 1  # FFmpeg decoding threads per video: OpenCV's default, made explicit


HELD_HEAP_BYTES = 256 << 20  # freed memory a decoding process keeps for its next frames (glibc heaps only)
_heap_kept = False


def keep_freed_frames() -> bool:
    """Have this process keep freed frame buffers for the next frames instead of handing each back to the OS.

    glibc serves an allocation above its mmap threshold (128 KiB to start, raised to the largest block freed so far)
    with a fresh mapping and returns the heap's free top once it passes the trim threshold, so decoding frames that are
    held a while (a track window) pays a page fault per 4 KiB of every new frame: measured here, a 640×480 JPEG decode
    took 1.26–1.92 ms that way and 0.89–0.92 ms with frames served from kept heap memory. This raises both thresholds
    (frames up to 64 MiB come from the heap; up to HELD_HEAP_BYTES of free heap stays mapped; 1 GiB made a decode
    beside a held track window faster in isolation, 1.99 against 2.23 ms at 960×720, but no whole ingest measurably). Called by the pipelines
    that decode (ingest and spot workers) before their first frame; a no-op where the C library has no `mallopt`
    (macOS, musl). Returns whether the setting was applied (now or earlier in this process)."""
    global _heap_kept
    if not _heap_kept:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        _heap_kept = bool(mallopt(m_mmap_threshold, 64 << 20)) and bool(mallopt(m_trim_threshold, HELD_HEAP_BYTES))
    return _heap_kept


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
    return video_info(path)[0]


def open_video(path: str, threads: int = VIDEO_THREADS) -> cv2.VideoCapture:
    """The video opened through FFmpeg decoding on `threads` threads, else with whatever backend OpenCV picks (a
    file FFmpeg cannot open; the caller checks `isOpened()`)."""
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    if cap.isOpened():
        return cap
    cap.release()
    return cv2.VideoCapture(path)


def video_info(path: str) -> tuple[int, float]:
    """(frame count, frames per second) that OpenCV reports for a video; (0, 0.0) when it cannot be opened."""
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            return 0, 0.0
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()


def frame_span(clip: Clip) -> tuple[int, int, int]:
    """(first, last, count) of a folder clip's frame numbers, scanning the names without keeping them; (0, -1, 0)
    for a folder without frames. Raises OSError when the folder cannot be listed."""
    rx = _compiled(clip.pattern)
    first, last, count = None, None, 0
    with os.scandir(clip.source) as entries:
        for entry in entries:
            if not entry.name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            m = rx.fullmatch(entry.name)
            if m:
                n = int(m.group(1))
                first, last, count = n if first is None else min(first, n), n if last is None else max(last, n), count + 1
    return (first, last, count) if count else (0, -1, 0)


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


def _native(image: np.ndarray) -> np.ndarray:
    """A decoded image in OpenCV's own order: (H, W) grayscale stays 2-D, BGRA loses alpha, BGR is untouched."""
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    return image


def read_image(path: str, native: bool = False, reduction: int = 1) -> np.ndarray:
    """Decode one image file to RGB uint8, raising FrameError with the reason when it cannot be.

    `native=True` skips the colour conversion: (H, W, 3) BGR or (H, W) grayscale, with `to_rgb(x)` equal to the
    default result (the ingest warps and encodes in this order and converts only the frames it detects faces on).
    `reduction` d > 1 decodes at 1/d scale, ceil(H/d) × ceil(W/d), always 3 channels: a JPEG straight from its DCT
    coefficients (libjpeg-turbo's scaled IDCT, about a third of a full decode's time at 1/2), any other format by
    decoding in full and averaging d×d blocks (`cv2.INTER_AREA`), which puts the pixels where the DCT scaling does:
    reduced pixel i covers source pixels d·i .. d·i + d − 1 (`reduced_to_source`).
    """
    if reduction != 1:
        return _read_reduced(path, native, reduction)
    image = cv2.imdecode(_file_bytes(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FrameError(f"corrupt or truncated image {path}")
    if image.dtype != np.uint8:  # 16-bit PNGs and the like
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    return _native(image) if native else to_rgb(image)


def _file_bytes(path: str) -> np.ndarray:
    """The file's bytes (uint8), or a FrameError naming why it cannot be decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise FrameError(f"unreadable file {path}: {exc.strerror}") from exc
    if data.size == 0:
        raise FrameError(f"zero-byte file {path}")
    return data


def _read_reduced(path: str, native: bool, reduction: int) -> np.ndarray:
    if reduction not in _REDUCED_FLAGS:
        raise ValueError(f"reduction {reduction}: expected one of {REDUCTIONS}")
    if not path.lower().endswith(JPEG_EXTENSIONS):
        full = read_image(path, native=True)
        full = cv2.cvtColor(full, cv2.COLOR_GRAY2BGR) if full.ndim == 2 else full
        h, w = full.shape[:2]
        image = cv2.resize(full, (-(-w // reduction), -(-h // reduction)), interpolation=cv2.INTER_AREA)
        return image if native else to_rgb(image)
    data = _file_bytes(path)
    # the full decode (IMREAD_UNCHANGED) ignores EXIF orientation: so must the reduced one, or the geometry differs
    image = cv2.imdecode(data, _REDUCED_FLAGS[reduction] | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise FrameError(f"corrupt or truncated image {path}")
    return image if native else to_rgb(image)


def reduced_to_source(reduction: int) -> np.ndarray:
    """The 2×3 matrix mapping pixel coordinates of a 1/`reduction` decode to those of the full-scale frame: the
    centre of reduced pixel i is the centre of source pixels d·i .. d·i + d − 1, i.e. x = d·x' + (d − 1)/2."""
    d, shift = float(reduction), (reduction - 1) / 2.0
    return np.array([[d, 0.0, shift], [0.0, d, shift]])


def dct_scalable(clip: Clip, files: dict[int, str] | None = None) -> bool:
    """Whether the clip's frames are JPEG files, which decode at reduced scale for a fraction of a full decode
    (videos and other image formats do not: they decode in full whatever the scale); `files`: the folder's
    `frame_files` where the caller has listed it already."""
    if clip.kind != "frames":
        return False
    files = frame_files(clip) if files is None else files
    return bool(files) and next(iter(files.values())).lower().endswith(JPEG_EXTENSIONS)


def iter_frames(clip: Clip, numbers: Iterable[int]) -> Iterator[tuple[int, np.ndarray | FrameError]]:
    """Yield (number, RGB frame) for the requested numbers in increasing order; a bad frame yields its FrameError.

    Videos are decoded in one forward pass (seeking when a wanted frame is far ahead), so asking for every frame costs
    one decode each and asking for a late stretch does not decode the start.
    """
    with ClipReader(clip) as reader:
        yield from reader.frames(numbers)


class ClipReader:
    """Reads one clip's frames over several calls without starting over: a folder is listed once, a video stays open.

    `frames(numbers)` yields (number, frame or FrameError) in increasing order. Between calls a video keeps its
    position, so consecutive chunks cost one decode per frame; a wanted frame more than SEEK_AHEAD frames ahead (or
    behind the position) is reached with a seek that is verified, falling back to decoding from the start when OpenCV
    cannot confirm it. `native=True` gives frames as `read_image(..., native=True)` does. Use as a context manager.
    """

    SEEK_AHEAD = 48  # OpenCV's FFmpeg seek decodes forward from a keyframe >= 16 frames back: only worth it beyond this

    def __init__(self, clip: Clip, native: bool = False, reduction: int = 1):
        self.clip, self.native = clip, native
        self.reduction = reduction  # folders: decode at 1/reduction scale (`read_image`); videos decode in full
        self._files: dict[int, str] | None = None  # folder: listed on first use
        self._cap: cv2.VideoCapture | None = None  # video: opened on first use
        self._position = clip.first  # video: number of the frame the next read() returns
        self._end: int | None = None  # video: number at which grab() found no more frames, once known
        self._seekable = True  # video: False after a seek OpenCV could not confirm (then only decode forward)

    def frames(self, numbers: Iterable[int]) -> Iterator[tuple[int, np.ndarray | FrameError]]:
        wanted = sorted(set(numbers))
        if self.clip.kind == "frames":
            yield from self._folder_frames(wanted)
        else:
            yield from self._video_frames(wanted)

    @property
    def position(self) -> int:
        """Video: number of the frame the next read returns (folders: the clip's first number, unused)."""
        return self._position

    @property
    def files(self) -> dict[int, str]:
        """A folder clip's `frame_files`, listed on first use."""
        if self._files is None:
            self._files = frame_files(self.clip)
        return self._files

    def folder_frame(self, n: int) -> np.ndarray | FrameError:
        """Frame n of a folder clip, or its FrameError."""
        path = self.files.get(n)
        if path is None:
            return FrameError(f"frame {n} missing from {self.clip.source}")
        try:
            return read_image(path, self.native, self.reduction)
        except FrameError as exc:
            return exc

    def folder_region(self, n: int, box: tuple[int, int, int, int],
                      reuse: Region | None = None) -> Region | FrameError | None:
        """The box (x0, y0, x1, y1, end exclusive, px at the reader's scale) of folder frame n, or more of it, decoded
        alone (`mer_data.jpeg_region`, which may take over the array of `reuse`); its FrameError; or None where the
        frame is not a JPEG the region decoder takes (then decode it whole: same pixels)."""
        path = self.files.get(n)
        if path is None:
            return FrameError(f"frame {n} missing from {self.clip.source}")
        if not path.lower().endswith(JPEG_EXTENSIONS):
            return None
        try:
            region = decode_region(_file_bytes(path), box, self.reduction, reuse)
        except FrameError as exc:
            return exc
        except ValueError:  # what OpenCV's full decode would fail on too
            return FrameError(f"corrupt or truncated image {path}")
        if region is not None and not self.native:
            region = Region(to_rgb(region.image), region.box)
        return region

    def _folder_frames(self, wanted: list[int]) -> Iterator[tuple[int, np.ndarray | FrameError]]:
        for n in wanted:
            yield n, self.folder_frame(n)

    def _video_frames(self, wanted: list[int]) -> Iterator[tuple[int, np.ndarray | FrameError]]:
        source = self.clip.source
        if self._cap is None:
            self._open()
        for n in wanted:
            if not self._cap.isOpened():
                yield n, FrameError(f"unreadable video {source}")
            elif n < self.clip.first:
                yield n, FrameError(f"frame {n} precedes the first frame {self.clip.first} of {source}")
            else:
                ok = self._move_to(n)
                ok, image = self._cap.read() if ok else (False, None)
                self._position += 1
                if not ok or image is None:
                    yield n, FrameError(f"frame {n} could not be decoded from {source}")
                else:
                    yield n, _native(image) if self.native else to_rgb(image)

    def _open(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap, self._position = open_video(self.clip.source), self.clip.first

    def _move_to(self, n: int) -> bool:
        """Position the video so the next read() returns frame n; False when the video ends before it."""
        if self._end is not None and n >= self._end:
            return False
        if self._seekable and (n < self._position or n - self._position > self.SEEK_AHEAD):
            index = n - self.clip.first  # 0-based position in the file
            if self._cap.set(cv2.CAP_PROP_POS_FRAMES, index) and int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) == index:
                self._position = n
                return True
            self._seekable = False
            self._open()  # the seek landed somewhere unknown: decode from the start instead
        elif n < self._position:
            self._open()
        while self._position < n:  # grab() skips without converting to pixels
            if not self._cap.grab():
                self._end = self._position
                return False
            self._position += 1
        return True

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> ClipReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
