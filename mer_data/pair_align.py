"""One alignment matrix per pair, from the clip's face track: matrix blocks, and the pass over a clip segment that
tracks the face window by window and hands out each pair's matrix (or why it has none) in frame order.

Both frames of a pair are warped with the SAME matrix, so nothing moves inside a pair but the face itself: pretraining
pairs take the matrix of the block holding their middle frame (`leaf_blocks`; a head moving within the pair is then
off by half its motion in each frame rather than all of it in one), a labeled sample the matrix of its mean eyes over
onset..apex (`span_matrix`). Blocks follow a fixed grid anchored at the clip's first frame and are halved only where the
face moves, so a still head gives long runs of frames with one matrix, each frame encoded once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from mer_data.align import EYE_DISTANCE, EYE_LINE, Face, apply, eye_transform
from mer_data.track import LOST, TrackConfig, TrackWindow, analyse, observe, schedule


def template(size: int) -> np.ndarray:
    """Where the aligned layout puts the (right, left) eyes: (2, 2) output px."""
    half = EYE_DISTANCE * size / 2
    return np.array([[size / 2 - half, EYE_LINE * size], [size / 2 + half, EYE_LINE * size]])


def mean_matrix(eyes: np.ndarray, size: int) -> np.ndarray:
    """The similarity matrix putting the mean (right, left) eyes of frames `eyes` (k, 2, 2) on the template."""
    right, left = eyes.mean(axis=0)
    return eye_transform(right, left, size)


def deviation_px(matrix: np.ndarray, eyes: np.ndarray, size: int) -> float:
    """The largest distance, in output px, between an eye of `eyes` (k, 2, 2) mapped through `matrix` and its place
    on the template."""
    mapped = apply(matrix, eyes.reshape(-1, 2)).reshape(-1, 2, 2)
    return float(np.hypot(*(mapped - template(size)).reshape(-1, 2).T).max())


def top_block(first: int, last: int, n: int, length: int) -> tuple[int, int]:
    """The top-level matrix block (lo, hi) holding frame n: a grid of `length` frames anchored at the clip's first."""
    lo = first + (n - first) // length * length
    return lo, min(lo + length - 1, last)


def leaf_blocks(track: TrackWindow, lo: int, hi: int, cfg: TrackConfig) -> list[tuple[int, int, np.ndarray | None]]:
    """Frames lo..hi (a top-level block inside the track window) as pieces (a, b, matrix) sharing one matrix.

    A piece is kept when its tracked frames belong to one shot and all stay within `tolerance_px` of the template
    under the matrix of their mean eyes; otherwise it is halved, down to single frames. A piece with no tracked frame
    has no matrix (None)."""
    pieces, stack = [], [(lo, hi)]
    while stack:
        a, b = stack.pop()
        part = slice(track.index(a), track.index(b) + 1)
        tracked = track.shot[part] != LOST
        if not tracked.any():
            pieces.append((a, b, None))
            continue
        eyes = track.eyes[part][tracked]
        matrix = mean_matrix(eyes, cfg.size)
        one_shot = np.unique(track.shot[part][tracked]).size == 1
        if a == b or (one_shot and deviation_px(matrix, eyes, cfg.size) <= cfg.tolerance_px * cfg.size / 224):
            pieces.append((a, b, matrix))
        else:
            mid = (a + b) // 2
            stack += [(mid + 1, b), (a, mid)]
    return sorted(pieces, key=lambda piece: piece[0])


def span_matrix(track: TrackWindow, a: int, b: int, cfg: TrackConfig) -> tuple[np.ndarray | None, str]:
    """One matrix for frames a..b (a labeled sample's onset..apex): (matrix of their mean eyes, '') when they are one
    tracked shot, else (None, why not)."""
    reason = track.lost_reason(a, b)
    if reason:
        return None, reason
    return mean_matrix(track.eyes[track.index(a): track.index(b) + 1], cfg.size), ""


@dataclass(frozen=True)
class PairMatrix:
    """The alignment of one pair: its matrix (None when lost), why it is lost, and the tracked eyes of its frames."""

    index: int  # position of the pair in the list given to `align_pairs`
    matrix: np.ndarray | None  # 2×3, used for both frames
    reason: str  # '' when the pair is tracked
    eyes: np.ndarray | None  # (2, 2, 2): frames (t0, t1) × eyes (right, left) × (x, y), source px


