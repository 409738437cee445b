"""Head motion of the synthetic takes: a pose per frame, covered and faceless spans, cuts, and the true eyes of every frame.

A take's motion comes from one call, `take_motion(kind, look, first, last, busy, fps, rng)`:
- `none`: the still face of the unmoved look (the frames are rendered exactly as without this module).
- `drift`: a smooth pose trajectory (translation, in-plane rotation and scale about the face centre), each component
  a sum of slow sinusoids with speeds defined per second, so a 200-fps clip moves little per frame; the face box
  never leaves the frame.
- `hard`: half that drift on top of a posture, plus, where the take is long enough, four events placed from the seed
  in neutral stretches (GUARD_S away from every micro-expression, each other and the take's ends): a board held in
  front of the head (`covered`), a cut to a faceless picture and back (`absent`), a cut that makes the pose jump, and a fast
  lean (LEAN_S). Events that do not fit are left out, so short clips (CASME II, SAMM, SMIC) only drift.

The eye truth of a frame is where BlazeFace puts the eyes on the still face (render.RIGHT_PUPIL, render.LEFT_PUPIL, in
photo px) mapped through the look and the frame's pose: exactly the transforms that render it. The local micro-movement
field is not applied to it: it is ≈ 0 at the eyes except for `eye_widen` (fear), whose lid anchors 4 px above the eyes
drag the eye region up by up to 0.83·PEAK_PX ≈ 3.3 px at the apex.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mer_data import MerDataError
from mer_data.synth import render
from mer_data.synth.sheets import ZIP_TIME

MOTIONS = ("none", "drift", "hard")
EYES_FILE = "mer-data-synth-eyes.npz"  # the eye truth of every take, written into each dataset root
EYES_DTYPE = np.dtype([("frame", "<i8"), ("right", "<f8", (2,)), ("left", "<f8", (2,)), ("state", "u1"),
                       ("shot", "<i4")])  # one record per frame in the .npy of a take
VISIBLE, COVERED, ABSENT = 0, 1, 2  # state of a frame: face in view, face behind the board, no face in the picture

# drift: each pose component is a sum of DRIFT_WAVES sinusoids (random frequency, phase and weight) normalised to
# [-1, 1], times its amplitude. Peak speeds are at most 2π·DRIFT_HZ[1]·amplitude: 36 px/s across and 18 px/s down a
# 320×240 frame (1.2 px per frame at 30 fps, 0.18 at 200 fps), 9.4 °/s, 7.5 %/s of scale.
DRIFT_SHIFT = (0.12, 0.08)  # translation amplitude as fractions of the frame width and height: 38.4 px, 19.2 px
DRIFT_ROTATION = 10.0  # in-plane rotation amplitude, degrees
DRIFT_SCALE = 0.08  # scale amplitude, relative: the face is 0.92 to 1.08 times its still size
DRIFT_HZ = (0.03, 0.15)  # frequency range of the sinusoids, Hz (periods of 7 to 33 s)
DRIFT_WAVES = 3  # sinusoids per pose component

# hard: the drift above times HARD_DRIFT, plus a posture of ±POSTURE times the amplitudes (together within ±1 of them,
# so the face stays in the frame). The lean moves to the posture with shift x and rotation negated along a raised
# cosine (38 px and 10° in LEAN_S: peaks of ≈ 110 px/s and 30 °/s at 30 fps); the cut jumps to the posture with shift x and scale
# negated (38 px and 8 % in one frame).
HARD_DRIFT = 0.5
POSTURE = 0.5
LEAN_S = 0.5  # duration of the lean, s
COVER_S = (0.5, 1.0)  # duration range of the covered span, s
ABSENT_S = (0.8, 1.2)  # duration range of the faceless cutaway, s
GUARD_S = 0.5  # neutral time between an event and a micro-expression, another event or the take's ends, s
SCENE_PAN = 40.0  # horizontal panning speed of the cutaway picture, px/s
LEAN_FLIP = np.array([-1.0, 1.0, -1.0, 1.0])  # posture components (shift x, shift y, angle, scale) a lean negates
CUT_FLIP = np.array([-1.0, 1.0, 1.0, -1.0])  # and those a cut negates


@dataclass(frozen=True, eq=False)
class EyeTruth:
    """The true eyes of every frame of one take.

    Positions are frame px (x right, y down) in the convention of `mer_data.align.Face`: `right` is the subject's
    right eye, the one on the image's left. Where the face is absent they are NaN; where it is covered they are the
    eyes behind the board.
    """

    frames: np.ndarray  # (N,) int64 frame numbers, in the dataset's numbering of the take
    right: np.ndarray  # (N, 2) float64 x, y of the subject's right eye
    left: np.ndarray  # (N, 2) float64 x, y of the subject's left eye
    state: np.ndarray  # (N,) uint8 VISIBLE | COVERED | ABSENT
    shot: np.ndarray  # (N,) int32 shot id: 0 at the first frame, +1 at every cut (into and out of a cutaway too)


@dataclass(frozen=True, eq=False)
class TakeMotion:
    """The head motion of one take, frame by frame: index k is frame number first + k."""

    kind: str  # none | drift | hard
    look: render.Look  # the subject's unmoved look; poses turn and scale about its face centre
    first: int  # frame number of index 0
    pose: np.ndarray  # (N, 4) float64: shift x, shift y (px), angle (degrees, clockwise on screen), scale
    matrix: np.ndarray  # (N, 2, 3) float64: the pose as still-frame px → frame px, the transform that renders frame k
    state: np.ndarray  # (N,) uint8 VISIBLE | COVERED | ABSENT
    shot: np.ndarray  # (N,) int32, +1 at every cut
    scene: np.ndarray  # (N, 2) int64 top-left (x, y) of the cutaway picture's window in ABSENT frames, else 0

    @property
    def still(self) -> bool:
        return self.kind == "none"

    def draw(self, n: int, canvas: np.ndarray, field: np.ndarray | None, amp: float) -> np.ndarray:
        """Frame n before noise, (H, W, 3) float32: `canvas` (face_canvas(look, MOTION_MARGIN)) moved by `amp *
        field` and by the frame's pose, with the board in front when covered; the cutaway picture when absent."""
        k = n - self.first
        if self.state[k] == ABSENT:
            return render.scene(*self.scene[k])
        pose = self.matrix[k]
        image = render.moved_canvas(canvas, cv2.invertAffineTransform(pose), field, amp, render.background(self.look))
        return render.cover(image, self.look, pose) if self.state[k] == COVERED else image

    def eyes(self) -> EyeTruth:
        """The true eye positions of every frame (see EyeTruth)."""
        still = render.photo_to_frame(self.look, np.array([render.RIGHT_PUPIL, render.LEFT_PUPIL]))  # (2 eyes, 2)
        moved = np.einsum("nij,ej->nei", self.matrix[:, :, :2], still) + self.matrix[:, None, :, 2]  # (N, 2, 2)
        moved[self.state == ABSENT] = np.nan
        frames = self.first + np.arange(len(self.state), dtype=np.int64)
        return EyeTruth(frames, moved[:, 0], moved[:, 1], self.state.copy(), self.shot.copy())


