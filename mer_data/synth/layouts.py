"""One writer per dataset for the synthetic trees: folder layout, file names, frames or videos, annotation sheet.

Each `write_<dataset>(root, plan)` lays out the dataset exactly as its release does (see the shared layouts contract)
and returns a `Tree` summary whose `truth` lists every micro-expression written, in the numbering an adapter should
report. Emotions cycle through each dataset's raw vocabulary, offset per subject, so every subject holds several
classes and each class appears for most subjects.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from mer_data import MerDataError
from mer_data.synth import motion, render
from mer_data.synth.sheets import EMOTION_CODES, Episode, casme2_sheet, casme3_sheet, samm_sheet

# Raw vocabularies in each dataset's own spelling (the classes of the default mappings).
VOCAB = {
    "casme2": ("happiness", "disgust", "repression", "surprise", "others"),
    "samm": ("Anger", "Contempt", "Happiness", "Surprise", "Other"),
    "smic": ("negative", "positive", "surprise"),
    "casme3": ("disgust", "surprise", "others", "fear", "anger", "sad", "happy"),
    "casme": ("happiness", "disgust", "repression", "surprise", "contempt", "fear", "sadness"),  # no movement for 'tense'
    "casme_sq": ("negative", "positive", "surprise", "others"),
    "samm_lv": ("Anger", "Contempt", "Happiness", "Surprise", "Other"),  # the SAMM clip sheet's labels
    "mmew": ("happiness", "surprise", "disgust", "fear", "sadness", "anger", "others"),
    "4dme": ("Positive", "Negative", "Surprise", "Repression", "Others"),
    "casme3c": ("disgust", "surprise", "others", "fear", "anger", "sad", "happy"),
}
FPS = {"casme2": 200.0, "samm": 200.0, "smic": 100.0, "casme3": 30.0,  # the datasets' capture rates
       "casme": 60.0, "casme_sq": 30.0, "samm_lv": 200.0, "mmew": 90.0, "4dme": 60.0, "casme3c": 30.0}
SAMM_SUBJECTS = (6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26, 28, 30, 31, 32, 33, 34, 35,
                 36, 37)  # SAMM's published subject numbers (not contiguous)
SMIC_SUBJECTS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 18, 19, 20)  # SMIC-HS subject numbers
SMIC_CODES = {"negative": "ne", "positive": "po", "surprise": "sur"}
CLIP_FRAMES = (20, 30)  # inclusive range of onset..offset lengths, frames (≥ 12 so pairs with δ up to 11 fit)


@dataclass(frozen=True)
class Plan:
    """What to write: sizes, format and the seed every random choice derives from."""

    subjects: int  # number of subjects
    clips_per_subject: int  # micro-expressions per subject
    video: bool  # clips as video files instead of frame folders
    seed: int  # master seed
    motion: str = "none"  # head motion of every take: none | drift | hard (see motion.py)
    video_frames: int = 0  # casme3: pad each video with neutral frames to at least this many (0: natural length)
    difficulty: float = 0.0  # 0: every subject the same face; up to 1: identities of their own (render.subject_look)


@dataclass(frozen=True)
class Tree:
    """Summary of one written dataset tree."""

    dataset: str
    root: Path
    subjects: int  # subjects written
    clips: int  # frame sequences written (folders or videos), SMIC's non_micro ones included
    samples: int  # annotated micro-expressions
    frames: int  # frames written in all
    sheet: Path | None  # the annotation sheet (None for SMIC)
    truth: tuple[dict, ...]  # per ME: subject, clip, emotion, onset, apex, offset, movement, source


@dataclass(frozen=True)
class Take:
    """One frame sequence on disk (a folder or a video) and the micro-expressions inside it."""

    subject: str  # the dataset's raw subject id, seeds the subject's look
    name: str  # unique within the subject, seeds the sequence's noise
    first: int  # frame number of the first frame (same numbering as the episodes)
    last: int  # frame number of the last frame, inclusive
    episodes: tuple[Episode, ...]


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator seeded from the master seed and a path of names (stable across runs and platforms)."""
    return np.random.default_rng([seed, zlib.crc32("/".join(names).encode())])


def ids(published: Sequence[int], n: int) -> list[int]:
    """The first n subject numbers: the published ones, then counting on past the last."""
    return list(published[:n]) + list(range(published[-1] + 1, published[-1] + 1 + max(0, n - len(published))))


