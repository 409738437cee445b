"""Ingest planning: the global row sequence from the sorted clip (or sample) list, cut into shards of fixed size.

Everything here runs in the driver before any worker starts and depends only on the files on disk and the config, so
shard contents do not depend on the number of workers or on scheduling order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mer_data import MerDataError
from mer_data.frames import frame_numbers
from mer_data.pairs import plan_pairs, sample_key
from mer_data.records import STATUS_OK, Clip, Sample

DETECT_TRIES = 4  # detection candidates per clip: the first frame, then frames at 1/4, 1/2 and 3/4 of the clip


@dataclass(frozen=True)
class PairOptions:
    """The pair-sampling part of the ingest config."""

    delta: tuple[int, int] = (5, 11)  # inclusive range of δ in frames
    pairs_per_frame: int = 1  # δ draws per anchor frame
    stride: int = 1  # anchor every stride-th frame
    seed: int = 0  # base seed; each clip draws from sha256(seed, clip key)


@dataclass
class ShardPlan:
    """One shard's work: its rows (ROW_SCHEMA dicts, in order) and the clips they refer to."""

    index: int
    rows: list[dict]
    clips: dict[str, Clip] = field(default_factory=dict)  # clip key → Clip
    candidates: dict[str, list[int]] = field(default_factory=dict)  # clip key → frames to try face detection on
    clips_finished: int = 0  # clips whose last row is in this shard (for the progress bar)


def _row(clip: Clip, **values) -> dict:
    row = {"dataset": clip.dataset, "subject": clip.subject, "clip": clip.clip, "source": clip.source,
           "status": STATUS_OK, "reason": "", "sample_id": "", "emotion": ""}
    row.update(values)
    return row


def detection_candidates(numbers: list[int]) -> list[int]:
    """The frame numbers to try face detection on, in order: the first frame, then a few spread over the clip."""
    picks = [numbers[len(numbers) * k // DETECT_TRIES] for k in range(DETECT_TRIES)] if numbers else []
    return list(dict.fromkeys(picks))


def _clip_failure(clip: Clip, numbers: list[int], lo: int) -> dict:
    if not numbers and clip.kind == "video":
        return _row(clip, status="unreadable_video", reason=f"cannot read any frame from video {clip.source}")
    if not numbers:
        return _row(clip, status="no_frames", reason=f"no frame files in {clip.source}")
    return _row(clip, status="clip_too_short",
                reason=f"{len(numbers)} frames ({numbers[0]}..{numbers[-1]}) leave no room for δ >= {lo}")


def plan_unlabeled(clips: Iterable[Clip], opts: PairOptions) -> tuple[list[dict], dict[str, Clip], dict]:
    """Rows for every pair of every clip (sorted by clip key), a clip-level failure row where a clip yields none.

    Returns (rows, clips by key, detection candidates by key).
    """
    rows, by_key, candidates = [], {}, {}
    for clip in sorted(clips, key=lambda c: c.key):
        numbers = frame_numbers(clip)
        by_key[clip.key], candidates[clip.key] = clip, detection_candidates(numbers)
        pairs = plan_pairs(numbers, clip.key, delta=opts.delta, pairs_per_frame=opts.pairs_per_frame,
                           stride=opts.stride, seed=opts.seed)
        if not pairs:
            rows.append(_clip_failure(clip, numbers, opts.delta[0]))
        rows += [_row(clip, t0=p.t0, t1=p.t1, delta=p.delta) for p in pairs]
    return rows, by_key, candidates


def plan_labeled(clips: Iterable[Clip], samples: Iterable[Sample]) -> tuple[list[dict], dict[str, Clip], dict]:
    """One row per annotated sample (sorted by clip key, onset, id): f0 = onset, f1 = apex; bad samples keep their status."""
    by_key = {c.key: c for c in clips}
    rows, used, candidates = [], {}, {}
    order = sorted(samples, key=lambda s: (f"{s.subject}/{s.clip}", s.onset if s.onset is not None else -1,
                                           s.sample_id))
    for s in order:
        clip = by_key.get(f"{s.subject}/{s.clip}") or Clip(s.dataset, s.subject, s.clip, s.source)
        labels = {"sample_id": s.sample_id, "emotion": s.emotion, "onset": s.onset, "apex": s.apex, "offset": s.offset}
        if s.status != STATUS_OK:
            rows.append(_row(clip, status=s.status, reason=s.reason, **labels))
            continue
        if clip.key not in by_key:
            rows.append(_row(clip, status="missing_clip", reason=f"no frames on disk for {clip.key}", **labels))
            continue
        if clip.key not in used:
            used[clip.key], candidates[clip.key] = clip, detection_candidates(frame_numbers(clip))
        rows.append(_row(clip, t0=s.onset, t1=s.apex, delta=s.apex - s.onset, **labels))
    return rows, used, candidates


def _key(index: int, row: dict) -> str:
    parts = [row["sample_id"]] if row["sample_id"] else [row["subject"], row["clip"]]
    if row["status"] != STATUS_OK:
        parts.append(row["status"])
    elif not row["sample_id"]:
        parts += [row["t0"], row["t1"]]
    return sample_key(index, *parts)


def cut_shards(rows: list[dict], clips: dict[str, Clip], candidates: dict, shard_size: int) -> list[ShardPlan]:
    """Number the rows, give each its key, and cut the sequence into shards of `shard_size` rows."""
    last_row_of = {}
    for i, row in enumerate(rows):
        row["index"], row["shard"] = i, i // shard_size
        row["key"] = _key(i, row)
        last_row_of[f"{row['subject']}/{row['clip']}"] = i
    plans = []
    for start in range(0, len(rows), shard_size):
        chunk = rows[start:start + shard_size]
        keys = {f"{r['subject']}/{r['clip']}" for r in chunk}
        plans.append(ShardPlan(index=start // shard_size, rows=chunk,
                               clips={k: clips[k] for k in sorted(keys) if k in clips},
                               candidates={k: candidates[k] for k in sorted(keys) if k in candidates},
                               clips_finished=sum(start <= last_row_of[k] < start + shard_size for k in keys)))
    return plans


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
