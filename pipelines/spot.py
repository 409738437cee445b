"""The spotting pipeline: every long video of a dataset tracked and featured (serial, or one Ray task per video with
a bounded number in flight), spotted, and written as one prediction file.

Each task streams its video window by window (`mer_data.spot.features`), so a worker holds a matrix block of frames
and the video's per-frame feature rows, never the video. `pipelines/ingest.py` and this module are the ones that import
ray.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from mer_data import MerDataError
from mer_data.datasets import adapter
from mer_data.records import STATUS_OK, Clip
from mer_data.spot.features import FeatureConfig, VideoFeatures, video_features
from mer_data.spot.mdmd import MDMDConfig, MDMDExtractor, spot_mdmd
from pipelines.plan import list_clip

METHODS = ("mdmd",)
COLUMNS = ("video", "onset", "offset", "type", "score")


@dataclass(frozen=True)
class SpotConfig:
    """One `mer-data spot` run."""

    dataset: str  # registry name of a long-video dataset: casme_sq | samm_lv
    root: Path  # dataset root
    out: Path  # prediction file to write (.csv)
    method: str = "mdmd"  # spotter: mdmd
    mdmd: MDMDConfig = field(default_factory=MDMDConfig)  # MDMD settings (k, blocks, p, face size, flow)
    features: FeatureConfig = field(default_factory=FeatureConfig)  # tracking and alignment
    workers: int = 0  # Ray tasks in parallel; 0 = serial, in this process
    micro_s: float = 0.5  # an interval this long or shorter (seconds) is typed micro, longer macro (MEGC's rule)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise MerDataError(f"--method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.out.suffix != ".csv":
            raise MerDataError(f"--out {self.out}: write predictions as .csv")


def video_id(clip: Clip) -> str:
    """The video's name in prediction files: the clip key (`casme_sq/s15/15_0101claptrap`)."""
    return clip.key


def spot_video(clip: Clip, cfg: SpotConfig) -> tuple[list[dict], VideoFeatures | None, str]:
    """(prediction rows, features, '') for one video, or ([], None, why) when it cannot be read."""
    span = list_clip(clip)
    if span.status != STATUS_OK:
        return [], None, span.reason
    extractor = MDMDExtractor(cfg.mdmd, span.fps)
    feats = video_features(clip, span.first, span.last, span.fps, extractor,
                           FeatureConfig(cfg.mdmd.flow, cfg.features.face_detector, cfg.features.face_model,
                                         cfg.features.track))
    rows = [{"video": video_id(clip), "onset": a, "offset": b,
             "type": "micro" if (b - a + 1) <= cfg.micro_s * span.fps else "macro", "score": round(s, 6)}
            for a, b, s in spot_mdmd(feats, cfg.mdmd)]
    return rows, feats, ""


def _spot_serial(clips: list[Clip], cfg: SpotConfig):
    for clip in clips:
        yield clip, spot_video(clip, cfg)


def _spot_ray(clips: list[Clip], cfg: SpotConfig):
    """One task per video, at most 2 × workers in flight; results in video order."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=cfg.workers, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(_light_spot)
        pending, done, todo = {}, {}, list(enumerate(clips))
        while todo or pending:
            while todo and len(pending) < 2 * cfg.workers:
                i, clip = todo.pop(0)
                pending[task.remote(clip, cfg)] = i
            ready, _ = ray.wait(list(pending), num_returns=1)
            done[pending.pop(ready[0])] = ray.get(ready[0])
        for i, clip in enumerate(clips):
            yield clip, done[i]
    finally:
        if started:
            ray.shutdown()


def _light_spot(clip: Clip, cfg: SpotConfig):
    """spot_video without the features array (only the rows and counts travel back)."""
    rows, feats, reason = spot_video(clip, cfg)
    return rows, None if feats is None else VideoFeatures(feats.frames[:0], feats.values[:0], feats.valid,
                                                           feats.fps, feats.decoded), reason


def write_predictions(path: Path, rows: list[dict]) -> None:
    """Rows (COLUMNS) as CSV, temp name then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def run_spot(cfg: SpotConfig) -> dict:
    """Spot every video of the dataset and write the prediction file; returns a summary."""
    start = time.perf_counter()
    clips = list(adapter(cfg.dataset).iter_clips(cfg.root))
    if not clips:
        raise MerDataError(f"--root {cfg.root}: no {cfg.dataset} video folder found")
    rows, failed, frames, gaps = [], [], 0, 0
    for clip, (video_rows, feats, reason) in (_spot_ray if cfg.workers else _spot_serial)(clips, cfg):
        rows += video_rows
        if feats is None:
            failed.append(f"{video_id(clip)}: {reason}")
        else:
            frames += feats.decoded
            gaps += int((~feats.valid).sum())
    write_predictions(cfg.out, rows)
    return {"videos": len(clips), "failed": failed, "intervals": len(rows), "frames_decoded": frames,
            "gap_windows": gaps, "seconds": round(time.perf_counter() - start, 2), "out": str(cfg.out)}
