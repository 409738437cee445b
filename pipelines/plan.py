"""Ingest layout: clips listed one at a time, in key order, give a fixed sequence of rows cut into shards of
`shard_size` rows; a shard is described by a few clip segments (a clip and a range of its pair numbers), and the task
that writes it makes the rows itself.

The driver holds the sorted clip list and one clip's listing at a time: its memory grows with the number of clips, not
with the number of pairs, and the first shards are handed out while later clips are still being listed. The layout
depends only on the files on disk and the config, so shard contents do not depend on the number of workers, on
scheduling order or on resume.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mer_data import MerDataError
from mer_data.datasets import nominal_fps
from mer_data.frames import frame_span, video_info
from mer_data.pairs import anchor_count, pairs_in, sample_key
from mer_data.records import STATUS_OK, Clip, Sample

MAX_FPS = 1000.0  # a video claiming more frames per second than this has a broken header: the nominal rate is used


@dataclass(frozen=True)
class PairOptions:
    """The pair-sampling part of the ingest config."""

    delta: tuple[int, int] = (5, 11)  # inclusive range of δ in frames
    pairs_per_frame: int = 1  # δ draws per anchor frame
    stride: int = 1  # anchor every stride-th frame
    seed: int = 0  # base seed; each clip draws from (seed, clip key)


@dataclass(frozen=True)
class ClipSpan:
    """A listed clip: where its frame numbers run and at what rate, or why it yields no pair."""

    clip: Clip
    first: int = 0  # first frame number
    last: int = -1  # last frame number (inclusive)
    count: int = 0  # frames found (a folder may have gaps)
    fps: float = 30.0  # frames per second: the video's own, else the dataset's capture rate
    status: str = STATUS_OK  # a clip-level failure: no_frames, unreadable_video, clip_too_short, unreadable_folder
    reason: str = ""


@dataclass(frozen=True)
class Segment:
    """The rows of one clip in one shard: pair numbers lo..hi-1 (pretraining) or explicit `rows` (labeled)."""

    span: ClipSpan
    index: int  # global row index of the segment's first row
    lo: int = 0
    hi: int = 0
    rows: tuple[dict, ...] = ()  # labeled mode: the samples' rows, without index and key
    closes_clip: bool = True  # the clip's last row is in this segment (for the progress bar)

    @property
    def size(self) -> int:
        return len(self.rows) if self.rows else self.hi - self.lo


@dataclass(frozen=True)
class ShardSpec:
    """One shard's work: its index and its segments, in row order."""

    index: int
    segments: tuple[Segment, ...]

    @property
    def clips_finished(self) -> int:
        return sum(s.closes_clip for s in self.segments)


def list_clip(clip: Clip) -> ClipSpan:
    """Where the clip's frames run (folder names scanned, video header read) and at what rate; failures as a status."""
    if clip.kind == "video":
        length, fps = video_info(clip.source)
        if length <= 0:
            return ClipSpan(clip, status="unreadable_video", reason=f"cannot read any frame from video {clip.source}")
        first, last, count = clip.first, clip.first + length - 1, length
        fps = fps if 1.0 <= fps <= MAX_FPS else nominal_fps(clip.dataset)
    else:
        try:
            first, last, count = frame_span(clip)
        except OSError as exc:
            return ClipSpan(clip, status="unreadable_folder",
                            reason=f"cannot list frame folder {clip.source}: {exc.strerror or exc}")
        fps = nominal_fps(clip.dataset)
        if count == 0:
            return ClipSpan(clip, status="no_frames", reason=f"no frame files in {clip.source}")
    return ClipSpan(clip, first, last, count, fps)


def _row(clip: Clip, **values) -> dict:
    row = {"dataset": clip.dataset, "subject": clip.subject, "clip": clip.clip, "source": clip.source,
           "status": STATUS_OK, "reason": "", "sample_id": "", "emotion": ""}
    row.update(values)
    return row


def _key(index: int, row: dict) -> str:
    parts = [row["sample_id"]] if row["sample_id"] else [row["subject"], row["clip"]]
    if row["status"] != STATUS_OK:
        parts.append(row["status"])
    elif not row["sample_id"]:
        parts += [row["t0"], row["t1"]]
    return sample_key(index, *parts)


def segment_rows(seg: Segment, opts: PairOptions) -> list[dict]:
    """The segment's rows, numbered and keyed: its pairs, its samples, or the clip's one failure row."""
    span = seg.span
    if seg.rows:
        rows = [dict(r) for r in seg.rows]
        for row in rows:  # a clip that cannot be read fails every sample that was fine until then
            if span.status != STATUS_OK and row["status"] == STATUS_OK:
                row.update(status=span.status, reason=span.reason)
    elif span.status != STATUS_OK:
        rows = [_row(span.clip, status=span.status, reason=span.reason)]
    else:
        pairs = pairs_in(span.first, span.last, span.clip.key, seg.lo, seg.hi, delta=opts.delta,
                         pairs_per_frame=opts.pairs_per_frame, stride=opts.stride, seed=opts.seed)
        rows = [_row(span.clip, t0=p.t0, t1=p.t1, delta=p.delta) for p in pairs]
    for i, row in enumerate(rows):
        row["index"] = seg.index + i
        row["key"] = _key(row["index"], row)
    return rows


