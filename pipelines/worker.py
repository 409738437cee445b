"""The shard task: make the shard's rows, then per clip segment decode each needed frame once, track the face, warp both
frames of a pair with the pair's one matrix, encode, and write the shard files.

`run_shard` is a plain function: the serial mode calls it in-process, the Ray mode wraps it in a remote task. It writes
the tar and parquet under temporary names, then `_stats.json` last, so a shard whose stats file exists is complete.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mer_data.align import (FaceDetector, apply, compose, decode_reduction, face_to_source, find_face,
                            resize_transform, warp)
from mer_data.frames import FrameError, FrameWindow, dct_scalable, keep_freed_frames, reduced_to_source, to_rgb
from mer_data.pair_align import PairMatrix, Tracker, align_pairs
from mer_data.records import STATUS_OK
from mer_data.shards import TarShardWriter, shard_paths, shard_stats, write_json, write_rows
from mer_data.track import TrackConfig
from pipelines.plan import ClipSpan, PairOptions, ShardSpec, segment_rows

CACHE_LIMIT = 256  # encoded frames kept for later pairs of a segment before the ones behind are dropped


@dataclass(frozen=True)
class WorkerOptions:
    """What a shard task needs to know (a picklable subset of the ingest config)."""

    out: str  # output directory
    pairs: PairOptions = field(default_factory=PairOptions)  # how a segment's pair rows are drawn
    labeled: bool = False  # rows are samples (onset, apex): one matrix from the track around each
    size: int = 224  # output side in pixels
    image_format: str = "jpg"  # "jpg" or "png"
    quality: int = 95  # JPEG quality (ignored for png)
    face_detector: str = "mediapipe"  # "mediapipe" or "none" (resize the whole frame)
    face_model: str = ""  # path of the .tflite model (mediapipe only)
    track: TrackConfig = field(default_factory=TrackConfig)  # detection schedule, thresholds, smoothing, blocks
    frames: int = 0  # labeled: frames stored per sample, spread over onset..offset (0 = all of them)
    views: tuple[str, ...] = ()  # labeled: views computed at ingest and stored with each sample ("flow")
    decode_scale: str = "auto"  # "auto": JPEG frames at the largest DCT scale keeping the face's resolution; "full"


_DETECTORS: dict[tuple, FaceDetector] = {}  # one detector per process, reused by every task and run it serves


def detector_for(opts: WorkerOptions) -> FaceDetector:
    """This process's detector for the options' model and thresholds, created on first use and kept for later shards.

    A Ray worker keeps it for its lifetime; the serial mode closes it when its run ends (`close_detectors`).
    """
    key = (opts.face_model, opts.track.min_confidence, opts.track.fallback_confidence)
    if key not in _DETECTORS:
        _DETECTORS[key] = FaceDetector(opts.face_model, opts.track.min_confidence, opts.track.fallback_confidence)
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


def alignments(frames: FrameWindow, span: ClipSpan, pairs: list[tuple[int, int]], opts: WorkerOptions,
               counts: Counter) -> Iterator[PairMatrix]:
    """Each pair's matrix (or why it has none), in pair order: from the face track, or with `face_detector none` the
    matrix resizing the pair's first frame (pre-cropped faces).

    With `decode_scale` "auto" and JPEG frames, the clip's first frame is detected at full scale and its eye distance
    sets the decoding scale of everything after (`decode_reduction`); every segment of the clip does the same, so
    the choice, like the shard layout, does not depend on how many workers share the clip. Faces found at reduced
    scale are mapped back to full-scale coordinates: the track and the matrices never see the scale."""
    if opts.face_detector == "none":
        for k, (t0, t1) in enumerate(pairs):
            image = next((f for f in (frames.get(t0), frames.get(t1)) if not isinstance(f, FrameError)), None)
            m = None if image is None else resize_transform(image.shape[0], image.shape[1], opts.size)
            yield PairMatrix(k, m, "" if m is not None else "no readable frame", None)
        return
    detector = detector_for(opts)

    def detect(n: int):
        image = frames.get(n)
        counts["detections"] += 1
        face = None if isinstance(image, FrameError) else find_face(detector, image, to_rgb)
        return None if face is None else face_to_source(face, frames.reduction)

    tracker = Tracker(detect, span.first, span.last, span.fps, opts.track, frames.release)
    if opts.decode_scale == "auto" and dct_scalable(span.clip):
        tracker.known[span.first] = detect(span.first)  # the track reuses it where the schedule asks for it
        frames.reduce(decode_reduction(tracker.known[span.first], opts.size))
    yield from align_pairs(tracker, pairs, opts.labeled)


def _sample_json(row: dict, item: PairMatrix, opts: WorkerOptions, reduction: int) -> bytes:
    meta = {k: row[k] for k in ("dataset", "subject", "clip", "source", "t0", "t1", "delta", "index", "key")}
    # crop: full-scale frame px → output px, whatever the scale the frames were decoded at (decode_scale)
    meta.update(crop=item.matrix.tolist(), size=opts.size, format=opts.image_format, decode_scale=1.0 / reduction)
    if item.eyes is not None:  # the tracked (smoothed) eyes of f0 and f1 where the crop puts them, output px
        meta["eyes"] = np.round(apply(item.matrix, item.eyes.reshape(-1, 2)), 2).reshape(2, 2, 2).tolist()
    if row.get("sample_id"):
        meta.update({k: row[k] for k in ("sample_id", "emotion", "onset", "apex", "offset")})
    return json.dumps(meta, sort_keys=True).encode()


def _fail(row: dict, status: str, reason: str) -> None:
    row["status"], row["reason"] = status, reason


def process_segment(rows: list[dict], span: ClipSpan, opts: WorkerOptions,
                    counts: Counter) -> Iterator[tuple[dict, dict]]:
    """(row, tar members) for each ok row of one clip segment, in row order; rows that fail (no face, a bad or missing
    frame) get their status and reason set in place. `counts` gathers decodes, detections, encodes and tracked anchors.

    Rows come sorted by t0 (pairs by anchor, samples by onset), the order in which the track hands out matrices."""
    pending = [r for r in rows if r["status"] == STATUS_OK]
    if not pending:
        return
    if opts.labeled:  # whole expressions: pipelines/samples.py
        from pipelines.samples import process_samples

        yield from process_samples(pending, span, opts, counts)
        return
    pairs = [(r["t0"], r["t1"]) for r in pending]
    if pairs != sorted(pairs, key=lambda p: p[0]):
        raise ValueError(f"rows of {span.clip.key} are not sorted by t0")
    encoded: dict[tuple[int, bytes], bytes] = {}  # (frame, matrix) → image bytes: each frame encoded once per matrix
    frames_encoded: set[int] = set()
    ext = opts.image_format
    with FrameWindow(span.clip) as frames:
        for item in alignments(frames, span, pairs, opts, counts):
            row, (t0, t1) = pending[item.index], pairs[item.index]
            counts["anchors_tracked" if item.matrix is not None else "anchors_lost"] += 1
            bad = next((f for f in (frames.get(t0), frames.get(t1)) if isinstance(f, FrameError)), None)
            if bad is not None:
                _fail(row, "bad_frame", str(bad))
                continue
            if item.matrix is None:
                _fail(row, "no_face", f"{item.reason} of {span.clip.source}")
                continue
            images, on_decoded = [], compose(item.matrix, reduced_to_source(frames.reduction))
            for n in (t0, t1):
                slot = (n, item.matrix.tobytes())
                if slot not in encoded:
                    encoded[slot] = encode_native(warp(frames.get(n), on_decoded, opts.size), ext, opts.quality)
                    counts["encodes"] += 1
                    frames_encoded.add(n)
                images.append(encoded[slot])
            meta = _sample_json(row, item, opts, frames.reduction)
            yield row, {f"f0.{ext}": images[0], f"f1.{ext}": images[1], "json": meta}
            if len(encoded) > CACHE_LIMIT:  # later pairs start at t0 or after: frames behind are not needed again
                encoded = {slot: data for slot, data in encoded.items() if slot[0] >= t0}
        counts["decoded"] += frames.decoded
    counts["frames_encoded"] += len(frames_encoded)


def run_shard(spec: ShardSpec, opts: WorkerOptions) -> dict:
    """Write shard `spec.index` under `opts.out`; return its stats plus `seconds` and `clips_finished`."""
    start = time.perf_counter()
    keep_freed_frames()
    paths = shard_paths(Path(opts.out), spec.index)
    counts: Counter = Counter()
    rows: list[dict] = []
    with TarShardWriter(paths["tar"]) as tar:
        for seg in spec.segments:
            seg_rows = segment_rows(seg, opts.pairs)
            for row in seg_rows:
                row["shard"] = spec.index
            rows += seg_rows
            for row, members in process_segment(seg_rows, seg.span, opts, counts):
                tar.add(row["key"], members)
    write_rows(paths["parquet"], rows)
    stats = shard_stats(spec.index, rows, counts, tar)
    write_json(paths["stats"], stats)  # last: marks the shard finished
    return {**stats, "seconds": time.perf_counter() - start, "clips_finished": spec.clips_finished}
