"""The ingest's per-clip frame cache: each frame decoded once, held while the track or a pair may still need it."""

from __future__ import annotations

import numpy as np

from mer_data.frames import ClipReader, FrameError, dct_scalable
from mer_data.jpeg_region import Region, available
from mer_data.records import Clip


SPARE_REGIONS = 4  # released region arrays kept for reuse


class FrameWindow:
    """One clip's frames by number, each decoded once while it may still be needed; use as a context manager.

    `get(n)` returns the native frame (as `read_image(..., native=True)`) or its FrameError and keeps it until
    `release(below)` drops the frames numbered below `below`. A video is read forward: a frame up to SEEK_AHEAD ahead
    is reached by decoding (and keeping) the frames before it, since the track and the pairs will ask for them; a frame
    further ahead is sought. `decoded` counts decodes, so a frame asked for again after its release shows up twice;
    `decoded_full` those of them that served a face detection only (made by `full` while frames decode reduced, or
    dropped by `reduce`).
    `reduce(d)` switches a folder clip to 1/d-scale decoding (see `read_image`).

    `region(n, box)` returns at least the box of frame n: where the frame is held whole, all of it; else, with
    `regions` on and JPEG frames, the box decoded alone (`mer_data.jpeg_region`: the same pixels, a fraction of the
    work), held like a frame; a later box it does not cover decodes the frame again (`decoded_regions` counts the
    region decodes, `decoded` every decode). `get` and `full` always give the whole frame.
    """

    def __init__(self, clip: Clip, regions: bool = True):
        self.clip = clip
        self.decoded = self.decoded_full = self.decoded_regions = 0
        self.regions = regions and clip.kind == "frames" and available()
        self._reader = ClipReader(clip, native=True)
        self._held: dict[int, np.ndarray | FrameError | Region] = {}
        self._spare: list[Region] = []  # released regions, whose arrays the next region decodes take over

    @property
    def reduction(self) -> int:
        """Frames are decoded at 1/reduction scale (1: full scale)."""
        return self._reader.reduction

    def reduce(self, reduction: int) -> None:
        """Decode every later frame at 1/`reduction` scale (folders of images only); frames held at another scale
        are dropped, so `get` never mixes scales."""
        if reduction != 1 and self.clip.kind != "frames":
            raise ValueError(f"{self.clip.source}: a video decodes at full scale only")
        if reduction != self._reader.reduction:
            if self._reader.reduction == 1:  # full-scale frames decoded so far served a detection only
                self.decoded_full += len(self._held)
            self._held.clear()
            self._reader.reduction = reduction

    @property
    def dct_scalable(self) -> bool:
        """`dct_scalable` of the clip, from the reader's own listing of a folder."""
        return self.clip.kind == "frames" and dct_scalable(self.clip, self._reader.files)

    def get(self, n: int) -> np.ndarray | FrameError:
        held = self._held.get(n)
        if held is not None and not isinstance(held, Region):
            return held
        if self.clip.kind == "frames":
            image = self._held[n] = self._reader.folder_frame(n)
            self.decoded += 1
            return image
        position = self._reader.position  # a video: decode forward to n, or seek when it is far ahead
        ahead = position <= n <= position + ClipReader.SEEK_AHEAD
        for number, image in self._reader.frames(range(position, n + 1) if ahead else [n]):
            self._held[number] = image
            self.decoded += 1
        return self._held[n]

    def region(self, n: int, box: tuple[int, int, int, int]) -> Region | FrameError:
        """At least the box (x0, y0, x1, y1, end exclusive, px at the decoding scale) of frame n."""
        held = self._held.get(n)
        if isinstance(held, Region):
            if held.covers(box):
                return held
            box = (min(box[0], held.box[0]), min(box[1], held.box[1]), max(box[2], held.box[2]),
                   max(box[3], held.box[3]))
        elif held is not None:
            return held if isinstance(held, FrameError) else Region.whole(held)
        if self.regions:
            if isinstance(held, Region):
                self._spare.append(held)
            region = self._reader.folder_region(n, box, self._spare.pop() if self._spare else None)
            if region is not None:
                self._held[n] = region
                self.decoded += 1
                self.decoded_regions += not isinstance(region, FrameError)
                return region
        image = self.get(n)
        return image if isinstance(image, FrameError) else Region.whole(image)

    def full(self, n: int) -> np.ndarray | FrameError:
        """Frame n at full scale whatever `reduction` (for a face detection): decoded apart and not held when frames
        decode reduced, else `get(n)`."""
        if self._reader.reduction == 1:
            return self.get(n)
        reduction, self._reader.reduction = self._reader.reduction, 1
        try:
            image = self._reader.folder_frame(n)
        finally:
            self._reader.reduction = reduction
        self.decoded += 1
        self.decoded_full += 1
        return image

    def release(self, below: int) -> None:
        for n in [n for n in self._held if n < below]:
            held = self._held.pop(n)
            if isinstance(held, Region) and len(self._spare) < SPARE_REGIONS:
                self._spare.append(held)

    @property
    def held(self) -> int:
        """Frames held now (for memory checks)."""
        return len(self._held)

    def close(self) -> None:
        self._held.clear()
        self._reader.close()

    def __enter__(self) -> FrameWindow:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
