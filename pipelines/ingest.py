"""The ingest pipeline: clips → planned pair rows → shard tasks (in-process or on Ray) → ingest.json and a summary.

This is the only module that imports `ray`. Resume: shards whose `_stats.json` exists are skipped, stray `.tmp` files
are removed, and an existing output directory written with a different config is refused unless `overwrite`.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

from tqdm import tqdm

from mer_data import MerDataError, __version__
from mer_data.facemodel import resolve_model, sha256_file
from mer_data.records import Clip, Sample
from mer_data.shards import finished_shards, write_json
from pipelines.plan import PairOptions, ShardPlan, cut_shards, plan_labeled, plan_unlabeled
from pipelines.worker import WorkerOptions, close_detectors, run_shard

RUN_ONLY = ("workers", "ray_address", "max_retries", "max_failure_rate", "overwrite", "face_model")  # no effect on bytes


@dataclass(frozen=True)
class IngestConfig:
    """Everything `mer-data ingest` does; the resolved form (less RUN_ONLY fields) is stored in ingest.json."""

    dataset: str = "casme2"  # adapter registry name
    root: str = ""  # dataset root folder ("" → data/<dataset>)
    out: str = "shards"  # output directory
    annotations: str = ""  # labeled mode: explicit coding sheet ("" → found inside root)
    labeled: bool = False  # one sample per annotated ME (onset, apex) instead of pairs from every frame
    delta: tuple[int, int] = (5, 11)  # inclusive δ range in frames
    pairs_per_frame: int = 1  # δ draws per anchor frame
    stride: int = 1  # anchor every stride-th frame
    seed: int = 0  # base of the per-clip δ seeds
    size: int = 224  # output side in pixels
    face_detector: str = "mediapipe"  # "mediapipe" (align on the eyes) or "none" (resize pre-cropped frames)
    face_model: str = ""  # .tflite path ("" → $MER_DATA_FACE_MODEL or the user cache)
    min_confidence: float = 0.5  # detection score accepted at once
    fallback_confidence: float = 0.3  # lower score accepted when no candidate frame reaches min_confidence
    image_format: str = "jpg"  # "jpg" or "png" (lossless)
    quality: int = 95  # JPEG quality
    shard_size: int = 1000  # rows (pairs, failures included) per shard
    exclude_subjects: tuple[str, ...] = ()  # qualified subjects kept out of the shards (leakage guard)
    workers: int = 1  # Ray workers; 0 = serial in-process without Ray
    ray_address: str = ""  # connect to an existing Ray cluster instead of starting a local one
    max_retries: int = 3  # Ray retries of a failed shard task
    max_failure_rate: float = 0.5  # the run fails when failed rows / rows exceed this
    overwrite: bool = False  # delete this directory's previous shards and start over

    def __post_init__(self) -> None:
        lo, hi = self.delta
        checks = [(1 <= lo <= hi, f"--delta {lo}:{hi}: need 1 <= LO <= HI"),
                  (self.pairs_per_frame >= 1, "--pairs-per-frame must be >= 1"), (self.stride >= 1, "--stride must be >= 1"),
                  (16 <= self.size <= 4096, f"--size {self.size}: expected 16..4096"),
                  (self.face_detector in ("mediapipe", "none"), f"--face-detector {self.face_detector}: mediapipe|none"),
                  (self.image_format in ("jpg", "png"), f"--format {self.image_format}: expected jpg or png"),
                  (1 <= self.quality <= 100, f"--quality {self.quality}: expected 1..100"),
                  (self.shard_size >= 1, "--shard-size must be >= 1"), (self.workers >= 0, "--workers must be >= 0"),
                  (0.0 <= self.max_failure_rate <= 1.0, "--max-failure-rate must be within 0..1")]
        for ok, message in checks:
            if not ok:
                raise MerDataError(message)

    def resolved(self, model_sha256: str) -> dict:
        """The fields that determine the output bytes, with the face model identified by its sha256."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in RUN_ONLY}
        out.update(delta=list(self.delta), exclude_subjects=list(self.exclude_subjects), face_model_sha256=model_sha256)
        return out


