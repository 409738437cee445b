"""The shard task: make the shard's rows, then per clip segment track the face block by block, decode each needed frame
once, warp and encode it under every matrix the block's pairs give it (both frames of a pair share the pair's one
matrix) while it is still in cache, and write the shard files.

`run_shard` is a plain function: the serial mode calls it in-process, the Ray mode wraps it in a remote task. It writes
the tar and parquet under temporary names, then `_stats.json` last, so a shard whose stats file exists is complete.
"""

from __future__ import annotations

import json
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path

import cv2
import numpy as np

from mer_data.align import (FaceDetector, apply, compose, decode_reduction, find_face, footprint,
                            resize_transform, warp)
from mer_data.blazeface import Face
from mer_data.frame_window import FrameWindow
from mer_data.frames import FrameError, keep_freed_frames, reduced_to_source, to_rgb
from mer_data.pair_align import PairMatrix, Tracker, align_blocks
from mer_data.records import STATUS_OK
from mer_data.shards import WORK_COUNTS, TarShardWriter, shard_paths, shard_stats, write_json, write_rows
from mer_data.track import TrackConfig
from pipelines.plan import ClipSpan, PairOptions, ShardSpec, segment_rows



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
    face_runtime: str = "auto"  # the model's runtime: "litert" or "mediapipe" (the driver resolves "auto")
    track: TrackConfig = field(default_factory=TrackConfig)  # detection schedule, thresholds, smoothing, blocks
    frames: int = 0  # labeled: frames stored per sample, spread over onset..offset (0 = all of them)
    views: tuple[str, ...] = ()  # labeled: views computed at ingest and stored with each sample ("flow")
    decode_scale: str = "auto"  # "auto": JPEG frames at the largest DCT scale keeping the face's resolution; "full"
    decode_regions: bool = True  # JPEG frames not detected on decode only the box their warps read (same bytes)
    run_id: str = ""  # one ingest run (set by run_ingest): the scope of `clip_faces`; "" shares no detection


_DETECTORS: dict[tuple, FaceDetector] = {}  # one detector per process, reused by every task and run it serves


def detector_for(opts: WorkerOptions) -> FaceDetector:
    """This process's detector for the options' model and thresholds, created on first use and kept for later shards.

    A Ray worker keeps it for its lifetime; the serial mode closes it when its run ends (`close_detectors`).
    """
    key = (opts.face_model, opts.track.min_confidence, opts.track.fallback_confidence, opts.face_runtime)
    if key not in _DETECTORS:
        _DETECTORS[key] = FaceDetector(opts.face_model, opts.track.min_confidence, opts.track.fallback_confidence,
                                       opts.face_runtime)
    return _DETECTORS[key]


def close_detectors() -> None:
    """Release the detectors this process holds and the detections it keeps (the serial mode calls it when its run
    ends)."""
    while _DETECTORS:
        _DETECTORS.popitem()[1].close()
    _FACES.clear()


REGION_PAD = 16  # px (at the decoding scale) around the boxes of frames that the next block may warp again

FACE_CLIPS = 4  # clips whose detections a process keeps for their next segment
_FACES: OrderedDict[tuple[str, str, str], dict[int, Face | None]] = OrderedDict()


