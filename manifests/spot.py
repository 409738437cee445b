"""Spotting manifests: every coded expression of the long videos (macro and micro) as an interval row, every long
video as a video row (frames, fps, subject, fold), LOSO by subject, in one parquet file (`kind`: interval | video).

Sheet fixes made for spotting only (each named in the row's `fixes`): CAS(ME)^2 macro rows with offset 0 (44) take
their apex as offset, as the public loaders do (`spot-offset0-apex`); SAMM-LV macro frame numbers written as floats
are rounded (`spot-float-frame`). An apex problem does not stop a row from being a spotting ground truth: it is kept
`ok` with the problem in `warnings`. CAS(ME)^3 Part A's public ME sheet codes micro-expressions only, so its manifest
has micro intervals only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import mer_data
from mer_data import MerDataError
from mer_data.classes import normalize_objective
from mer_data.datasets import ADAPTERS, casme3, casme_sq, samm_lv
from mer_data.datasets.locate import find_dirs
from mer_data.datasets.longvideo import is_micro
from mer_data.frames import frame_files
from mer_data.records import STATUS_OK, Clip, Sample
from mer_data.sheets import SheetRow
from manifests.io import METADATA_KEY

SPOT_DATASETS = ("casme_sq", "samm_lv", "casme3")
SCHEMA = pa.schema([
    ("kind", pa.string()),  # interval | video
    ("id", pa.string()),  # interval: <video>/<sheet row>; video: the video id
    ("dataset", pa.string()),  # registry name
    ("video", pa.string()),  # dataset-qualified video id: casme_sq/s15/15_0401, samm_lv/006/006_1, casme3/spNO.1/a
    ("subject", pa.string()),  # dataset-qualified subject: casme_sq/s15
    ("fold", pa.string()),  # LOSO: the held-out subject of the fold testing it; null unless ok
    ("onset", pa.int64()),  # interval: inclusive frames, the dataset's numbering
    ("apex", pa.int64()),
    ("offset", pa.int64()),
    ("type", pa.string()),  # interval: macro | micro
    ("emotion", pa.string()),  # interval: the raw emotion / class where the sheet has one
    ("objective_class", pa.string()),  # interval: I..VII where known
    ("au", pa.string()),  # interval: the AU cell as text
    ("status", pa.string()),  # ok, or the reason class (missing_frames, bad_frame_number, ...)
    ("reason", pa.string()),  # detail when status != ok
    ("warnings", pa.string()),  # interval: kept problems that do not matter for spotting (an apex)
    ("fixes", pa.string()),  # comma-joined fixes applied
    ("row", pa.int64()),  # interval: 1-based sheet row
    ("source", pa.string()),  # the video's frame folder or file ("" when not found)
    ("first_frame", pa.int64()),  # video: first and last frame number on disk
    ("last_frame", pa.int64()),
    ("frames", pa.int64()),  # video: frame files on disk
    ("fps", pa.float64()),  # video: capture rate, frames/s
])


@dataclass(frozen=True)
class SpotConfig:
    """What `mer-data splits DATASET --task spot` builds; written into the manifest's metadata."""

    dataset: str = "casme_sq"  # casme_sq | samm_lv | casme3
    root: Path | None = None  # the unpacked dataset; None = data/<dataset>
    annotations: Path | None = None  # the coding sheet; None = found under the root
    apply_fixes: bool = True  # apply tables/quirks.csv fixes

    def __post_init__(self) -> None:
        if self.dataset not in SPOT_DATASETS:
            raise MerDataError(f"--task spot: dataset {self.dataset!r} has no long videos "
                               f"(choose from {', '.join(SPOT_DATASETS)})")


@dataclass
class SpotManifest:
    """Interval rows and video rows of one dataset, before writing."""

    intervals: list[dict]
    videos: list[dict]
    config: SpotConfig

    def metadata(self) -> dict:
        cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self.config).items()}
        return {"task": "spot", "dataset": self.config.dataset, "protocol": "loso", "config": cfg,
                "toolkit_version": mer_data.__version__,
                "counts": {"intervals": dict(Counter(f"{r['type']} {r['status']}" for r in self.intervals)),
                           "videos": dict(Counter(r["status"] for r in self.videos))}}