def pose_matrices(centre: tuple[float, float], pose: np.ndarray) -> np.ndarray:
    """(N, 2, 3) still-frame px → frame px for poses (N, 4) (shift x, shift y, angle, scale) about `centre`:
    q = centre + scale·R(angle)·(u - centre) + shift."""
    angle = np.deg2rad(pose[:, 2])
    cos, sin = pose[:, 3] * np.cos(angle), pose[:, 3] * np.sin(angle)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)  # (N, 2, 2)
    c = np.asarray(centre, np.float64)
    shift = c - rot @ c + pose[:, :2]  # (N, 2)
    return np.concatenate([rot, shift[:, :, None]], axis=2)


def take_motion(kind: str, look: render.Look, first: int, last: int, busy: list[tuple[int, int]], fps: float,
                rng: np.random.Generator) -> TakeMotion:
    """The `kind` motion of the take first..last (frame numbers, inclusive) of a subject with `look`, captured at `fps`
    frames/s. `busy` lists the (onset, offset) frame spans of its micro-expressions, which hard events keep GUARD_S
    away from. `rng` is the take's own generator for motion (drawn from nothing else, so `none` changes no frame)."""
    if kind not in MOTIONS:
        raise ValueError(f"motion {kind!r}: choose one of {', '.join(MOTIONS)}")
    count = last - first + 1
    unit = np.zeros((count, 4))  # pose in units of the amplitudes, each component within [-1, 1]
    state, shot, scene = np.zeros(count, np.uint8), np.zeros(count, np.int32), np.zeros((count, 2), np.int64)
    if kind != "none":
        unit = _waves(rng, np.arange(count) / fps)
    if kind == "hard":
        spans = [(onset - first, offset - first + 1) for onset, offset in busy]
        posture, state, shot, scene = _hard(rng, count, spans, fps)
        unit = HARD_DRIFT * unit + posture
    pose = unit * amplitudes(look) + [0.0, 0.0, 0.0, 1.0]
    return TakeMotion(kind, look, first, pose, pose_matrices(look.centre, pose), state, shot, scene)


