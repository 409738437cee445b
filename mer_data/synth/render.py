"""Synthetic face frames: the astronaut photo on a plain background, with a local, emotion-specific micro-movement.

Pure numpy/OpenCV functions. A subject is a `Look` (where and how large the face sits, its brightness, the background);
`face_canvas(look)` renders the still face once, `movement_field(look, emotion)` the unit displacement field of the
emotion's movement (a sum of Gaussian-windowed displacements), and `render_frame` warps the canvas by
`amplitude(n, onset, apex, offset)` times that field with cv2.remap and adds a frame of `sensor_noise`. A moving head
(see `motion.py`) is drawn by `moved_canvas` (the same warp seen through a head pose, one remap), `cover` (a board held
in front of the head) and `scene` (a faceless cutaway).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
import skimage.data

FRAME_SHAPE = (240, 320)  # (H, W) px of every synthetic frame; small for speed (the real datasets are 480×640)

# Measured on skimage.data.astronaut() (512×512) with MediaPipe BlazeFace short-range: the face box (x, y, w, h) and
# the keypoints, in photo pixels (x, y). The subject's right eye is on the image's left.
FACE_BOX = (177, 82, 95, 95)
RIGHT_EYE = (201.0, 105.0)
LEFT_EYE = (246.0, 109.0)
NOSE_TIP = (220.0, 127.0)
MOUTH = (220.0, 149.0)
FACE_CENTRE = (FACE_BOX[0] + FACE_BOX[2] / 2, FACE_BOX[1] + FACE_BOX[3] / 2)
# Where BlazeFace puts the eyes when the face is drawn at the synthetic frames' size: the mean over 300 renderings
# (random looks and poses, detections mapped back to photo px; std ≈ 1 px per frame), on the pupils. The truth of the
# eye positions (motion.py). RIGHT_EYE and LEFT_EYE, measured on the whole photo where the face is small in the
# detector's 128-px input, sit 3-4 px lower and 5 % farther apart; they only anchor the movements.
RIGHT_PUPIL = (204.4, 102.6)
LEFT_PUPIL = (247.2, 105.3)

# The head crop kept from the photo: an ellipse (centre, semi-axes) in photo px around hair, face and chin,
# feathered over HEAD_FEATHER px so the background blends in.
HEAD_CENTRE = (225.0, 112.0)
HEAD_AXES = (74.0, 96.0)
HEAD_FEATHER = 9.0

PEAK_PX = 4.0  # peak displacement of a movement at the apex, photo px (≈ frame px: faces are drawn at scale ≈ 1)
SIGMA_PX = 6.5  # std of each Gaussian window, photo px: the movement stays within ≈ 2.5 σ of its anchor points
NOISE_SIGMA = 2.0  # std of the per-frame Gaussian sensor noise, grey levels

# A moving head samples its canvas up to this many px beyond each frame edge: the feathered head ellipse reaches
# at most ≈ 20 px past the frame, and past the margin the canvas is plain background, which the border value repeats.
MOTION_MARGIN = 32

# The occluder of `covered` spans: a board with a brick pattern (a book held up) in front of the whole head, in photo
# px; it covers the head ellipse with ≥ 10 px to spare. BlazeFace's best score on it is 0.19 over 600 moved frames
# (colour and grey). A skin-toned hand over the face scored 0.3-0.7, and so did a plain or face-sized board: to the
# detector a skin blob, or any blob framed by hair, is a face.
BOARD_BOX = (140, 12, 310, 228)  # x0, y0, x1, y1
BOARD_TINT = (70.0, 90.0, 150.0)  # RGB of the board where the pattern has its mean brightness, grey levels
# The faceless cutaway: scikit-image's gravel texture (no face at BlazeFace confidence ≥ 0.3 in any crop; its best
# score over 3 px-spaced crops is 0.13) at this scale, tinted by a left-to-right colour gradient.
SCENE_SCALE = 0.8
SCENE_TINT = ((150.0, 126.0, 98.0), (92.0, 112.0, 138.0))  # RGB at the left and right edges, grey levels


def _offset(point: tuple[float, float], dx: float, dy: float) -> tuple[float, float]:
    return point[0] + dx, point[1] + dy


# Derived anchor points (photo px): brows ~13 px above the eyes, mouth corners ~16 px either side of the mouth centre,
# lids ~4 px above/below the eye centres, nose wings beside the bridge, chin ~21 px below the mouth.
_R_BROW, _L_BROW = _offset(RIGHT_EYE, 0, -13), _offset(LEFT_EYE, 0, -13)
_R_CORNER, _L_CORNER = _offset(MOUTH, -16, 0), _offset(MOUTH, 16, 0)

# Movement name → anchors (x, y, dx, dy): photo-px anchor and unit-ish direction (scaled by PEAK_PX).
MOVEMENTS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "smile": ((*_R_CORNER, -0.7, -0.7), (*_L_CORNER, 0.7, -0.7)),  # mouth corners up and out (AU12)
    "brow_raise": ((*_R_BROW, 0.0, -1.0), (*_L_BROW, 0.0, -1.0)),  # both brows up (AU1+2)
    "nose_wrinkle": ((*_offset(NOSE_TIP, -8, -9), 0.0, -1.0), (*_offset(NOSE_TIP, 8, -9), 0.0, -1.0)),  # AU9
    "lip_press": ((*_offset(MOUTH, 0, -5), 0.0, 1.0), (*_offset(MOUTH, 0, 6), 0.0, -1.0)),  # lips pressed (AU14/24)
    "brow_lower": ((*_R_BROW, 0.7, 0.7), (*_L_BROW, -0.7, 0.7)),  # brows down and in (AU4)
    "one_corner": ((*_R_CORNER, -0.8, -0.6),),  # one mouth corner out and up (R14)
    "frown": ((*_R_CORNER, 0.0, 1.0), (*_L_CORNER, 0.0, 1.0)),  # mouth corners down (AU15)
    "eye_widen": ((*_offset(RIGHT_EYE, 0, -4), 0.0, -1.0), (*_offset(LEFT_EYE, 0, -4), 0.0, -1.0)),  # lids up (AU5)
    "chin_raise": ((*_offset(MOUTH, 0, 21), 0.0, -1.0),),  # chin boss up (AU17)
}

# Raw emotion label (case-folded) → movement; covers the four datasets' vocabularies and the 3-class names.
EMOTION_MOVEMENT = {
    "happiness": "smile", "happy": "smile", "positive": "smile",
    "surprise": "brow_raise",
    "disgust": "nose_wrinkle", "negative": "nose_wrinkle",
    "repression": "lip_press",
    "anger": "brow_lower",
    "contempt": "one_corner",
    "sadness": "frown", "sad": "frown",
    "fear": "eye_widen",
    "others": "chin_raise", "other": "chin_raise",
}


@dataclass(frozen=True)
class Look:
    """How one subject appears: face placement and scale, brightness, and the plain background colour."""

    centre: tuple[float, float]  # frame px (x, y) where the photo's FACE_CENTRE lands
    scale: float  # frame px per photo px
    gain: float  # multiplicative brightness of the whole frame
    bias: float  # additive brightness, grey levels
    background: tuple[int, int, int]  # RGB of the plain background
    aspect: float = 1.0  # identity: face width / height relative to the photograph's
    tone: tuple[float, float, float] = (1.0, 1.0, 1.0)  # identity: per-channel gain of the face (skin tone)
    contrast: float = 1.0  # identity: the face's contrast about its mean
    features: float = 0.0  # identity: peak displacement of the facial features (not the eyes), photo px
    feature_seed: int = 0  # seed of that displacement field
    motion_gain: float = 1.0  # how strongly this subject moves (× PEAK_PX)
    noise_gain: float = 1.0  # this subject's camera noise (× NOISE_SIGMA)


def movement_for(emotion: str) -> str:
    """The movement name for a raw emotion label (case-insensitive); unknown labels raise KeyError."""
    return EMOTION_MOVEMENT[emotion.strip().casefold()]


def subject_look(rng: np.random.Generator, difficulty: float = 0.0, identity: np.random.Generator | None = None) -> Look:
    """Draw a subject's look: face box ≈ 36-45% of the frame height, shifted a little, brightness ±15%.

    `difficulty` > 0 also gives the subject an identity of its own, drawn from `identity` (a generator apart from the
    placement's, so difficulty 0 draws exactly the looks it always did): face aspect ±12·d %, skin tone ±15·d % per
    channel, contrast ±30·d %, facial features displaced up to 6·d photo px (the eyes stay where they are, so the eye
    truth holds), a movement 1 − 0.5·d … 1 + 0.2·d as strong and camera noise 1 … 1 + 2·d times as strong.
    """
    height, width = FRAME_SHAPE
    scale = float(rng.uniform(0.92, 1.12))
    # keep the head ellipse inside the frame vertically; its centre sits above the face centre in the photo
    head_dy = (HEAD_CENTRE[1] - FACE_CENTRE[1]) * scale
    cx = width / 2 + float(rng.uniform(-40, 40))
    cy = height / 2 - head_dy + float(rng.uniform(-6, 6))
    grey = float(rng.uniform(70, 190))
    tint = rng.uniform(-18, 18, size=3)
    background = tuple(int(np.clip(grey + t, 0, 255)) for t in tint)
    look = Look((cx, cy), scale, float(rng.uniform(0.85, 1.15)), float(rng.uniform(-12, 12)), background)
    if difficulty <= 0:
        return look
    d, g = float(difficulty), identity if identity is not None else np.random.default_rng(0)
    tone = tuple(float(v) for v in g.uniform(1 - 0.15 * d, 1 + 0.15 * d, size=3))
    return replace(look, aspect=float(g.uniform(1 - 0.12 * d, 1 + 0.12 * d)), tone=tone,
                   contrast=float(g.uniform(1 - 0.3 * d, 1 + 0.3 * d)), features=6.0 * d,
                   feature_seed=int(g.integers(2**31)), motion_gain=float(g.uniform(1 - 0.5 * d, 1 + 0.2 * d)),
                   noise_gain=float(g.uniform(1.0, 1.0 + 2.0 * d)))


def photo_to_frame(look: Look, points: np.ndarray) -> np.ndarray:
    """Map photo-px points (K, 2) to frame-px points (K, 2) for this look."""
    return (np.asarray(points, np.float64) - FACE_CENTRE) * _scales(look) + look.centre


def _scales(look: Look) -> np.ndarray:
    """(x, y) frame px per photo px: the look's scale, the face's aspect on x."""
    return np.array([look.scale * look.aspect, look.scale])


def _affine(look: Look) -> np.ndarray:
    """2×3 matrix taking photo px to frame px (scale about FACE_CENTRE, then translate)."""
    sx, sy = _scales(look)
    tx = look.centre[0] - FACE_CENTRE[0] * sx
    ty = look.centre[1] - FACE_CENTRE[1] * sy
    return np.array([[sx, 0.0, tx], [0.0, sy, ty]], np.float64)


def _identity_photo(look: Look) -> np.ndarray:
    """The photograph as this subject's face: its features moved by a smooth random field that vanishes at the eyes,
    then its tone and contrast changed. Difficulty 0 returns the photograph itself."""
    photo, mask = _photo_and_mask()
    if look.features > 0:
        rng = np.random.default_rng(look.feature_seed)
        coarse = rng.uniform(-1, 1, size=(6, 6, 2)).astype(np.float32)
        field = cv2.resize(coarse, photo.shape[1::-1], interpolation=cv2.INTER_CUBIC) * look.features
        xs, ys = _grid(photo.shape[:2])
        for ex, ey in (RIGHT_PUPIL, LEFT_PUPIL):  # keep the eyes in place: the eye truth and alignment use them
            ramp = np.clip((np.hypot(xs - ex, ys - ey) - 6.0) / 10.0, 0.0, 1.0)  # 0 within 6 px, 1 beyond 16 px
            field *= (ramp * ramp * (3 - 2 * ramp))[..., None]
        photo = cv2.remap(photo, xs - field[..., 0], ys - field[..., 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
    if look.contrast != 1.0 or look.tone != (1.0, 1.0, 1.0):
        mean = float((photo * mask[..., None]).sum() / (3 * mask.sum()))
        photo = ((photo - mean) * look.contrast + mean) * np.asarray(look.tone, np.float32)
    return photo


@lru_cache(maxsize=1)
def _photo_and_mask() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo (512, 512, 3) float32 and its feathered head mask (512, 512) in [0, 1]."""
    photo = skimage.data.astronaut().astype(np.float32)
    mask = np.zeros(photo.shape[:2], np.float32)
    centre = (round(HEAD_CENTRE[0]), round(HEAD_CENTRE[1]))
    cv2.ellipse(mask, centre, (round(HEAD_AXES[0]), round(HEAD_AXES[1])), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), HEAD_FEATHER)
    photo.flags.writeable = False
    mask.flags.writeable = False
    return photo, mask