def clip_faces(opts: WorkerOptions, span: ClipSpan) -> dict[int, Face | None]:
    """The detections (frame number → face or None) this process made in the clip during this run, shared by the
    clip's segments: a segment that starts inside a shard tracks the matrix block around its first pair again, which
    asks for the detections the previous segment made there (55 of 512 detections under a drifting head with
    shards cut inside 900-frame videos, bench/bench_align.py). A detection is a pure function of the frame, so the
    track, the matrices and the bytes are the same whether the clip's segments share this process or not; only the
    work done differs, which is why decodes and detections are not in `_stats.json`. Kept for the FACE_CLIPS clips used
    last, per run (`opts.run_id`; without one, a fresh dict)."""
    if not opts.run_id:
        return {}
    key = (opts.run_id, span.clip.key, span.clip.source)
    faces = _FACES.pop(key, {})
    _FACES[key] = faces  # now the clip used last
    while len(_FACES) > FACE_CLIPS:
        _FACES.popitem(last=False)
    return faces


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
               counts: Counter) -> Iterator[list[PairMatrix]]:
    """Each pair's matrix (or why it has none), in pair order, a block of pairs at a time (`align_blocks`): from the
    face track, or with `face_detector none` the matrix resizing the pair's first frame (pre-cropped faces), all pairs
    in one block.

    With `decode_scale` "auto" and JPEG frames, the clip's first frame is detected at full scale and its eye distance
    sets the decoding scale of everything after (`decode_reduction`); every segment of the clip does the same, so
    the choice, like the shard layout, does not depend on how many workers share the clip. Faces are always detected
    on a full-scale decode of their frame (`FrameWindow.full`), so the track and the matrices are those of
    `decode_scale full` to the bit and only the warped pixels come from the reduced frames: detecting on the reduced
    frames instead put a still head's eyes 0.7 px further off at p90 (1.51 against 0.82 px at 224, 2040×1530,
    bench/bench_align.py --motion none), for about 0.1 extra full decodes per frame."""
    if opts.face_detector == "none":
        block = []
        for k, (t0, t1) in enumerate(pairs):
            image = next((f for f in (frames.get(t0), frames.get(t1)) if not isinstance(f, FrameError)), None)
            m = None if image is None else resize_transform(image.shape[0], image.shape[1], opts.size)
            block.append(PairMatrix(k, m, "" if m is not None else "no readable frame", None))
        yield block
        return
    detector = detector_for(opts)

    def detect(n: int):
        image = frames.full(n)
        counts["detections"] += 1
        return None if isinstance(image, FrameError) else find_face(detector, image, to_rgb)

    tracker = Tracker(detect, span.first, span.last, span.fps, opts.track, frames.release, clip_faces(opts, span))
    if opts.decode_scale == "auto" and frames.dct_scalable:
        if span.first not in tracker.known:
            tracker.known[span.first] = detect(span.first)  # the track reuses it where the schedule asks for it
        frames.reduce(decode_reduction(tracker.known[span.first], opts.size))
    yield from align_blocks(tracker, pairs, opts.labeled)


