"""Labeled samples as whole expressions: each sample's one alignment matrix (its mean eyes over onset..apex), its
aligned frames onset..offset (or `frames` of them, spread uniformly, onset, apex and offset always among them) and,
where the ingest stores it, the onset→apex TV-L1 flow.

Tar members of a sample: `f0` (onset) and `f1` (apex), as every reader of labeled shards expects, then `t<n>` for
each other frame number n, then `flow.npy` (float32 (2, H, W): u, v in output px) and `json`, whose `frames` lists the
stored frame numbers in order. A sample whose frames cannot all be read is a `bad_frame` row naming the frame.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator

import cv2
import numpy as np

from mer_data.align import apply, compose, footprint, warp
from mer_data.flow import tvl1
from mer_data.frame_window import FrameWindow
from mer_data.frames import FrameError, reduced_to_source
from mer_data.pair_align import PairMatrix
from pipelines.plan import ClipSpan
from pipelines.worker import WorkerOptions, alignments, encode_native

STORED_VIEWS = ("flow",)  # views computed at ingest and stored with the sample (`--views`)


def expression_numbers(onset: int, apex: int, offset: int | None, frames: int = 0) -> list[int]:
    """The frame numbers a sample stores: onset..end inclusive, end = offset (apex where the offset is missing or
    before the apex); with `frames` N ≥ 3 and more frames than that, N numbers spread uniformly over onset..end
    (rounded), the grid point nearest the apex moved onto it, so onset, apex and end are always stored."""
    end = offset if offset is not None and offset >= apex else apex
    if frames == 0 or frames >= end - onset + 1:
        return list(range(onset, end + 1))
    grid = np.rint(np.linspace(onset, end, frames)).astype(int).tolist()  # spacing > 1: distinct numbers
    if apex not in grid:
        nearest = min(range(1, frames - 1), key=lambda i: abs(grid[i] - apex))
        grid[nearest] = apex  # stays between its neighbours: the grid remains sorted
    return grid


def member_name(n: int, onset: int, apex: int) -> str:
    """The tar member (extension) holding frame n of a sample: f0 for the onset, f1 for the apex, t<n> otherwise."""
    return "f0" if n == onset else "f1" if n == apex else f"t{n}"


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _json(row: dict, item: PairMatrix, numbers: list[int], opts: WorkerOptions, reduction: int) -> bytes:
    meta = {k: row[k] for k in ("dataset", "subject", "clip", "source", "t0", "t1", "delta", "index", "key",
                                "sample_id", "emotion", "onset", "apex", "offset")}
    meta.update(crop=item.matrix.tolist(), size=opts.size, format=opts.image_format, frames=numbers,
                apex_policy=row.get("apex_policy", "sheet"), views=sorted(opts.views), decode_scale=1.0 / reduction)
    if item.eyes is not None:  # the tracked (smoothed) eyes of onset and apex where the crop puts them, output px
        meta["eyes"] = np.round(apply(item.matrix, item.eyes.reshape(-1, 2)), 2).reshape(2, 2, 2).tolist()
    return json.dumps(meta, sort_keys=True).encode()


def sample_members(row: dict, item: PairMatrix, frames: FrameWindow, span: ClipSpan, opts: WorkerOptions,
                   counts: Counter) -> dict[str, bytes] | None:
    """The tar members of one tracked sample, or None with the row's status and reason set (a frame unreadable)."""
    onset, apex = row["onset"], row["apex"]
    numbers = expression_numbers(onset, apex, row["offset"], opts.frames)
    on_decoded = compose(item.matrix, reduced_to_source(frames.reduction))  # the crop, applied to the decoded scale
    box = footprint([on_decoded], opts.size)  # what the warp reads: all a frame not detected on decodes
    images = {}
    for n in numbers:
        image = frames.region(n, box)
        if isinstance(image, FrameError):
            row["status"], row["reason"] = "bad_frame", f"frame {n} of {span.clip.source}: {image}"
            return None
        images[n] = image.image
    warped = {n: warp(images[n], on_decoded, opts.size) for n in numbers}
    ext = opts.image_format
    images = {member_name(n, onset, apex): encode_native(warped[n], ext, opts.quality) for n in numbers}
    if apex == onset:  # both slots hold the one frame
        images["f1"] = images["f0"]
    counts["encodes"] += len(numbers)
    counts["frames_encoded"] += len(numbers)
    order = ["f0", "f1"] + [f"t{n}" for n in numbers if n not in (onset, apex)]
    members = {f"{name}.{ext}": images[name] for name in order}
    if "flow" in opts.views:  # from the warped frames before encoding: no JPEG loss in the flow
        members["flow.npy"] = _npy(tvl1(_gray(warped[onset]), _gray(warped[apex])))
    members["json"] = _json(row, item, numbers, opts, frames.reduction)
    return members


def process_samples(pending: list[dict], span: ClipSpan, opts: WorkerOptions,
                    counts: Counter) -> Iterator[tuple[dict, dict]]:
    """(row, tar members) for each ok sample of one clip segment, in row order (sorted by onset, the order in which
    the track hands out each sample's (onset, apex) matrix); failing rows get their status and reason in place."""
    pairs = [(r["t0"], r["t1"]) for r in pending]
    with FrameWindow(span.clip, opts.decode_regions) as frames:
        for block in alignments(frames, span, pairs, opts, counts):
            for item in block:
                row = pending[item.index]
                counts["anchors_tracked" if item.matrix is not None else "anchors_lost"] += 1
                if item.matrix is None:
                    bad = next((f for f in (frames.get(row["t0"]), frames.get(row["t1"])) if isinstance(f, FrameError)),
                               None)
                    row["status"], row["reason"] = (("bad_frame", str(bad)) if bad is not None
                                                    else ("no_face", f"{item.reason} of {span.clip.source}"))
                    continue
                members = sample_members(row, item, frames, span, opts, counts)
                if members is not None:
                    yield row, members
        counts["decoded"] += frames.decoded
        counts["decoded_full"] += frames.decoded_full
        counts["decoded_regions"] += frames.decoded_regions