def face_canvas(look: Look, margin: int = 0) -> np.ndarray:
    """The still face of a subject on its background: (H + 2·margin, W + 2·margin, 3) float32 RGB in grey levels,
    before noise; frame pixel (x, y) is canvas pixel (x + margin, y + margin)."""
    mask = _photo_and_mask()[1]
    photo = _identity_photo(look)
    height, width = FRAME_SHAPE[0] + 2 * margin, FRAME_SHAPE[1] + 2 * margin
    matrix = _affine(look) + [[0.0, 0.0, margin], [0.0, 0.0, margin]]
    face = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_AREA if look.scale < 1 else cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_LINEAR)[..., None]  # (H, W, 1)
    background = np.asarray(look.background, np.float32)
    canvas = alpha * face + (1.0 - alpha) * background
    return canvas * look.gain + look.bias


def anchor_points(look: Look, emotion: str) -> np.ndarray:
    """Frame-px anchor points (K, 2) of the emotion's movement for this look."""
    anchors = np.asarray(MOVEMENTS[movement_for(emotion)], np.float64)
    return photo_to_frame(look, anchors[:, :2])


def movement_field(look: Look, emotion: str) -> np.ndarray:
    """Displacement field (H, W, 2) float32, frame px (dx, dy), of the emotion's movement at its peak (amplitude 1)."""
    height, width = FRAME_SHAPE
    anchors = np.asarray(MOVEMENTS[movement_for(emotion)], np.float64)
    points = photo_to_frame(look, anchors[:, :2])
    sigma = SIGMA_PX * look.scale
    xs, ys = _grid((height, width))
    field = np.zeros((height, width, 2), np.float32)
    for (px, py), (ux, uy) in zip(points, anchors[:, 2:]):
        norm = np.hypot(ux, uy)
        window = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * sigma**2))  # (H, W) in [0, 1]
        field[..., 0] += window * (PEAK_PX * look.motion_gain * look.scale * ux / norm)
        field[..., 1] += window * (PEAK_PX * look.motion_gain * look.scale * uy / norm)
    return field