class PairJson:
    """The pairs' sample json of one clip segment, byte for byte what `json.dumps(meta, sort_keys=True)` writes for
    `pair_meta(...)` (tests/test_ingest.py checks it), built from pieces instead of a dict per pair: the fields every
    pair of the segment shares (its clip's names, size, format, decode scale) are encoded once, a matrix's crop once
    per matrix, the eyes of a block's pairs mapped through their matrix in one array operation per matrix,
    and only the pair's numbers and key per pair (under cProfile 27 µs a pair, against 48 µs for a dict, `apply` and
    `json.dumps` per pair: about 1 % of the ingest of 25-frame CASME II clips)."""

    def __init__(self, row: dict, opts: WorkerOptions, reduction: int):
        s = encode_basestring_ascii  # json's own string encoder (ensure_ascii, as json.dumps by default)
        self._head = f'{{"clip": {s(row["clip"])}, "crop": '
        self._mid = (f', "dataset": {s(row["dataset"])}, "decode_scale": {json.dumps(1.0 / reduction)}, '
                     f'"delta": ')
        self._format = f'"format": {s(opts.image_format)}, "index": '
        self._tail = (f', "size": {json.dumps(opts.size)}, "source": {s(row["source"])}, '
                      f'"subject": {s(row["subject"])}, "t0": ')
        self._clip = (row["dataset"], row["subject"], row["clip"], row["source"])
        self._crops: dict[bytes, str] = {}

    def encode_block(self, rows: list[dict], block: list[PairMatrix], keys: list[bytes | None]) -> dict[int, bytes]:
        """The json of each aligned pair of `block` (pair index → bytes); `rows[i]` is pair i's row, `keys` the
        bytes of each item's matrix (None where it has none)."""
        by_key: dict[bytes, list[PairMatrix]] = {}
        for item, key in zip(block, keys):
            if key is not None:
                by_key.setdefault(key, []).append(item)
        out = {}
        for key, items in by_key.items():
            if key not in self._crops:
                self._crops[key] = json.dumps(items[0].matrix.tolist())
            for item, eyes in zip(items, self._eyes(items)):
                out[item.index] = self._encode(rows[item.index], self._crops[key], eyes)
        return out

    @staticmethod
    def _eyes(items: list[PairMatrix]) -> list[str]:
        """The eyes field of pairs sharing one matrix, mapped through it in one array operation ('' for a pair without
        tracked eyes: `--face-detector none`)."""
        tracked = [item for item in items if item.eyes is not None]
        fields: dict[int, str] = {}
        if tracked:
            mapped = pair_eyes(tracked[0].matrix, np.stack([item.eyes for item in tracked]))
            if np.isfinite(mapped).all():  # a finite float's repr is what json writes for it
                fields = {item.index: _EYES % tuple(eyes) for item, eyes in zip(tracked, mapped.tolist())}
            else:
                fields = {item.index: f'"eyes": {json.dumps(eyes)}, '
                          for item, eyes in zip(tracked, mapped.reshape(-1, 2, 2, 2).tolist())}
        return [fields.get(item.index, "") for item in items]

    def _encode(self, row: dict, crop: str, eyes: str) -> bytes:
        if (row["dataset"], row["subject"], row["clip"], row["source"]) != self._clip or row.get("sample_id"):
            raise ValueError(f"row {row['key']} is not a pair of the segment's clip")
        t0, t1, delta, index = (int(row[k]) for k in ("t0", "t1", "delta", "index"))
        return (f'{self._head}{crop}{self._mid}{delta}, {eyes}{self._format}{index}, "key": '
                f'{encode_basestring_ascii(row["key"])}{self._tail}{t0}, "t1": {t1}}}').encode()


_EYES = '"eyes": [[[%r, %r], [%r, %r]], [[%r, %r], [%r, %r]]], '