def emotion_at(dataset: str, subject_index: int, clip_index: int, clips_per_subject: int) -> str:
    """The raw emotion of a subject's clip: the vocabulary cycled on across subjects, so each subject holds
    min(M, classes) classes and all classes appear once subjects × M ≥ classes (each for ≈ M/classes of them)."""
    vocab = VOCAB[dataset]
    return vocab[(subject_index * clips_per_subject + clip_index) % len(vocab)]


def episode(rng: np.random.Generator, subject: str, clip: str, emotion: str, onset: int) -> Episode:
    """An episode of 20-30 frames from `onset`, its apex 30-65% of the way in."""
    length = int(rng.integers(CLIP_FRAMES[0], CLIP_FRAMES[1] + 1))
    apex = onset + int(round(rng.uniform(0.3, 0.65) * (length - 1)))
    au, objective = EMOTION_CODES[emotion.casefold()]
    return Episode(subject, clip, emotion, onset, apex, onset + length - 1, au, objective)


def look_of(seed: int, dataset: str, subject: str, difficulty: float) -> render.Look:
    """A subject's look: placement from its own stream, identity (difficulty > 0) from another."""
    return render.subject_look(rng_for(seed, dataset, subject, "look"), difficulty,
                               rng_for(seed, dataset, subject, "identity"))


class Face:
    """A subject's rendered still face and its movement fields, computed once and reused for all its frames."""

    def __init__(self, seed: int, dataset: str, subject: str, difficulty: float = 0.0):
        self.look = look_of(seed, dataset, subject, difficulty)
        self.canvas = render.face_canvas(self.look)
        self._fields: dict[str, np.ndarray] = {}

    def field(self, emotion: str) -> np.ndarray:
        if emotion not in self._fields:
            self._fields[emotion] = render.movement_field(self.look, emotion)
        return self._fields[emotion]

    @cached_property
    def moving_canvas(self) -> np.ndarray:
        """The still face with a margin around the frame, for takes with head motion."""
        return render.face_canvas(self.look, render.MOTION_MARGIN)

    def frames(self, take: Take, rng: np.random.Generator, gray: bool,
               moves: motion.TakeMotion) -> Iterator[tuple[int, np.ndarray]]:
        """(number, frame) for take.first..take.last with the head motion `moves`; frames RGB (H, W, 3) or grayscale
        (H, W) uint8."""
        noise = render.sensor_noise(rng, take.last - take.first + 1, gain=self.look.noise_gain)
        for n in range(take.first, take.last + 1):
            amp, field = 0.0, None
            for ep in take.episodes:
                a = render.amplitude(n, ep.onset, ep.apex, ep.offset)
                if a > amp:
                    amp, field = a, self.field(ep.emotion)
            if moves.still:
                frame = render.render_frame(self.canvas, field, amp, next(noise))
            else:
                frame = render.finish(moves.draw(n, self.moving_canvas, field, amp), next(noise))
            yield n, render.to_gray(frame) if gray else frame

    def moves(self, take: Take, plan: Plan, dataset: str) -> motion.TakeMotion:
        """The head motion of a take of this subject (the plan's kind; its own generator, apart from the noise's)."""
        busy = [(ep.onset, ep.offset) for ep in take.episodes]
        rng = rng_for(plan.seed, dataset, take.subject, take.name, "motion")
        return motion.take_motion(plan.motion, self.look, take.first, take.last, busy, FPS[dataset], rng)