def _cut(items: Iterable[tuple[ClipSpan, int, tuple[dict, ...]]], shard_size: int) -> Iterator[ShardSpec]:
    """Cut the row sequence of (span, row count, explicit rows) items into shards of `shard_size` rows, lazily."""
    shard, segments, index = 0, [], 0
    for span, count, rows in items:
        done = 0
        while done < count:
            take = min(count - done, shard_size - (index - shard * shard_size))
            part = rows[done: done + take] if rows else ()
            segments.append(Segment(span, index, done, done + take, part, closes_clip=done + take == count))
            index, done = index + take, done + take
            if index == (shard + 1) * shard_size:
                yield ShardSpec(shard, tuple(segments))
                shard, segments = shard + 1, []
    if segments:
        yield ShardSpec(shard, tuple(segments))


def layout_unlabeled(clips: Iterable[Clip], opts: PairOptions, shard_size: int) -> Iterator[ShardSpec]:
    """Shards of every pair of every clip (clips in key order); a clip that yields no pair is one failure row."""
    def items() -> Iterator[tuple[ClipSpan, int, tuple]]:
        for clip in sorted(clips, key=lambda c: c.key):
            span = list_clip(clip)
            if span.status == STATUS_OK:
                count = anchor_count(span.first, span.last, opts.delta, opts.stride) * opts.pairs_per_frame
                if count == 0:
                    span = ClipSpan(clip, span.first, span.last, span.count, span.fps, "clip_too_short",
                                    f"{span.count} frames ({span.first}..{span.last}) leave no room for "
                                    f"δ >= {opts.delta[0]}")
            yield span, count if span.status == STATUS_OK else 1, ()

    return _cut(items(), shard_size)


def layout_labeled(clips: Iterable[Clip], samples: Iterable[Sample], shard_size: int) -> Iterator[ShardSpec]:
    """Shards of one row per annotated sample (by clip key, onset, id): f0 = onset, f1 = apex; bad samples keep
    their status, samples whose clip is not on disk get `missing_clip`."""
    by_key = {c.key: c for c in clips}
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(f"{s.subject}/{s.clip}", []).append(s)

    def items() -> Iterator[tuple[ClipSpan, int, tuple[dict, ...]]]:
        for key in sorted(groups):
            clip = by_key.get(key)
            found = clip is not None
            clip = clip or Clip(groups[key][0].dataset, groups[key][0].subject, groups[key][0].clip, groups[key][0].source)
            span = list_clip(clip) if found else ClipSpan(clip)
            rows = tuple(_sample_row(clip, s, found) for s in sorted(
                groups[key], key=lambda s: (s.onset if s.onset is not None else -1, s.sample_id)))
            yield span, len(rows), rows

    return _cut(items(), shard_size)


def _sample_row(clip: Clip, s: Sample, found: bool) -> dict:
    labels = {"sample_id": s.sample_id, "emotion": s.emotion, "onset": s.onset, "apex": s.apex, "offset": s.offset,
              "apex_policy": s.apex_policy}
    if s.status != STATUS_OK:
        return _row(clip, status=s.status, reason=s.reason, **labels)
    if not found:
        return _row(clip, status="missing_clip", reason=f"no frames on disk for {clip.key}", **labels)
    return _row(clip, t0=s.onset, t1=s.apex, delta=s.apex - s.onset, **labels)


def resolve_excluded(spec: str, fold: str = "") -> tuple[str, ...]:
    """The qualified subjects to leave out: a comma list, a text file (one per line) or a split manifest parquet.

    For a manifest, the subjects of its rows whose `fold` equals `fold` (as text), or of all its rows when `fold` is
    empty — for a LOSO manifest that is every evaluation subject of the dataset it covers.
    """
    if not spec:
        return ()
    path = Path(spec)
    if path.suffix == ".parquet":
        if not path.is_file():
            raise MerDataError(f"--exclude-subjects {spec}: no such manifest")
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pylist()
        if table and not {"subject", "fold"} <= set(table[0]):
            raise MerDataError(f"--exclude-subjects {spec}: manifest has no subject/fold columns")
        subjects = {r["subject"] for r in table if not fold or str(r["fold"]) == fold}
        if fold and not subjects:
            raise MerDataError(f"--fold {fold}: no rows of {spec} have that fold")
    elif path.is_file():
        subjects = {line.strip() for line in path.read_text().splitlines() if line.strip()}
    else:
        subjects = {s.strip() for s in spec.split(",") if s.strip()}
    bad = sorted(s for s in subjects if "/" not in s)
    if bad:
        raise MerDataError(f"--exclude-subjects: {bad[0]!r} is not dataset-qualified (e.g. casme2/sub01)")
    return tuple(sorted(subjects))
