"""The shard task: decode each needed frame once, align with one matrix per clip, encode once, write the shard files.

`run_shard` is a plain function: the serial mode calls it in-process, the Ray mode wraps it in a remote task. It writes
the tar and parquet under temporary names, then `_stats.json` last, so a shard whose stats file exists is complete.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import cv2
import numpy as np

from mer_data.align import FaceDetector, eye_transform, locate_face, resize_transform, warp
from mer_data.frames import ClipReader, FrameError, to_rgb
from mer_data.records import STATUS_OK, Clip
from mer_data.shards import TarShardWriter, shard_paths, shard_stats, write_json, write_rows
from pipelines.plan import ShardPlan


@dataclass(frozen=True)
class WorkerOptions:
    """What a shard task needs to know (a picklable subset of the ingest config)."""

    out: str  # output directory
    size: int = 224  # output side in pixels
    image_format: str = "jpg"  # "jpg" or "png"
    quality: int = 95  # JPEG quality (ignored for png)
    face_detector: str = "mediapipe"  # "mediapipe" or "none" (resize the whole frame)
    face_model: str = ""  # path of the .tflite model (mediapipe only)
    min_confidence: float = 0.5  # accept a face at once at or above this score
    fallback_confidence: float = 0.3  # otherwise the best face above this score over the candidate frames


_DETECTORS: dict[tuple, FaceDetector] = {}  # one detector per process, reused by every task and run it serves


def detector_for(opts: WorkerOptions) -> FaceDetector:
    """This process's detector for the options' model and thresholds, created on first use and kept for later shards.

    A Ray worker keeps it for its lifetime; the serial mode closes it when its run ends (`close_detectors`).
    """
    key = (opts.face_model, opts.min_confidence, opts.fallback_confidence)
    if key not in _DETECTORS:
        _DETECTORS[key] = FaceDetector(opts.face_model, opts.min_confidence, opts.fallback_confidence)
    return _DETECTORS[key]


def close_detectors() -> None:
    """Release the detectors this process holds (the serial mode calls it when its run ends)."""
    while _DETECTORS:
        _DETECTORS.popitem()[1].close()


def encode_native(image: np.ndarray, image_format: str, quality: int) -> bytes:
    """BGR (H, W, 3) or grayscale (H, W) uint8 → JPEG (fixed quality, baseline) or PNG (fixed level) bytes, 3 channels.

    Grayscale is replicated to 3 channels here, after the warp, which gives the same pixels as warping 3 copies.
    """
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if image_format == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode("." + image_format, image, params)
    if not ok:
        raise RuntimeError(f"cv2.imencode failed for format {image_format}")
    return buf.tobytes()


def clip_matrix(reader: ClipReader, candidates: list[int], opts: WorkerOptions,
                decoded: dict[int, np.ndarray]) -> tuple[np.ndarray | None, str]:
    """The clip's one alignment matrix from the first candidate frame with a face (lazily decoded); None + reason if none.

    Decoded candidates are left in `decoded` (number → frame as the native reader gives it) so no frame is decoded
    twice. With `face_detector == "none"` there is no clip matrix: each frame is resized on its own (returns None, "").
    """
    if opts.face_detector == "none":
        return None, ""

    def frames() -> Iterator[np.ndarray]:
        for n in candidates:
            for _, image in reader.frames([n]):
                if not isinstance(image, FrameError):
                    decoded[n] = image
                    yield to_rgb(image)  # the detector takes RGB

    detector = detector_for(opts)
    face = locate_face(detector, frames())
    if face is None:
        return None, f"no face above confidence {detector.fallback_confidence} in frames {candidates} of {reader.clip.source}"
    return eye_transform(face.right_eye, face.left_eye, opts.size), ""


def encode_frames(reader: ClipReader, numbers: list[int], matrix: np.ndarray | None, opts: WorkerOptions,
                  decoded: dict[int, np.ndarray]) -> dict:
    """Frame number → (encoded bytes, matrix used) or FrameError; each frame decoded, warped and encoded once."""
    out = {}
    ahead = [(n, decoded[n]) for n in numbers if n in decoded]
    rest = reader.frames([n for n in numbers if n not in decoded])  # streamed: full-size frames are never all held
    for n, image in heapq.merge(ahead, rest, key=lambda item: item[0]):
        if isinstance(image, FrameError):
            out[n] = image
            continue
        m = matrix if matrix is not None else resize_transform(image.shape[0], image.shape[1], opts.size)
        out[n] = (encode_native(warp(image, m, opts.size), opts.image_format, opts.quality), m)
    return out


def _sample_json(row: dict, matrix: np.ndarray, opts: WorkerOptions) -> bytes:
    meta = {k: row[k] for k in ("dataset", "subject", "clip", "source", "t0", "t1", "delta", "index", "key")}
    meta.update(crop=matrix.tolist(), size=opts.size, format=opts.image_format)
    if row.get("sample_id"):
        meta.update({k: row[k] for k in ("sample_id", "emotion", "onset", "apex", "offset")})
    return json.dumps(meta, sort_keys=True).encode()


def _fail(row: dict, status: str, reason: str) -> None:
    row["status"], row["reason"] = status, reason


def process_clip_rows(rows: list[dict], clip: Clip, candidates: list[int],
                      opts: WorkerOptions) -> tuple[list[tuple[dict, dict]], int]:
    """(row, tar members) for the ok rows of one clip segment, and the number of frames encoded.

    Rows that fail (no face, a bad or missing frame) get their status and reason set in place.
    """
    pending = [r for r in rows if r["status"] == STATUS_OK]
    if not pending:
        return [], 0
    decoded: dict[int, np.ndarray] = {}  # frames decoded for detection, reused when a pair needs them
    with ClipReader(clip, native=True) as reader:  # one folder listing / one open video for detection and encoding
        matrix, reason = clip_matrix(reader, candidates, opts, decoded)
        if reason:
            for row in pending:
                _fail(row, "no_face", reason)
            return [], 0
        numbers = sorted({r["t0"] for r in pending} | {r["t1"] for r in pending})
        frames = encode_frames(reader, numbers, matrix, opts, decoded)
    ext, samples = opts.image_format, []
    for row in pending:
        f0, f1 = frames[row["t0"]], frames[row["t1"]]
        bad = next((f for f in (f0, f1) if isinstance(f, FrameError)), None)
        if bad is not None:
            _fail(row, "bad_frame", str(bad))
            continue
        samples.append((row, {f"f0.{ext}": f0[0], f"f1.{ext}": f1[0], "json": _sample_json(row, f0[1], opts)}))
    return samples, sum(not isinstance(f, FrameError) for f in frames.values())


def run_shard(plan: ShardPlan, opts: WorkerOptions) -> dict:
    """Write shard `plan.index` under `opts.out`; return its stats plus `seconds` and `clips_finished`."""
    start = time.perf_counter()
    paths = shard_paths(Path(opts.out), plan.index)
    rows = [dict(r) for r in plan.rows]  # a retried task must not see a previous attempt's edits
    frames_encoded = 0
    with TarShardWriter(paths["tar"]) as tar:
        for clip_key, group in groupby(rows, key=lambda r: f"{r['subject']}/{r['clip']}"):
            group = list(group)
            clip = plan.clips.get(clip_key)
            if clip is None:  # only failure rows refer to clips missing from the plan
                continue
            samples, encoded = process_clip_rows(group, clip, plan.candidates.get(clip_key, []), opts)
            for row, members in samples:
                tar.add(row["key"], members)
            frames_encoded += encoded
    write_rows(paths["parquet"], rows)
    stats = shard_stats(plan.index, rows, frames_encoded, tar)
    write_json(paths["stats"], stats)  # last: marks the shard finished
    return {**stats, "seconds": time.perf_counter() - start, "clips_finished": plan.clips_finished}