def write_images(frames: Iterator[tuple[int, np.ndarray]], folder: Path, name: str) -> int:
    """Write each frame as `folder/name.format(n)` (jpg/bmp by extension); returns the number written."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for n, frame in frames:
        image = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(folder / name.format(n)), image):
            raise MerDataError(f"could not write {folder / name.format(n)}")
        count += 1
    return count


def write_video(frames: Iterator[tuple[int, np.ndarray]], path: Path, fps: float) -> int:
    """Write frames to `path` (.avi: MJPG with OpenCV's own encoder; .mp4: mp4v via FFmpeg) and check that OpenCV
    reads back as many frames; returns the number written. Grayscale frames are stored as 3 equal channels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = render.FRAME_SHAPE
    api, codec = (cv2.CAP_FFMPEG, "mp4v") if path.suffix == ".mp4" else (cv2.CAP_OPENCV_MJPEG, "MJPG")
    writer = cv2.VideoWriter(str(path), api, cv2.VideoWriter_fourcc(*codec), fps, (width, height), True)
    if not writer.isOpened():
        raise MerDataError(f"OpenCV cannot write {codec} video {path}")
    count = 0
    try:
        for _, frame in frames:
            code = cv2.COLOR_GRAY2BGR if frame.ndim == 2 else cv2.COLOR_RGB2BGR
            writer.write(cv2.cvtColor(frame, code))
            count += 1
    finally:
        writer.release()
    cap = cv2.VideoCapture(str(path))
    read = 0
    while cap.grab():
        read += 1
    cap.release()
    if read != count:
        raise MerDataError(f"wrote {count} frames to {path} but OpenCV reads back {read}: cannot round-trip {codec}")
    return count


def _truth(ep: Episode, source: Path, root: Path) -> dict:
    return {"subject": ep.subject, "clip": ep.clip, "emotion": ep.emotion, "onset": ep.onset, "apex": ep.apex,
            "offset": ep.offset, "movement": render.movement_for(ep.emotion),
            "source": source.relative_to(root).as_posix()}


def _write_takes(root: Path, dataset: str, plan: Plan, takes: list[tuple[Take, Path, str, bool]],
                 gray: bool) -> tuple[int, list[dict]]:
    """Render and write every (take, target, pattern, labelled): a frame folder named by `pattern`, or a video file
    when `pattern` is "", with the plan's head motion; add every take's eye truth to the root's motion.EYES_FILE.
    Returns (frames written, truth dicts of the labelled takes' micro-expressions)."""
    faces: dict[str, Face] = {}
    total, truth, eyes = 0, [], {}
    for take, target, pattern, labelled in takes:
        if take.subject not in faces:
            faces[take.subject] = Face(plan.seed, dataset, take.subject, plan.difficulty)
        face = faces[take.subject]
        moves = face.moves(take, plan, dataset)
        frames = face.frames(take, rng_for(plan.seed, dataset, take.subject, take.name), gray, moves)
        total += write_images(frames, target, pattern) if pattern else write_video(frames, target, FPS[dataset])
        eyes[target.relative_to(root).as_posix()] = moves.eyes()
        if labelled:
            truth += [_truth(ep, target, root) for ep in take.episodes]
    motion.write_eye_truth(root, eyes)
    return total, truth


def casme2_clip(subject_index: int, clip_index: int) -> str:
    """A CASME II Filename, cycling the sheet's patterns EP99_99, EP99_99f, EP99_9, EP99f (episode number unique)."""
    e, k = 2 + clip_index, 1 + (subject_index + clip_index) % 9
    return (f"EP{e:02d}_{k:02d}", f"EP{e:02d}_{k:02d}f", f"EP{e:02d}_{k}", f"EP{e:02d}f")[clip_index % 4]


def write_casme2(root: Path, plan: Plan) -> Tree:
    """`CASME2-coding-20140508.xlsx` and `CASME2_RAW_selected/subNN/<Filename>/img<N>.jpg` (N absolute, from the
    onset), or `.../subNN/<Filename>.avi` whose first frame is the onset."""
    episodes, takes = [], []
    for i in range(plan.subjects):
        subject = f"{i + 1:02d}"
        folder = root / "CASME2_RAW_selected" / f"sub{subject}"
        for j in range(plan.clips_per_subject):
            clip = casme2_clip(i, j)
            rng = rng_for(plan.seed, "casme2", subject, clip, "timing")
            emotion = emotion_at("casme2", i, j, plan.clips_per_subject)
            ep = episode(rng, subject, clip, emotion, int(rng.integers(20, 300)))  # absolute, not from 0 or 1
            episodes.append(ep)
            target, pattern = (folder / f"{clip}.avi", "") if plan.video else (folder / clip, "img{}.jpg")
            takes.append((Take(subject, clip, ep.onset, ep.offset, (ep,)), target, pattern, True))
    frames, truth = _write_takes(root, "casme2", plan, takes, gray=False)
    sheet = root / "CASME2-coding-20140508.xlsx"
    casme2_sheet(sheet, episodes)
    return Tree("casme2", root, plan.subjects, len(takes), len(episodes), frames, sheet, tuple(truth))


def write_samm(root: Path, plan: Plan) -> Tree:
    """`SAMM_Micro_FACS_Codes_v2.xlsx` and grayscale `SAMM/<sss>/<sss_i_n>/<sss>_<N:05d>.jpg` (N absolute), or
    `SAMM/<sss>/<sss_i_n>.avi` whose first frame is the onset."""
    episodes, takes, inducements, notes = [], [], [], []
    for i, number in enumerate(ids(SAMM_SUBJECTS, plan.subjects)):
        subject = f"{number:03d}"
        folder = root / "SAMM" / subject
        for j in range(plan.clips_per_subject):
            inducement = 1 + j % 7
            clip = f"{subject}_{inducement}_{1 + j // 7 + 3 * (i % 4)}"
            rng = rng_for(plan.seed, "samm", subject, clip, "timing")
            emotion = emotion_at("samm", i, j, plan.clips_per_subject)
            ep = episode(rng, subject, clip, emotion, int(rng.integers(1000, 9000)))  # absolute frame numbers
            episodes.append(ep)
            inducements.append(inducement)
            notes.append(("", "Blinks", "", "Eye movement")[(i + j) % 4])
            target, pattern = ((folder / f"{clip}.avi", "") if plan.video
                               else (folder / clip, subject + "_{:05d}.jpg"))
            takes.append((Take(subject, clip, ep.onset, ep.offset, (ep,)), target, pattern, True))
    frames, truth = _write_takes(root, "samm", plan, takes, gray=True)
    sheet = root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    samm_sheet(sheet, episodes, inducements, notes)
    return Tree("samm", root, plan.subjects, len(takes), len(episodes), frames, sheet, tuple(truth))


def _smic_take(plan: Plan, subject: str, clip: str, emotion: str, length: int | None = None) -> Take:
    """A SMIC clip: frames numbered from an absolute recording position (from 0 for videos); the clip spans exactly
    onset..offset (SMIC has no apex; the movement still peaks inside)."""
    rng = rng_for(plan.seed, "smic", subject, clip, "timing")
    first = 0 if plan.video else int(rng.integers(1000, 900000))
    ep = episode(rng, subject, clip, emotion, first)
    if length is not None:  # the non_micro clips: a different, shorter span
        ep = Episode(subject, clip, emotion, first, first + length // 2, first + length - 1, ep.au, ep.objective)
    return Take(subject, clip, ep.onset, ep.offset, (ep,))


def write_smic(root: Path, plan: Plan) -> Tree:
    """`SMIC_all_raw/HS/s<k>/micro/<emotion>/s<k>_<ne|po|sur>_<nn>/image<N:06d>.bmp` (labels only in folders), one
    `non_micro/` clip per subject (to be skipped), or `.../<clip>.avi` videos numbered from 0."""
    takes = []
    for i, number in enumerate(ids(SMIC_SUBJECTS, plan.subjects)):
        subject = f"s{number}"
        counts = dict.fromkeys(SMIC_CODES, 0)
        for j in range(plan.clips_per_subject + 1):  # the extra last one goes to non_micro/
            emotion = emotion_at("smic", i, j, plan.clips_per_subject + 1)
            labelled = j < plan.clips_per_subject
            counts[emotion] += 1  # non_micro takes the next number, so clip names stay unique within a subject
            clip = f"{subject}_{SMIC_CODES[emotion]}_{counts[emotion]:02d}"
            folder = root / "SMIC_all_raw" / "HS" / subject / ("micro" if labelled else "non_micro") / emotion
            take = _smic_take(plan, subject, clip, emotion, None if labelled else 14)
            target, pattern = (folder / f"{clip}.avi", "") if plan.video else (folder / clip, "image{:06d}.bmp")
            takes.append((take, target, pattern, labelled))
    frames, truth = _write_takes(root, "smic", plan, takes, gray=False)
    return Tree("smic", root, plan.subjects, len(takes), len(truth), frames, None, tuple(truth))


def _casme3_videos(plan: Plan, i: int, subject: str) -> list[Take]:
    """A subject's videos a, b, …: two MEs each (the last takes three when the count is odd), with neutral frames
    before, between and after them (padded to plan.video_frames); frame numbers from 0."""
    sizes = [2] * (plan.clips_per_subject // 2)
    sizes[-1] += plan.clips_per_subject % 2
    takes, j = [], 0
    for v, size in enumerate(sizes):
        letter = chr(ord("a") + v)
        rng = rng_for(plan.seed, "casme3", subject, letter, "timing")
        position, eps = int(rng.integers(6, 13)), []
        for _ in range(size):
            ep = episode(rng, subject, letter, emotion_at("casme3", i, j, plan.clips_per_subject), position)
            eps.append(ep)
            position, j = ep.offset + 1 + int(rng.integers(8, 17)), j + 1
        takes.append(_padded(Take(subject, letter, 0, eps[-1].offset + int(rng.integers(4, 9)), tuple(eps)),
                             plan.video_frames))
    return takes


def _padded(take: Take, frames: int) -> Take:
    """The take lengthened to at least `frames` frames by widening its neutral gaps (before, between and after the
    MEs) evenly, the remainder going to the end; every ME keeps its length and shape."""
    extra = frames - (take.last - take.first + 1)
    if extra <= 0:
        return take
    step = extra // (len(take.episodes) + 1)
    eps = tuple(Episode(ep.subject, ep.clip, ep.emotion, ep.onset + k * step, ep.apex + k * step, ep.offset + k * step,
                        ep.au, ep.objective) for k, ep in enumerate(take.episodes, start=1))
    return Take(take.subject, take.name, take.first, take.last + extra, eps)


def write_casme3(root: Path, plan: Plan) -> Tree:
    """`cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx` and `part_A/data/part_A/spNO.<k>/<letter>/color/<idx>.jpg` (idx from
    0) with a parallel `depth/<idx>.png` (16-bit, mm), or `.../<letter>/color.mp4`; each video holds 2+ MEs."""
    base = root / "part_A" / "data" / "part_A"
    takes = []
    for i in range(plan.subjects):
        subject = f"spNO.{i + 1}"
        for take in _casme3_videos(plan, i, subject):
            folder = base / subject / take.name
            target, pattern = (folder / "color.mp4", "") if plan.video else (folder / "color", "{}.jpg")
            takes.append((take, target, pattern, True))
    takes = _casme3_quirks(takes)
    frames, truth = _write_takes(root, "casme3", plan, takes, gray=False)
    if not plan.video:
        _write_depth(plan, takes)
    episodes = [ep for take, *_ in takes for ep in take.episodes]
    sheet = root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    casme3_sheet(sheet, episodes, int_cells=("D3",) if len(episodes) > 1 else ())
    return Tree("casme3", root, plan.subjects, len(takes), len(episodes), frames, sheet, tuple(truth))


def _casme3_quirks(takes: list[tuple[Take, Path, str, bool]]) -> list[tuple[Take, Path, str, bool]]:
    """The real sheet's spelling slips: the first `others` written `Others`, and the last video's first Filename in
    upper case (its folder stays lower case)."""
    out, capitalised = [], False
    for k, (take, target, pattern, labelled) in enumerate(takes):
        eps = []
        for e, ep in enumerate(take.episodes):
            emotion, clip = ep.emotion, ep.clip
            if emotion == "others" and not capitalised:
                emotion, capitalised = "Others", True
            if k == len(takes) - 1 and e == 0:
                clip = clip.upper()
            eps.append(Episode(ep.subject, clip, emotion, ep.onset, ep.apex, ep.offset, ep.au, ep.objective))
        out.append((Take(take.subject, take.name, take.first, take.last, tuple(eps)), target, pattern, labelled))
    return out


def _write_depth(plan: Plan, takes: list[tuple[Take, Path, str, bool]]) -> None:
    """The parallel depth/ folder of each CAS(ME)^3 video: one 16-bit PNG per colour frame, same index."""
    encoded: dict[str, bytes] = {}
    for take, target, _, _ in takes:
        if take.subject not in encoded:
            look = look_of(plan.seed, "casme3", take.subject, plan.difficulty)
            encoded[take.subject] = cv2.imencode(".png", render.depth_map(look))[1].tobytes()
        folder = target.parent / "depth"
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(take.first, take.last + 1):
            (folder / f"{n}.png").write_bytes(encoded[take.subject])