def amplitude(n: int, onset: int, apex: int, offset: int) -> float:
    """Movement amplitude at frame n: 0 outside (onset, offset), rising to 1 at the apex and back (raised cosine)."""
    if n < onset or n > offset:
        return 0.0
    if n <= apex:
        return 1.0 if apex == onset else float(0.5 * (1.0 - np.cos(np.pi * (n - onset) / (apex - onset))))
    return float(0.5 * (1.0 + np.cos(np.pi * (n - apex) / (offset - apex))))


def sensor_noise(rng: np.random.Generator, count: int, margin: int = 48, gain: float = 1.0) -> Iterator[np.ndarray]:
    """`count` noise frames (H, W, 3) float32 with std gain · NOISE_SIGMA grey levels, one per video frame.

    Each is a randomly shifted window of one Gaussian field drawn once per clip: drawing a fresh field per frame
    would cost more than the rest of the rendering, and a shifted window is just as uncorrelated with the face.
    """
    height, width = FRAME_SHAPE
    field = rng.standard_normal((height + margin, width + margin, 3), dtype=np.float32)
    field *= NOISE_SIGMA * gain
    for dy, dx in rng.integers(0, margin, size=(count, 2)):
        yield field[dy : dy + height, dx : dx + width]


def render_frame(canvas: np.ndarray, field: np.ndarray | None, amp: float, noise: np.ndarray) -> np.ndarray:
    """One frame: `canvas` (H, W, 3) warped by `amp * field` (content moves along the field), plus `noise` (H, W, 3).

    Returns (H, W, 3) uint8 RGB. `field` None (or amp 0) leaves the face still.
    """
    if field is not None and amp > 0:
        xs, ys = _grid(canvas.shape[:2])
        # backward map: the output pixel p samples the canvas at p - d(p), which moves content by ≈ +d
        map_x = xs - amp * field[..., 0]
        map_y = ys - amp * field[..., 1]
        canvas = cv2.remap(canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return finish(canvas, noise)


def finish(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 grey levels plus `noise` → (H, W, 3) uint8, clipped and rounded."""
    noisy = image + noise
    np.clip(noisy, 0, 255, out=noisy)
    return np.rint(noisy, out=noisy).astype(np.uint8)


def background(look: Look) -> tuple[float, float, float]:
    """The subject's background as it appears in the canvas (gain and bias applied), RGB grey levels."""
    return tuple(c * look.gain + look.bias for c in look.background)


def moved_canvas(canvas: np.ndarray, inverse: np.ndarray, field: np.ndarray | None, amp: float,
                 border: tuple[float, float, float]) -> np.ndarray:
    """The still face `canvas` (from face_canvas(look, MOTION_MARGIN)) moved by `amp * field` as in render_frame and
    seen through a head pose: output pixel q shows the still frame at u = inverse·q, which shows the canvas at
    u - amp·field(u). One resampling; the field is read at u, so the movement travels with the face.

    `inverse` is the 2×3 matrix from output px to still-frame px (the inverse of the pose); `border` fills what lies
    beyond the canvas (the plain background). Returns (H, W, 3) float32 grey levels, before noise.
    """
    xs, ys = _grid(FRAME_SHAPE)
    inverse = inverse.astype(np.float32)
    map_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]  # (H, W) still-frame px
    map_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    if field is not None and amp > 0:
        shift = cv2.remap(field, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        map_x -= amp * shift[..., 0]
        map_y -= amp * shift[..., 1]
    return cv2.remap(canvas, map_x + MOTION_MARGIN, map_y + MOTION_MARGIN, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=border)


@lru_cache(maxsize=1)
def _board() -> tuple[np.ndarray, np.ndarray]:
    """The occluder in photo px: colour (512, 512, 3) float32 grey levels and alpha (512, 512) in [0, 1]."""
    pattern = skimage.data.brick().astype(np.float32)  # (512, 512) grey
    colour = (pattern / pattern.mean())[..., None] * np.asarray(BOARD_TINT, np.float32)
    x0, y0, x1, y1 = BOARD_BOX
    alpha = np.zeros(pattern.shape, np.float32)
    cv2.rectangle(alpha, (x0, y0), (x1, y1), 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.2)
    colour.flags.writeable = False
    alpha.flags.writeable = False
    return colour, alpha


def cover(image: np.ndarray, look: Look, pose: np.ndarray) -> np.ndarray:
    """`image` (H, W, 3) float32 with the occluder held in front of the head of `look` moved by `pose` (2×3,
    still-frame px → frame px), so it moves with the head. Returns a new (H, W, 3) float32."""
    colour, alpha = _board()
    matrix = pose[:, :2] @ _affine(look) + np.hstack([np.zeros((2, 2)), pose[:, 2:]])  # photo px → frame px
    height, width = image.shape[:2]
    board = cv2.warpAffine(colour, matrix, (width, height), flags=cv2.INTER_LINEAR)
    weight = cv2.warpAffine(alpha, matrix, (width, height), flags=cv2.INTER_LINEAR)[..., None]  # (H, W, 1)
    return weight * board + (1.0 - weight) * image


@lru_cache(maxsize=1)
def _scene() -> np.ndarray:
    """The faceless cutaway picture: (h, w, 3) float32 grey levels, larger than a frame so that it can pan."""
    texture = skimage.data.gravel().astype(np.float32)
    texture = cv2.resize(texture, None, fx=SCENE_SCALE, fy=SCENE_SCALE, interpolation=cv2.INTER_AREA)
    ramp = np.linspace(0.0, 1.0, texture.shape[1], dtype=np.float32)[None, :, None]  # (1, w, 1)
    left, right = (np.asarray(c, np.float32) for c in SCENE_TINT)
    picture = texture[..., None] / texture.mean() * (left + ramp * (right - left))
    picture.flags.writeable = False
    return picture


def scene_room() -> tuple[int, int]:
    """How far (dy, dx) px a frame-sized window can move inside the cutaway picture."""
    h, w = _scene().shape[:2]
    return h - FRAME_SHAPE[0], w - FRAME_SHAPE[1]


def scene(x: int, y: int) -> np.ndarray:
    """The frame-sized window (H, W, 3) float32 of the cutaway picture whose top-left corner is at (x, y)."""
    height, width = FRAME_SHAPE
    return _scene()[y : y + height, x : x + width]


@lru_cache(maxsize=4)
def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinate grids (xs, ys), each (H, W) float32, shared read-only."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    xs.flags.writeable = False
    ys.flags.writeable = False
    return xs, ys


def to_gray(frame: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) uint8 → grayscale (H, W) uint8, for SAMM's grayscale release."""
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def depth_map(look: Look) -> np.ndarray:
    """A plausible depth frame (H, W) uint16 in millimetres for CAS(ME)^3's parallel depth/ folder: head ≈ 600 mm,
    background 1500 mm, blended over the feathered head mask."""
    _, mask = _photo_and_mask()
    height, width = FRAME_SHAPE
    alpha = cv2.warpAffine(mask, _affine(look), (width, height), flags=cv2.INTER_LINEAR)
    return np.rint(1500.0 - 900.0 * alpha).astype(np.uint16)
