"""The spotting pipeline: every long video of a dataset tracked and featured (serial, or one Ray task per video with
a bounded number in flight), spotted (MDMD inside the task; SOFTNet on the driver, fold by fold, leave one subject
out, trained on the sheet's micro-expressions), and written as one prediction file.

Each task streams its video window by window (`mer_data.spot.features`), so a worker holds a matrix block of frames
and the video's per-frame feature rows, never the video. `pipelines/ingest.py` and this module are the ones that import
ray.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from mer_data import MerDataError
from mer_data.datasets import adapter
from mer_data.frames import keep_freed_frames
from mer_data.records import STATUS_OK, Clip
from mer_data.spot.features import FeatureConfig, VideoFeatures, video_features
from mer_data.spot.predictions import write_predictions
from mer_data.spot.mdmd import MDMDConfig, MDMDExtractor, spot_mdmd
from mer_data.spot.mubert_signal import MuBertExtractor, MuBertSignalConfig
from mer_data.spot.mubert_signal import spot as spot_mubert
from mer_data.spot.softnet import SoftNetConfig, SoftNetExtractor
from mer_data.spot.softnet import loso as softnet_loso
from pipelines.plan import list_clip

METHODS = ("mdmd", "softnet", "mubert")


@dataclass(frozen=True)
class SpotConfig:
    """One `mer-data spot` run."""

    dataset: str  # registry name of a long-video dataset: casme_sq | samm_lv
    root: Path  # dataset root
    out: Path  # prediction file to write (.csv or .parquet)
    method: str = "mdmd"  # spotter: mdmd (training-free) | softnet (learned, LOSO by subject)
    mdmd: MDMDConfig = field(default_factory=MDMDConfig)  # MDMD settings (k, blocks, p, face size, flow)
    softnet: SoftNetConfig = field(default_factory=SoftNetConfig)  # SOFTNet settings (k, p, epochs, flow)
    mubert: MuBertSignalConfig = field(default_factory=MuBertSignalConfig)  # μ-BERT checkpoint, k, p
    features: FeatureConfig = field(default_factory=FeatureConfig)  # tracking and alignment
    workers: int = 0  # Ray tasks in parallel; 0 = serial, in this process
    micro_s: float = 0.5  # an interval this long or shorter (seconds) is typed micro, longer macro (MEGC's rule)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise MerDataError(f"--method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.method == "mubert" and not self.mubert.checkpoint:
            raise MerDataError("--method mubert needs --checkpoint (a mer-train checkpoint with DMA)")
        if self.out.suffix not in (".csv", ".parquet"):
            raise MerDataError(f"--out {self.out}: write predictions as .csv or .parquet")


def video_id(clip: Clip) -> str:
    """The video's id in prediction files, as the spotting manifest names it (`casme_sq/s15/15_0101`)."""
    from manifests.spot import disk_video_id  # the manifest's own naming

    return disk_video_id(clip.dataset, clip)


def _extractor(cfg: SpotConfig, fps: float):
    if cfg.method == "mubert":
        return MuBertExtractor(cfg.mubert, fps)
    return MDMDExtractor(cfg.mdmd, fps) if cfg.method == "mdmd" else SoftNetExtractor(cfg.softnet, fps)


def featured_video(clip: Clip, cfg: SpotConfig) -> tuple[VideoFeatures | None, str]:
    """(the video's features for the method, '') or (None, why it cannot be read)."""
    span = list_clip(clip)
    if span.status != STATUS_OK:
        return None, span.reason
    keep_freed_frames()
    flow = cfg.mdmd.flow if cfg.method == "mdmd" else cfg.softnet.flow
    feature_cfg = FeatureConfig(flow, cfg.features.face_detector, cfg.features.face_model, cfg.features.track)
    return video_features(clip, span.first, span.last, span.fps, _extractor(cfg, span.fps), feature_cfg), ""