def amplitudes(look: render.Look) -> np.ndarray:
    """The pose amplitudes (shift x px, shift y px, angle degrees, relative scale) of a subject: DRIFT_SHIFT of the
    frame, less where the face box turned and grown to the limits would otherwise cross a frame edge."""
    height, width = render.FRAME_SHAPE
    half = render.FACE_BOX[2] / 2 * look.scale * (1 + DRIFT_SCALE)  # half side of the largest face box, px
    turn = np.deg2rad(DRIFT_ROTATION)
    reach = half * (np.cos(turn) + np.sin(turn))  # half extent of that box turned by the largest angle, px
    cx, cy = look.centre
    room_x = min(cx - reach, width - cx - reach)
    room_y = min(cy - reach, height - cy - reach)
    return np.array([min(DRIFT_SHIFT[0] * width, room_x), min(DRIFT_SHIFT[1] * height, room_y), DRIFT_ROTATION,
                     DRIFT_SCALE])


def _waves(rng: np.random.Generator, seconds: np.ndarray) -> np.ndarray:
    """(N, 4) smooth signals in [-1, 1] at times `seconds` (N,): per component a weighted sum of DRIFT_WAVES sinusoids."""
    freq = rng.uniform(*DRIFT_HZ, size=(DRIFT_WAVES, 4))
    phase = rng.uniform(0.0, 2 * np.pi, size=(DRIFT_WAVES, 4))
    weight = rng.uniform(0.5, 1.0, size=(DRIFT_WAVES, 4))
    waves = weight * np.sin(2 * np.pi * freq * seconds[:, None, None] + phase)  # (N, waves, 4)
    return waves.sum(axis=1) / weight.sum(axis=0)