def _fixed(row: SheetRow, columns: dict[str, str]) -> tuple[SheetRow, tuple[str, ...]]:
    """The row with the spotting-only fixes applied (see the module docstring)."""
    cells, fixes = dict(row.cells), []
    for field in ("onset", "apex", "offset"):
        value = cells.get(columns[field])
        if isinstance(value, float) and not value.is_integer():
            cells[columns[field]] = round(value)
            fixes.append("spot-float-frame")
    if cells.get(columns["offset"]) == 0 and isinstance(cells.get(columns["apex"]), int) and cells[columns["apex"]] > 0:
        cells[columns["offset"]] = cells[columns["apex"]]
        fixes.append("spot-offset0-apex")
    return SheetRow(row.row, cells), tuple(dict.fromkeys(fixes))


def _casme_sq(cfg: SpotConfig, root: Path) -> Iterator[tuple[Sample, str, str, tuple[str, ...]]]:
    sheet, subjects, videos = casme_sq._read(root, cfg.annotations)
    bases = find_dirs(root, casme_sq.FRAME_DIRS)
    for row in sheet.rows:
        fixed, fixes = _fixed(row, {f: f for f in ("onset", "apex", "offset")})
        sample = casme_sq._sample(fixed, subjects, videos, bases, cfg.apply_fixes)
        yield sample, _casme_sq_video(sample.subject, sample.clip), _type(row.cells["type"]), fixes


def _casme_sq_video(subject: str, folder: str) -> str:
    """casme_sq/s15 + 15_0401girlcrashing → casme_sq/s15/15_0401 (the folder's description dropped)."""
    hit = re.match(r"\d+_\d{4}", folder)
    return f"{subject}/{hit.group(0) if hit else folder}"


def _samm_lv(cfg: SpotConfig, root: Path) -> Iterator[tuple[Sample, str, str, tuple[str, ...]]]:
    sheet = samm_lv._read(root, cfg.annotations)
    labels = samm_lv.clip_labels(root)
    bases = find_dirs(root, samm_lv.FRAME_DIRS)
    for row in sheet.rows:
        fixed, fixes = _fixed(row, samm_lv.COLUMNS)
        sample = samm_lv._sample(fixed, labels, bases, cfg.apply_fixes)
        yield sample, f"{sample.subject}/{sample.clip}", _type(row.cells[samm_lv.COLUMNS["type"]]), fixes


def _casme3(cfg: SpotConfig, root: Path) -> Iterator[tuple[Sample, str, str, tuple[str, ...]]]:
    for sample in casme3.iter_samples(root, cfg.annotations, apply_fixes=cfg.apply_fixes):
        yield sample, f"{sample.subject}/{sample.clip}", "micro", ()


READERS = {"casme_sq": _casme_sq, "samm_lv": _samm_lv, "casme3": _casme3}


def _type(cell: object) -> str:
    return "micro" if is_micro(cell) else "macro"


def _interval_row(sample: Sample, video: str, kind: str, fixes: tuple[str, ...]) -> dict:
    status, reason, warnings = sample.status, sample.reason, ""
    if status == "bad_apex":  # the apex is not part of a spotting ground truth
        status, reason, warnings = STATUS_OK, "", sample.reason
    return {"kind": "interval", "id": f"{video}/{sample.row}", "dataset": sample.dataset, "video": video,
            "subject": sample.subject, "fold": None, "onset": sample.onset, "apex": sample.apex, "offset": sample.offset,
            "type": kind, "emotion": sample.emotion or None, "objective_class": normalize_objective(sample.objective)
            or None, "au": sample.au, "status": status, "reason": reason, "warnings": warnings,
            "fixes": ",".join((*sample.fixes, *fixes)), "row": sample.row, "source": sample.source}


def _video_row(dataset: str, video: str, clip: Clip | None, fps: float) -> dict:
    have = frame_files(clip) if clip is not None and clip.kind == "frames" else {}
    status, reason = STATUS_OK, ""
    if not have:
        status, reason = "missing_frames", f"no frames of {video} on disk" + (f" ({clip.source})" if clip else "")
    numbers = list(have)
    return {"kind": "video", "id": video, "dataset": dataset, "video": video, "subject": video.rsplit("/", 1)[0],
            "fold": None, "status": status, "reason": reason, "source": clip.source if clip else "",
            "first_frame": numbers[0] if numbers else None, "last_frame": numbers[-1] if numbers else None,
            "frames": len(numbers), "fps": fps}