class Tracker:
    """A clip's face observations, shared by every window asked of it, so each frame is detected at most once.

    `release(n)` (optional) is told when frames below n are no longer needed by the tracker or the pairs; `known`
    (optional) holds detections made earlier in the clip (by the tracker of its previous segment) and gains this
    one's."""

    def __init__(self, detect: Callable[[int], Face | None], first: int, last: int, fps: float, cfg: TrackConfig,
                 release: Callable[[int], None] | None = None, known: dict[int, Face | None] | None = None):
        self.detect, self.first, self.last, self.fps, self.cfg = detect, first, last, fps, cfg
        self.release = release or (lambda n: None)
        self.known: dict[int, Face | None] = {} if known is None else known

    def window(self, lo: int, hi: int, keep_from: int, extra: tuple[int, ...] = ()) -> TrackWindow:
        """The track over frames lo..hi from the scheduled detections within the margin (plus frames `extra`);
        frames below `keep_from` are released as soon as the detections pass them."""
        m, step = self.cfg.margin(self.fps), self.cfg.step(self.fps)
        if self.last - self.first < step and not extra:
            return self._short_window(lo, hi)
        points = sorted(set(schedule(self.first, self.last, step, lo - m, hi + m)) | set(extra))
        obs = observe(self.detect, points, self.cfg, self.known, lambda b: self.release(min(b, keep_from)))
        return analyse(obs, lo, hi, self.cfg, self.fps)

    def _short_window(self, lo: int, hi: int) -> TrackWindow:
        """A clip shorter than one detection step: its first frame's detection stands for the whole clip (the head is
        taken as still over less than 1/detect_hz seconds), which halves the detections of short clips (CASME II's,
        SAMM's); a face that vanishes before the clip's end is then not seen (the scheduled end detection would)."""
        face = self.known[self.first] if self.first in self.known else self.detect(self.first)
        self.known[self.first] = face
        return analyse({self.first: face, self.last: face}, lo, hi, self.cfg, self.fps)


def _result(k: int, track: TrackWindow, t0: int, t1: int, matrix: np.ndarray | None, reason: str) -> PairMatrix:
    if reason or matrix is None:
        return PairMatrix(k, None, reason or f"no face tracked at frame {t0}", None)
    return PairMatrix(k, matrix, "", track.eyes[[track.index(t0), track.index(t1)]])


def align_pairs(tracker: Tracker, pairs: list[tuple[int, int]], labeled: bool) -> Iterator[PairMatrix]:
    """Each pair's alignment, in pair order: `align_blocks` flattened."""
    for block in align_blocks(tracker, pairs, labeled):
        yield from block


def align_blocks(tracker: Tracker, pairs: list[tuple[int, int]], labeled: bool) -> Iterator[list[PairMatrix]]:
    """The pairs' alignments one block at a time, for `pairs` (t0, t1) sorted by t0; the tracker's `release` learns
    when frames below a number are no longer needed. A block's list comes before the next block is tracked, so a
    caller that encodes a block as it comes holds about a block of frames plus the lookahead, and knows every matrix
    a frame of the block needs when it first decodes it.

    Pretraining pairs are tracked one top-level block at a time and take the matrix of the piece holding their middle
    frame (clamped to the block); a labeled sample (onset, apex) gets its own window (a block of one), with detections
    forced on its onset and apex, and the matrix of its mean eyes over onset..apex."""
    cfg, k = tracker.cfg, 0
    while k < len(pairs):
        t0 = pairs[k][0]
        if labeled:
            t1 = pairs[k][1]
            track = tracker.window(t0, t1, keep_from=t0, extra=(t0, t1))
            yield [_result(k, track, t0, t1, *span_matrix(track, t0, t1, cfg))]
            k += 1
            continue
        lo, hi = top_block(tracker.first, tracker.last, t0, cfg.block(tracker.fps))
        end = k
        while end < len(pairs) and pairs[end][0] <= hi:
            end += 1
        track = tracker.window(lo, max(hi, max(t1 for _, t1 in pairs[k:end])), keep_from=t0)
        pieces = leaf_blocks(track, lo, hi, cfg)
        block = []
        for j in range(k, end):
            a, b = pairs[j]
            mid = min((a + b) // 2, hi)  # the pair's middle frame, within this block
            matrix = next(m for p, q, m in pieces if p <= mid <= q)
            block.append(_result(j, track, a, b, matrix, track.lost_reason(a, b)))
        yield block
        k = end