def _hard(rng: np.random.Generator, count: int, spans: list[tuple[int, int]],
          fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Posture (N, 4) in amplitude units, state (N,), shot (N,) and cutaway window (N, 2) of a hard take of `count`
    frames whose micro-expressions fill the index spans [a, b) of `spans`."""
    posture = POSTURE * rng.choice([-1.0, 1.0], size=4)
    guard = max(1, round(GUARD_S * fps))
    free = _without([(guard, count - guard)], [(a - guard, b + guard) for a, b in spans])
    covered = _place(rng, free, _frames(rng, COVER_S, fps), guard)
    absent = _place(rng, free, _frames(rng, ABSENT_S, fps) + 1, guard)  # and the first frame back, a cut too
    lean = _place(rng, free, round(LEAN_S * fps), guard)
    cut = _place(rng, free, 1, guard)  # the first frame after the cut
    moves = [(lean[0], lean[1], LEAN_FLIP)] if lean[0] is not None else []
    moves += [(cut[0], 0, CUT_FLIP)] if cut[0] is not None else []
    unit = _postures(posture, count, moves)

    state, cuts = np.zeros(count, np.uint8), np.zeros(count, np.int32)
    scene = np.zeros((count, 2), np.int64)
    if covered[0] is not None:
        state[covered[0] : covered[0] + covered[1]] = COVERED
    if absent[0] is not None:
        start, length = absent[0], absent[1] - 1
        state[start : start + length] = ABSENT
        cuts[start] += 1
        cuts[start + length] += 1
        scene[start : start + length] = _pan(rng, length, fps)
    if cut[0] is not None:
        cuts[cut[0]] += 1
    return unit, state, np.cumsum(cuts, dtype=np.int32), scene


def _postures(posture: np.ndarray, count: int, moves: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """(count, 4) posture of every frame: `posture` until the first move; each move (start, length, flip) takes
    `length` frames from start (a raised cosine; 0 frames: a jump) to the posture times `flip`."""
    unit = np.tile(posture, (count, 1))
    for start, length, flip in sorted(moves, key=lambda move: move[0]):
        before = unit[start - 1].copy()
        after = before * flip
        ramp = 0.5 * (1 - np.cos(np.pi * np.arange(1, length + 1) / (length + 1)))  # (length,) rising within (0, 1)
        unit[start : start + length] = before + ramp[:, None] * (after - before)
        unit[start + length :] = after
    return unit


def _frames(rng: np.random.Generator, seconds: tuple[float, float], fps: float) -> int:
    """A duration drawn uniformly from `seconds` (low, high), in whole frames (at least one)."""
    return max(1, round(rng.uniform(*seconds) * fps))


def _without(intervals: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The half-open `intervals` with the half-open `holes` removed (empty pieces dropped)."""
    for lo, hi in holes:
        intervals = [piece for a, b in intervals for piece in ((a, min(b, lo)), (max(a, hi), b)) if piece[0] < piece[1]]
    return intervals


def _place(rng: np.random.Generator, free: list[tuple[int, int]], length: int,
           guard: int) -> tuple[int | None, int]:
    """(start, length) of a span of `length` frames drawn inside one of the `free` intervals, every start equally
    likely, and removed from `free` with `guard` frames either side; (None, length) when no interval holds it."""
    fits = [(a, b) for a, b in free if b - a >= length]
    if not fits:
        return None, length
    slack = np.array([b - a - length + 1 for a, b in fits])  # possible starts in each
    k = int(rng.choice(len(fits), p=slack / slack.sum()))
    start = fits[k][0] + int(rng.integers(slack[k]))
    free[:] = _without(free, [(start - guard, start + length + guard)])
    return start, length


def _pan(rng: np.random.Generator, length: int, fps: float) -> np.ndarray:
    """(length, 2) top-left corners (x, y) of the cutaway's window, panning sideways at SCENE_PAN px/s."""
    room_y, room_x = render.scene_room()
    travel = min(room_x, round(SCENE_PAN * (length - 1) / fps))
    x0, y0 = int(rng.integers(0, room_x - travel + 1)), int(rng.integers(0, room_y + 1))
    xs = np.rint(np.linspace(0, travel, length)).astype(np.int64)
    if rng.random() < 0.5:  # pan to the left
        xs = travel - xs
    return np.stack([x0 + xs, np.full(length, y0)], axis=1)


def write_eye_truth(root: Path, truths: dict[str, EyeTruth]) -> None:
    """Add `truths` (take source relative to `root` → EyeTruth) to root/EYES_FILE, replacing takes already in it.

    One .npy record array per take in a zip with fixed timestamps, so the same truth gives the same bytes.
    """
    path = root / EYES_FILE
    merged = {**(load_eye_truth(root) if path.exists() else {}), **truths}
    with zipfile.ZipFile(path.with_name(path.name + ".partial"), "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(merged):
            t = merged[source]
            record = np.zeros(len(t.frames), EYES_DTYPE)
            record["frame"], record["right"], record["left"] = t.frames, t.right, t.left
            record["state"], record["shot"] = t.state, t.shot
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, record, allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(source + ".npy", date_time=ZIP_TIME), buffer.getvalue(),
                             compress_type=zipfile.ZIP_DEFLATED)
    path.with_name(path.name + ".partial").replace(path)


def load_eye_truth(root: Path) -> dict[str, EyeTruth]:
    """The true eyes of every take of a synthetic dataset root, keyed by the take's source path relative to the root
    (the `source` of mer-data-synth.json: a frame folder or a video file); see EyeTruth for the conventions.
    For the megc2019 composite, load each of ROOT/casme2, ROOT/samm, ROOT/smic."""
    path = Path(root) / EYES_FILE
    if not path.is_file():
        raise MerDataError(f"{path}: no eye truth (write the dataset with `mer-data synth`)")
    with np.load(path, allow_pickle=False) as archive:
        records = {source: archive[source] for source in archive.files}
    return {source: EyeTruth(r["frame"], r["right"], r["left"], r["state"], r["shot"]) for source, r in records.items()}