def _mdmd_task(clip: Clip, cfg: SpotConfig) -> tuple[list, VideoFeatures | None, str]:
    """A training-free spotter (MDMD or μ-BERT) on one video: its intervals, and its features without their rows (only the counts travel back)."""
    feats, reason = featured_video(clip, cfg)
    if feats is None:
        return [], None, reason
    found = spot_mdmd(feats, cfg.mdmd) if cfg.method == "mdmd" else spot_mubert(feats, cfg.mubert)
    return found, VideoFeatures(feats.frames, feats.values[:, :0], feats.valid, feats.fps, feats.decoded), ""


def _softnet_task(clip: Clip, cfg: SpotConfig) -> tuple[list, VideoFeatures | None, str]:
    """SOFTNet's inputs of one video (spotted later, fold by fold, on the driver)."""
    feats, reason = featured_video(clip, cfg)
    return [], feats, reason


def _serial(task, clips: list[Clip], cfg: SpotConfig):
    for clip in clips:
        yield clip, task(clip, cfg)


def _on_one_core(task, clip: Clip, cfg: SpotConfig):
    """`task` as a Ray task holding one CPU: OpenCV on one thread, as in the ingest's tasks (its own pool would spread
    each warp over every core, and workers, one per core, would get in each other's way)."""
    import cv2

    cv2.setNumThreads(1)
    return task(clip, cfg)


def _ray(task, clips: list[Clip], cfg: SpotConfig):
    """One Ray task per video, at most 2 × workers in flight; results in video order."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=cfg.workers, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(_on_one_core)
        pending, done, todo = {}, {}, list(enumerate(clips))
        while todo or pending:
            while todo and len(pending) < 2 * cfg.workers:
                i, clip = todo.pop(0)
                pending[remote.remote(task, clip, cfg)] = i
            ready, _ = ray.wait(list(pending), num_returns=1)
            done[pending.pop(ready[0])] = ray.get(ready[0])
        for i, clip in enumerate(clips):
            yield clip, done.pop(i)
    finally:
        if started:
            ray.shutdown()


def micro_labels(cfg: SpotConfig) -> dict[str, list[tuple[int, int]]]:
    """The dataset's usable micro-expression intervals by video id (SOFTNet's training targets)."""
    from mer_data.datasets import clip_for

    labels: dict[str, list[tuple[int, int]]] = {}
    for s in adapter(cfg.dataset).iter_samples(cfg.root):
        if s.status == STATUS_OK and s.onset is not None and s.offset is not None:
            labels.setdefault(video_id(clip_for(s)), []).append((s.onset, s.offset))
    return labels


def _row(video: str, interval, fps: float, micro_s: float) -> dict:
    a, b, score = interval
    return {"video": video, "onset": a, "offset": b, "type": "micro" if b - a + 1 <= micro_s * fps else "macro",
            "score": round(score, 6), "emotion": None}


def run_spot(cfg: SpotConfig) -> dict:
    """Spot every video of the dataset and write the prediction file; returns a summary."""
    start = time.perf_counter()
    clips = list(adapter(cfg.dataset).iter_clips(cfg.root))
    if not clips:
        raise MerDataError(f"--root {cfg.root}: no {cfg.dataset} video folder found")
    task = _softnet_task if cfg.method == "softnet" else _mdmd_task
    found, failed, videos = {}, [], {}
    for clip, (intervals, feats, reason) in (_ray if cfg.workers else _serial)(task, clips, cfg):
        if feats is None:
            failed.append(f"{video_id(clip)}: {reason}")
            continue
        videos[video_id(clip)] = (clip.subject, feats)
        found[video_id(clip)] = intervals
    if cfg.method == "softnet":
        found = softnet_loso(videos, micro_labels(cfg), cfg.softnet)
    rows = [_row(v, i, videos[v][1].fps, cfg.micro_s) for v in videos for i in found[v]]
    write_predictions(rows, cfg.out)
    return {"videos": len(clips), "failed": failed, "intervals": len(rows),
            "frames_decoded": sum(f.decoded for _, f in videos.values()),
            "gap_windows": sum(int((~f.valid).sum()) for _, f in videos.values()),
            "seconds": round(time.perf_counter() - start, 2), "out": str(cfg.out)}