def load_inputs(cfg: IngestConfig) -> tuple[list[Clip], list[Sample]]:
    """Clips (and, labeled, samples) from the dataset adapter; MerDataError for an unknown dataset or missing root."""
    from mer_data.datasets import ADAPTERS

    if cfg.dataset not in ADAPTERS:
        raise MerDataError(f"unknown dataset {cfg.dataset!r}: expected one of {', '.join(sorted(ADAPTERS))}")
    root = Path(cfg.root or f"data/{cfg.dataset}")
    if not root.is_dir():
        raise MerDataError(f"--root {root}: no such directory")
    adapter = ADAPTERS[cfg.dataset]
    clips = list(adapter.iter_clips(root))
    samples = list(adapter.iter_samples(root, Path(cfg.annotations) if cfg.annotations else None)) if cfg.labeled else []
    return clips, samples


def plan(cfg: IngestConfig, clips: list[Clip], samples: list[Sample]) -> tuple[list[ShardPlan], int]:
    """Shard plans after the leakage guard; also returns how many clips it excluded."""
    excluded = set(cfg.exclude_subjects)
    kept = [c for c in clips if c.subject not in excluded]
    if cfg.labeled:
        rows, by_key, cand = plan_labeled(kept, [s for s in samples if s.subject not in excluded])
    else:
        opts = PairOptions(cfg.delta, cfg.pairs_per_frame, cfg.stride, cfg.seed)
        rows, by_key, cand = plan_unlabeled(kept, opts)
    return cut_shards(rows, by_key, cand, cfg.shard_size), len(clips) - len(kept)