def disk_video_id(dataset: str, clip: Clip) -> str:
    if dataset == "casme_sq":
        return _casme_sq_video(clip.subject, clip.clip)
    return f"{clip.subject}/{clip.clip}"


def build_spot_manifest(cfg: SpotConfig) -> SpotManifest:
    """Read the sheet (every row) and the videos on disk; an interval is ok only when its video is."""
    module = ADAPTERS[cfg.dataset]
    root = Path(cfg.root) if cfg.root is not None else Path("data") / cfg.dataset
    intervals = [_interval_row(*item) for item in READERS[cfg.dataset](cfg, root)]
    clips = {disk_video_id(cfg.dataset, c): c for c in module.iter_clips(root)}
    names = sorted(set(clips) | {r["video"] for r in intervals})
    videos = [_video_row(cfg.dataset, v, clips.get(v), float(module.FPS)) for v in names]
    ok_videos = {v["video"]: v for v in videos if v["status"] == STATUS_OK}
    for row in intervals:
        if row["status"] == STATUS_OK and row["video"] not in ok_videos:
            row["status"], row["reason"] = "missing_frames", f"video {row['video']} has no frames on disk"
    for row in intervals + videos:
        row["fold"] = row["subject"] if row["status"] == STATUS_OK else None
    if not ok_videos:
        raise MerDataError(f"no {cfg.dataset} long videos with frames under --root {root}")
    return SpotManifest(intervals, videos, cfg)


def default_spot_out(cfg: SpotConfig) -> Path:
    """manifests/<dataset>_spot.parquet under the cwd."""
    return Path("manifests") / f"{cfg.dataset}_spot.parquet"


def write_spot_manifest(manifest: SpotManifest, path: Path) -> Path:
    """Interval and video rows in one parquet (temp name, then rename), metadata as JSON in the footer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{c: r.get(c) for c in SCHEMA.names} for r in manifest.intervals + manifest.videos]
    sch = SCHEMA.with_metadata({METADATA_KEY: json.dumps(manifest.metadata(), sort_keys=True).encode()})
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=sch), tmp)
    os.replace(tmp, path)
    return path


def read_spot_manifest(path: Path) -> tuple[list[dict], list[dict], dict]:
    """(interval rows, video rows, metadata) of a spotting manifest; another file is a MerDataError naming it."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise MerDataError(f"cannot read spotting manifest {path}: {exc}") from None
    meta = json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
    if meta.get("task") != "spot":
        raise MerDataError(f"{path} is not a spotting manifest (write one with `mer-data splits DATASET --task spot`)")
    rows = table.to_pylist()
    return [r for r in rows if r["kind"] == "interval"], [r for r in rows if r["kind"] == "video"], meta


def summarize_spot(manifest: SpotManifest, path: Path) -> str:
    """Intervals by type and status, videos and subjects."""
    ok = [r for r in manifest.intervals if r["status"] == STATUS_OK]
    videos = [v for v in manifest.videos if v["status"] == STATUS_OK]
    by_type = Counter(r["type"] for r in ok)
    lines = [f"{manifest.config.dataset} spot loso: {len(ok)} intervals of {len(manifest.intervals)} rows "
             f"(macro {by_type['macro']}, micro {by_type['micro']}), {len(videos)} of {len(manifest.videos)} videos, "
             f"{len({v['subject'] for v in videos})} subjects/folds -> {path}"]
    bad = Counter(r["status"] for r in manifest.intervals + manifest.videos if r["status"] != STATUS_OK)
    for status, n in bad.most_common():
        first = next(r for r in manifest.intervals + manifest.videos if r["status"] == status)
        lines.append(f"  {status} {n}: e.g. {first['id']} ({first['reason']})")
    fixes = Counter(f for r in manifest.intervals for f in filter(None, r["fixes"].split(",")))
    if fixes:
        lines.append("  fixes: " + ", ".join(f"{k} x{n}" for k, n in sorted(fixes.items())))
    return "\n".join(lines)
