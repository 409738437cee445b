"""The ingest's per-clip frame cache: each frame decoded once, held while the track or a pair may still need it."""

from __future__ import annotations

import numpy as np

from mer_data.frames import ClipReader, FrameError, dct_scalable
from mer_data.records import Clip


class FrameWindow:
    """One clip's frames by number, each decoded once while it may still be needed; use as a context manager.

    `get(n)` returns the native frame (as `read_image(..., native=True)`) or its FrameError and keeps it until
    `release(below)` drops the frames numbered below `below`. A video is read forward: a frame up to SEEK_AHEAD ahead
    is reached by decoding (and keeping) the frames before it, since the track and the pairs will ask for them; a frame
    further ahead is sought. `decoded` counts decodes, so a frame asked for again after its release shows up twice;
    `decoded_full` those of them that served a face detection only (made by `full` while frames decode reduced, or
    dropped by `reduce`).
    `reduce(d)` switches a folder clip to 1/d-scale decoding (see `read_image`).
    """

    def __init__(self, clip: Clip):
        self.clip = clip
        self.decoded = self.decoded_full = 0
        self._reader = ClipReader(clip, native=True)
        self._held: dict[int, np.ndarray | FrameError] = {}

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
        if n in self._held:
            return self._held[n]
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
            del self._held[n]

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
