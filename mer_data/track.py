"""Face tracks: sparse detections over a clip, densified where the face moves or vanishes, cleaned, cut into shots,
smoothed, and turned into one alignment matrix per stretch of frames.

Everything here is a pure function of *observations* `{frame number: Face | None}` (None: no face above the fallback
confidence, eyes outside the frame, or an unreadable frame), so it is tested without images. How it works:

1. `schedule`: a detection every `step` frames on a grid anchored at the clip's first frame (`detect_hz` per
   second), plus the clip's last frame.
2. `observe`: between two neighbouring observations that disagree (a face on one side only, or eyes that moved more
   than `move_px`), the midpoint is detected too, recursively: fast motion gets denser detections and the frame where a
   face appears, vanishes or jumps is found exactly. Whether an interval is split depends on its two ends only.
3. `analyse`: a face below `min_confidence` counts only next to a confident, consistent one (hysteresis); a face far
   from both neighbours while they agree with each other is an outlier and dropped (one bad detection never bends the
   track); consecutive faces further apart than `cut_px` are a cut (a new shot: an edit or another person); frames at or
   between faceless observations are lost, and so are shots shorter than `min_shot` frames. Eye keypoints are smoothed
   within each shot by a Gaussian-weighted linear fit over ±`smooth_s` seconds, which follows a steady drift without lag.
4. Matrices (`mer_data/pair_align.py`): frames share one matrix in blocks on a fixed grid (`block_s`, at most
   `block_max` frames), halved until every frame's smoothed eyes stay within `tolerance_px` of the template under the
   block's matrix; a pair takes the matrix of the piece holding its middle frame for BOTH frames.

Every quantity at frame f depends only on observations within `margin` frames of f, so a clip cut into windows (shards,
chunks) gives exactly the track it gives whole. Distances are in aligned output pixels: a face's eye distance maps to
EYE_DISTANCE·size, so the tolerances do not depend on the face's size in the source frame; they are stated for a
224×224 output and scale with `size`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mer_data.align import EYE_DISTANCE, Face

LOST = -1  # shot id of a frame without a tracked face


@dataclass(frozen=True)
class TrackConfig:
    """Tracking and matrix-sharing settings; times in seconds, distances in aligned output pixels."""

    size: int = 224  # output side; the px tolerances below are for 224 and scale with it
    detect_hz: float = 3.0  # scheduled detections per second of video
    min_confidence: float = 0.5  # a face at or above this score counts on its own
    fallback_confidence: float = 0.3  # a weaker face counts next to a confident, consistent neighbour
    move_px: float = 6.0  # neighbouring detections whose eyes differ by more get a detection between them
    outlier_px: float = 12.0  # a face this far from both agreeing neighbours is a bad detection, dropped
    cut_px: float = 30.0  # consecutive faces this far apart are different shots (an edit, another person)
    min_shot: int = 3  # shots shorter than this (frames) are lost: two bad detections in a row, not a face
    smooth_s: float = 0.5  # radius of the smoothing window
    block_s: float = 2.0  # longest stretch of frames sharing one matrix...
    block_max: int = 64  # ...and at most this many frames (bounds the frames a worker holds)
    tolerance_px: float = 1.0  # a block keeps one matrix while every frame's eyes stay this close to the template

    def step(self, fps: float) -> int:
        """Frames between scheduled detections."""
        return max(1, round(fps / self.detect_hz))

    def radius(self, fps: float) -> int:
        """Frames either side of a frame whose detections are smoothed into its eyes."""
        return max(self.step(fps), round(self.smooth_s * fps))

    def block(self, fps: float) -> int:
        """Frames in a top-level matrix block."""
        return max(1, min(self.block_max, round(self.block_s * fps)))

    def margin(self, fps: float) -> int:
        """Frames of observations needed either side of a frame for its track to be final."""
        return self.radius(fps) + 2 * self.step(fps)


def change_px(a: Face, b: Face, size: int = 224) -> float:
    """How far b's eyes are from a's, in aligned px of a size×size output (the larger of the two eyes' moves)."""
    ra, la, rb, lb = (np.asarray(p, np.float64) for p in (a.right_eye, a.left_eye, b.right_eye, b.left_eye))
    distance = (np.hypot(*(la - ra)) + np.hypot(*(lb - rb))) / 2
    moved = max(np.hypot(*(rb - ra)), np.hypot(*(lb - la)))
    return float(moved * EYE_DISTANCE * size / max(distance, 1e-6))


def schedule(first: int, last: int, step: int, lo: int, hi: int) -> list[int]:
    """Detection frames covering [lo, hi]: grid points first + j·step from the last one ≤ lo to the first one ≥ hi,
    clipped to the clip, plus the clip's last frame when it falls inside."""
    lo, hi = max(lo, first), min(hi, last)
    j0, j1 = (lo - first) // step, -(-(hi - first) // step)
    points = [first + j * step for j in range(j0, j1 + 1) if first + j * step <= last]
    if points and points[-1] < last and hi + step > last:  # the last grid point < last: the end is observed too
        points.append(last)
    return points


def _split(a: Face | None, b: Face | None, cfg: TrackConfig) -> bool:
    if (a is None) != (b is None):
        return True  # a face appears or vanishes in between: find the frame
    return a is not None and change_px(a, b) > cfg.move_px


def observe(detect: Callable[[int], Face | None], points: list[int], cfg: TrackConfig,
            known: dict[int, Face | None] | None = None,
            passed: Callable[[int], None] | None = None) -> dict[int, Face | None]:
    """Observations at `points` and at the midpoints bisection asks for; `known` caches earlier detections.

    Intervals are resolved in frame order, so frames are asked for roughly in order (a video reads forward), and
    `passed(b)` is called once no frame below b will be asked for by this call. `detect(n)` returns the face of frame n
    (or None) and is called once per frame over all calls sharing `known`.
    """
    known = {} if known is None else known

    def get(n: int) -> Face | None:
        if n not in known:
            known[n] = detect(n)
        return known[n]

    obs = {points[0]: get(points[0])} if points else {}
    for a, b in zip(points, points[1:]):
        obs[b] = get(b)
        stack = [(a, b)]
        while stack:  # left half first: frames in increasing order
            lo, hi = stack.pop()
            if hi - lo > 1 and _split(obs[lo], obs[hi], cfg):
                m = (lo + hi) // 2
                obs[m] = get(m)
                stack += [(m, hi), (lo, m)]
        if passed is not None:
            passed(b)
    return obs


@dataclass
class TrackWindow:
    """The track over frames lo..hi: per frame a shot id (LOST = no face) and smoothed eyes (NaN where lost)."""

    lo: int
    hi: int
    shot: np.ndarray  # (n,) int, n = hi - lo + 1
    eyes: np.ndarray  # (n, 2, 2) float64: (right, left) × (x, y), source-frame px
    cuts: list[int]  # frames that start a new shot after a cut
    detections: int  # observations used

    def index(self, n: int) -> int:
        if not self.lo <= n <= self.hi:
            raise IndexError(f"frame {n} outside the track window {self.lo}..{self.hi}")
        return n - self.lo

    @cached_property
    def _run_starts(self) -> list[int]:
        """Per frame, the index of the first frame of its run of equal shot ids."""
        starts = np.flatnonzero(np.diff(self.shot, prepend=self.shot[:1] - 1))
        return np.repeat(starts, np.diff(starts, append=len(self.shot))).tolist()

    def lost_reason(self, t0: int, t1: int) -> str:
        """'' when frames t0..t1 are one tracked shot, else why not (naming the frames)."""
        i, j = self.index(t0), self.index(t1)
        if self._run_starts[i] == self._run_starts[j] and self.shot[i] != LOST:  # the common case, without slicing
            return ""
        shots = self.shot[i: j + 1]
        lost = np.flatnonzero(shots == LOST)
        if lost.size:
            return f"no face tracked in frames {t0 + lost[0]}..{t0 + lost[-1]} (pair {t0}->{t1})"
        if shots[0] != shots[-1]:
            cut = next(c for c in self.cuts if t0 < c <= t1)
            return f"cut between frames {cut - 1} and {cut} (pair {t0}->{t1})"
        return ""


def _classify(pts: list[int], obs: dict[int, Face | None], cfg: TrackConfig) -> dict[int, Face | None]:
    """The observations that count, in order: a kept face, or None for a lost mark; outliers are left out.

    A face below min_confidence counts next to a confident neighbour it agrees with (else it is a lost mark); a face far
    from both neighbouring faces while they agree with each other is an outlier (left out: it neither breaks the shot
    nor marks frames lost)."""
    def agree(a: Face | None, b: Face | None) -> bool:
        return a is not None and b is not None and change_px(a, b) <= cfg.outlier_px

    strong = {p for p in pts if obs[p] is not None and obs[p].score >= cfg.min_confidence}
    faces: dict[int, Face | None] = {}
    for i, p in enumerate(pts):
        near = [pts[j] for j in (i - 1, i + 1) if 0 <= j < len(pts)]
        ok = p in strong or any(q in strong and agree(obs[p], obs[q]) for q in near)
        faces[p] = obs[p] if ok else None
    out = dict(faces)
    for p, q, r in zip(pts, pts[1:], pts[2:]):
        a, b, c = faces[p], faces[q], faces[r]
        if a is not None and b is not None and c is not None and not agree(a, b) and not agree(b, c) and agree(a, c):
            del out[q]
    return out


def _shots(events: dict[int, Face | None], cfg: TrackConfig) -> tuple[int, np.ndarray, list[int]]:
    """(first frame, shot id per frame from there to the last event, frames starting a new shot after a cut).

    Frames between two agreeing faces share their shot; a face after a lost mark or a cut starts a new shot; frames at
    or between lost marks, and strictly between the two faces of a cut, are LOST; shots under min_shot frames too."""
    pts = sorted(events)
    start = pts[0]
    shot = np.full(pts[-1] - start + 1, LOST, np.int64)
    current, cuts, previous = 0, [], None
    for p in pts:
        face = events[p]
        if face is None:
            previous = None
            continue
        if previous is None:
            current += 1  # the first face, or the first after lost frames
        elif change_px(events[previous], face) > cfg.cut_px:
            current += 1
            cuts.append(p)
        else:
            shot[previous - start: p - start] = current
        shot[p - start] = current
        previous = p
    _drop_short(shot, cfg.min_shot)
    return start, shot, cuts


def _drop_short(shot: np.ndarray, min_len: int) -> None:
    """Runs of one shot id shorter than min_len frames become LOST (in place)."""
    start = 0
    for i in range(1, len(shot) + 1):
        if i == len(shot) or shot[i] != shot[start]:
            if shot[start] != LOST and i - start < min_len:
                shot[start:i] = LOST
            start = i


def _smooth(frames: np.ndarray, shot: np.ndarray, times: np.ndarray, values: np.ndarray, face_shot: np.ndarray,
            radius: int) -> np.ndarray:
    """Eyes (n, 2, 2) at `frames`: a Gaussian-weighted (σ = radius/2) linear fit, at each frame, of the faces of its
    shot within ±radius frames (times (m,), values (m, 4)); NaN where the frame is LOST. Vectorised over frames."""
    eyes = np.full((len(frames), 2, 2), np.nan)
    rows = np.flatnonzero(shot != LOST)
    if not rows.size:
        return eyes
    sigma = max(radius / 2.0, 0.5)
    f, s = frames[rows].astype(np.float64), shot[rows]
    sw, swt, swtt = np.zeros(len(rows)), np.zeros(len(rows)), np.zeros(len(rows))
    wv, wtv = np.zeros((len(rows), 4)), np.zeros((len(rows), 4))
    # one face at a time, in time order, for all frames at once: each frame's sums add its near faces in the same
    # order whatever else the window holds (other faces add exact zeros), so any window gives the whole clip's bits
    for j in np.flatnonzero((times >= f.min() - radius) & (times <= f.max() + radius)):
        t = times[j] - f
        w = np.where((np.abs(t) <= radius) & (face_shot[j] == s), np.exp(-0.5 * (t / sigma) ** 2), 0.0)
        sw += w
        swt += w * t
        swtt += w * t * t
        wv += w[:, None] * values[j]
        wtv += (w * t)[:, None] * values[j]
    det = sw * swtt - swt * swt
    line = det > 1e-9 * np.maximum(sw * swtt, 1.0)  # else all faces share one time: their weighted mean
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = np.where(line[:, None], (swtt[:, None] * wv - swt[:, None] * wtv) / np.where(line, det, 1.0)[:, None],
                       wv / sw[:, None])
    eyes[rows] = fit.reshape(-1, 2, 2)
    return eyes


def analyse(obs: dict[int, Face | None], lo: int, hi: int, cfg: TrackConfig, fps: float) -> TrackWindow:
    """The track over frames lo..hi. The observations must cover lo - margin .. hi + margin (clipped to the clip) for
    the result to equal that of any larger window; frames outside the observed range are LOST."""
    events = _classify(sorted(obs), obs, cfg)
    shot = np.full(hi - lo + 1, LOST, np.int64)
    eyes = np.full((hi - lo + 1, 2, 2), np.nan)
    if not events:
        return TrackWindow(lo, hi, shot, eyes, [], len(obs))
    start, full, cuts = _shots(events, cfg)
    a, b = max(lo, start), min(hi, start + len(full) - 1)
    if a <= b:
        shot[a - lo: b - lo + 1] = full[a - start: b - start + 1]
    times = np.array([t for t in sorted(events) if events[t] is not None], np.int64)
    values = np.array([[events[t].right_eye, events[t].left_eye] for t in times], np.float64).reshape(-1, 4)
    eyes[:] = _smooth(np.arange(lo, hi + 1), shot, times.astype(np.float64), values, full[times - start],
                      cfg.radius(fps))
    return TrackWindow(lo, hi, shot, eyes, [c for c in cuts if lo <= c <= hi], len(obs))