def prepare_out(cfg: IngestConfig, resolved: dict) -> list[int]:
    """Create or check the output directory; returns the shards already finished (to skip)."""
    out = Path(cfg.out)
    meta = out / "ingest.json"
    if cfg.overwrite and out.is_dir():
        for pattern in ("[0-9]" * 6 + "*", "ingest.json", "*.tmp"):
            for p in out.glob(pattern):
                p.unlink()
    elif meta.is_file():
        previous = json.loads(meta.read_text()).get("config", {})
        changed = sorted(k for k in set(previous) | set(resolved) if previous.get(k) != resolved.get(k))
        if changed:
            raise MerDataError(f"{out} holds shards written with a different config ({', '.join(changed)}): "
                               "use another --out or --overwrite")
    elif out.is_dir() and any(out.glob("[0-9]" * 6 + "*")):
        raise MerDataError(f"{out} holds shards but no ingest.json: use another --out or --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    for stray in out.glob("*.tmp"):  # a killed run's partial files; their shards are redone
        stray.unlink()
    return finished_shards(out)


def _versions() -> dict:
    import cv2
    import mediapipe
    import numpy
    import pyarrow

    return {"mer_data": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "opencv": cv2.__version__, "mediapipe": mediapipe.__version__, "pyarrow": pyarrow.__version__}


def run_ingest(cfg: IngestConfig, clips: list[Clip] | None = None, samples: list[Sample] | None = None) -> dict:
    """Run the ingest described by `cfg` and return its summary (also stored in DIR/ingest.json).

    `clips`/`samples` default to the dataset adapter's; passing them lets callers ingest any list of clips.
    """
    t_start = time.perf_counter()
    model_path, model_sha = "", ""
    if cfg.face_detector == "mediapipe":
        model = resolve_model(cfg.face_model or None)
        model_path, model_sha = str(model.resolve()), sha256_file(model)
    if clips is None:
        clips, samples = load_inputs(cfg)
    resolved = cfg.resolved(model_sha)
    done = set(prepare_out(cfg, resolved))
    plans, n_excluded = plan(cfg, clips, samples or [])
    todo = [p for p in plans if p.index not in done]
    info = {"config": resolved, "status": "running", "face_model": {"path": model_path, "sha256": model_sha},
            "run": {k: getattr(cfg, k) for k in RUN_ONLY if k != "face_model"}, "versions": _versions(),
            "exclude_subjects": list(cfg.exclude_subjects), "excluded_clips": n_excluded}
    write_json(Path(cfg.out) / "ingest.json", info)
    opts = WorkerOptions(out=str(cfg.out), size=cfg.size, image_format=cfg.image_format, quality=cfg.quality,
                         face_detector=cfg.face_detector, face_model=model_path, min_confidence=cfg.min_confidence,
                         fallback_confidence=cfg.fallback_confidence)
    t_plan = time.perf_counter()
    bar = tqdm(total=sum(p.clips_finished for p in todo), unit="clip", desc=f"ingest {cfg.dataset}", leave=False)
    results = _run_serial(todo, opts, bar) if cfg.workers == 0 else _run_ray(todo, opts, cfg, bar)
    bar.close()
    t_end = time.perf_counter()
    summary = summarize(cfg, plans, results, t_end - t_plan)
    info.update(status="complete", totals=summary,
                timings={"plan_s": round(t_plan - t_start, 3), "run_s": round(t_end - t_plan, 3),
                         "total_s": round(t_end - t_start, 3), "frames_per_s": summary["frames_per_s"]})
    write_json(Path(cfg.out) / "ingest.json", info)
    return summary


def _progress(bar: tqdm, result: dict, frames: list[int], t0: float) -> None:
    frames[0] += result["frames_encoded"]
    bar.update(result["clips_finished"])
    bar.set_postfix(frames_s=f"{frames[0] / max(time.perf_counter() - t0, 1e-9):.0f}")


def _run_serial(todo: list[ShardPlan], opts: WorkerOptions, bar: tqdm) -> list[dict]:
    results, frames, t0 = [], [0], time.perf_counter()
    try:
        for shard in todo:
            results.append(run_shard(shard, opts))
            _progress(bar, results[-1], frames, t0)
    finally:
        close_detectors()  # mediapipe's own finalizer fails at interpreter exit, so close while threads still run
    return results


def _run_ray(todo: list[ShardPlan], opts: WorkerOptions, cfg: IngestConfig, bar: tqdm) -> list[dict]:
    """One Ray task per shard, retried up to cfg.max_retries times; results arrive in completion order.

    Joins a running Ray session (or `cfg.ray_address`) when there is one, else starts a local one with `workers` CPUs.
    """
    import ray

    started = not ray.is_initialized()
    if started:
        address = cfg.ray_address or None
        ray.init(address=address, num_cpus=None if address else max(cfg.workers, 1), include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)  # Ray's start-up chatter would break the tqdm bar
    try:
        task = ray.remote(num_cpus=1, max_retries=cfg.max_retries, retry_exceptions=True)(run_shard)
        queue, pending = list(reversed(todo)), []
        results, frames, t0 = [], [0], time.perf_counter()
        while queue or pending:
            while queue and len(pending) < max(cfg.workers, 1):  # at most --workers shards in flight, on any cluster
                pending.append(task.remote(queue.pop(), opts))
            ready, pending = ray.wait(pending, num_returns=1)
            results.append(ray.get(ready[0]))
            _progress(bar, results[-1], frames, t0)
        return results
    finally:
        if started:
            ray.shutdown()


def summarize(cfg: IngestConfig, plans: list[ShardPlan], results: list[dict], seconds: float) -> dict:
    """Totals over every shard of the plan (this run's and, on resume, the earlier ones' stats files)."""
    rows = written = frames = 0
    failures: Counter = Counter()
    for shard in plans:
        stats = json.loads((Path(cfg.out) / f"{shard.index:06d}_stats.json").read_text())
        rows, written, frames = rows + stats["rows"], written + stats["written"], frames + stats["frames_encoded"]
        failures.update(stats["failures_by_reason"])
    now = sum(r["frames_encoded"] for r in results)
    rate = sum(failures.values()) / rows if rows else 1.0
    ok = written > 0 and rate <= cfg.max_failure_rate
    message = ("ok" if ok else "nothing was written" if written == 0
               else f"failure rate {rate:.2f} exceeds --max-failure-rate {cfg.max_failure_rate}")
    return {"out": str(cfg.out), "shards": len(plans), "shards_run": len(results), "shards_skipped": len(plans) - len(results),
            "rows": rows, "written": written, "failures": sum(failures.values()),
            "failures_by_reason": dict(sorted(failures.items())), "failure_rate": round(rate, 4),
            "frames_encoded": frames, "frames_per_s": round(now / seconds, 1) if seconds > 0 and now else 0.0,
            "ok": ok, "message": message}


def format_summary(summary: dict) -> str:
    """A few lines a person can read after the progress bar."""
    lines = [f"{summary['written']} pairs in {summary['shards']} shards under {summary['out']} "
             f"({summary['shards_skipped']} already done), {summary['frames_encoded']} frames, "
             f"{summary['frames_per_s']} frames/s",
             f"failures: {summary['failures']} of {summary['rows']} rows ({summary['failure_rate']:.1%})"]
    lines += [f"  {reason}: {n}" for reason, n in summary["failures_by_reason"].items()]
    if not summary["ok"]:
        lines.append(f"FAILED: {summary['message']}")
    return "\n".join(lines)
