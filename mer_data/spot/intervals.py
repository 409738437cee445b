"""Inclusive frame intervals and their overlap (IoU), as the spotting scorers count frames."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Interval:
    """Frames onset..offset, both included, in the dataset's own numbering."""

    onset: int  # first frame of the interval
    offset: int  # last frame of the interval (included)

    def __post_init__(self) -> None:
        if self.offset < self.onset:
            raise ValueError(f"interval {self.onset}..{self.offset} is inverted")

    @property
    def length(self) -> int:
        """Frames in the interval (offset - onset + 1)."""
        return self.offset - self.onset + 1


def intersection(a: Interval, b: Interval) -> int:
    """Frames the two intervals share (0 when they are apart)."""
    return max(0, min(a.offset, b.offset) - max(a.onset, b.onset) + 1)


def iou(a: Interval, b: Interval) -> float:
    """Shared frames over frames in either: touching intervals (a.offset == b.onset) share one frame."""
    shared = intersection(a, b)
    return shared / (a.length + b.length - shared)