def pair_eyes(matrix: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """Tracked (smoothed) eyes (..., 2, 2, 2: f0 and f1, right and left, x and y) where `matrix` puts them: output px,
    rounded to 0.01 px, as (n, 8)."""
    return np.round(apply(matrix, eyes.reshape(-1, 2)), 2).reshape(-1, 8)


def pair_meta(row: dict, item: PairMatrix, opts: WorkerOptions, reduction: int) -> dict:
    """What a pair's json holds (`PairJson` writes it): the row's names and frames, the crop (full-scale frame px →
    output px, whatever the scale the frames were decoded at), the output's size and format, the decode scale, and the
    eyes where the track puts them (absent without a face track: `--face-detector none`)."""
    meta = {k: row[k] for k in ("dataset", "subject", "clip", "source", "t0", "t1", "delta", "index", "key")}
    meta.update(crop=item.matrix.tolist(), size=opts.size, format=opts.image_format, decode_scale=1.0 / reduction)
    if item.eyes is not None:
        meta["eyes"] = pair_eyes(item.matrix, item.eyes)[0].reshape(2, 2, 2).tolist()
    return meta


def _fail(row: dict, status: str, reason: str) -> None:
    row["status"], row["reason"] = status, reason


def process_segment(rows: list[dict], span: ClipSpan, opts: WorkerOptions,
                    counts: Counter) -> Iterator[tuple[dict, dict]]:
    """(row, tar members) for each ok row of one clip segment, in row order; rows that fail (no face, a bad or missing
    frame) get their status and reason set in place. `counts` gathers decodes, detections, encodes and tracked anchors.

    Rows come sorted by t0 (pairs by anchor, samples by onset), the order in which the track hands out matrices.
    The process's allocator keeps freed frames (`keep_freed_frames`, set by `run_shard`)."""
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
    names = (f"f0.{ext}", f"f1.{ext}")
    as_json: PairJson | None = None
    with FrameWindow(span.clip, opts.decode_regions) as frames:
        for block in alignments(frames, span, pairs, opts, counts):
            # every encode a frame of the block needs is made right after its decode, while the frame is in cache
            # (a warp from a frame decoded a block earlier cost about 4x as much: 0.39 against 0.09 ms at 960×720)
            first = pairs[block[0].index][0]
            encoded = {slot: data for slot, data in encoded.items() if slot[0] >= first}  # later pairs start here
            keys = [None if item.matrix is None else item.matrix.tobytes() for item in block]
            needs: dict[int, dict[bytes, np.ndarray]] = {}
            for item, key in zip(block, keys):
                t0, t1 = pairs[item.index]
                need0, need1 = needs.setdefault(t0, {}), needs.setdefault(t1, {})
                if key is not None:
                    need0[key] = need1[key] = item.matrix
            bad: dict[int, FrameError] = {}
            on_decoded: dict[bytes, np.ndarray] = {}  # matrix → the same warp applied to the decoded (reduced) frame
            last = pairs[block[-1].index][0]  # later blocks' pairs start after it: frames up to it are done here
            for n in sorted(needs):
                todo = [(key, matrix) for key, matrix in needs[n].items() if (n, key) not in encoded]
                for key, matrix in todo:
                    if key not in on_decoded:
                        on_decoded[key] = compose(matrix, reduced_to_source(frames.reduction))
                if todo or not needs[n]:
                    # a frame later blocks may still ask for (past `last`) keeps a margin for their matrices
                    pad = 0 if n <= last else REGION_PAD
                    region = frames.region(n, footprint([on_decoded[key] for key, _ in todo], opts.size, pad)
                                           if todo else (0, 0, 1, 1))
                    if isinstance(region, FrameError):
                        bad[n] = region
                        continue
                for key, _ in todo:
                    encoded[n, key] = encode_native(warp(region.image, on_decoded[key], opts.size), ext, opts.quality)
                    counts["encodes"] += 1
                    frames_encoded.add(n)
                if n <= last:
                    frames.release(n + 1)  # holds the pairs' lookahead and the detections ahead, not the block
            if as_json is None:  # after the first block: the decoding scale is known
                as_json = PairJson(pending[0], opts, frames.reduction)
            jsons = as_json.encode_block(pending, block, keys)
            tracked = sum(key is not None for key in keys)
            counts["anchors_tracked"] += tracked
            if tracked < len(keys):
                counts["anchors_lost"] += len(keys) - tracked
            for item, key in zip(block, keys):
                row, (t0, t1) = pending[item.index], pairs[item.index]
                if bad and (t0 in bad or t1 in bad):
                    _fail(row, "bad_frame", str(bad.get(t0) or bad[t1]))
                    continue
                if key is None:
                    _fail(row, "no_face", f"{item.reason} of {span.clip.source}")
                    continue
                yield row, {names[0]: encoded[t0, key], names[1]: encoded[t1, key], "json": jsons[item.index]}
        counts["decoded"] += frames.decoded
        counts["decoded_full"] += frames.decoded_full
        counts["decoded_regions"] += frames.decoded_regions
    counts["frames_encoded"] += len(frames_encoded)


def run_shard(spec: ShardSpec, opts: WorkerOptions) -> dict:
    """Write shard `spec.index` under `opts.out`; return its stats plus the task's `work` (WORK_COUNTS), `seconds`
    and `clips_finished`."""
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
    return {**stats, "work": {k: int(counts[k]) for k in WORK_COUNTS}, "seconds": time.perf_counter() - start,
            "clips_finished": spec.clips_finished}
