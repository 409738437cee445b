"""The ingest pipeline: clips → shard specs (listed lazily) → shard tasks (in-process or on Ray) → ingest.json.

This is the only module that imports `ray`. The driver lists clips one at a time while tasks run, keeps at most
`IN_FLIGHT × workers` tasks queued (backpressure), and folds each finished shard's stats into running totals, so its
memory does not grow with the number of pairs or shards. Resume: shards whose `_stats.json` exists are skipped, stray
`.tmp` files are removed, and an existing output directory written with a different config is refused unless
`overwrite`.
"""

from __future__ import annotations

import json
import logging
import platform
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from tqdm import tqdm

from mer_data import MerDataError, __version__
from mer_data.blazeface import RUNTIMES, resolve_runtime
from mer_data.facemodel import resolve_model, sha256_file
from mer_data.records import Clip, Sample
from mer_data.shards import (STAT_COUNTS, WORK_COUNTS, finished_shards, output_errors, shard_paths, shard_problem,
                             write_json)
from mer_data.track import TrackConfig
from pipelines.plan import PairOptions, ShardSpec, layout_labeled, layout_unlabeled
from pipelines.samples import STORED_VIEWS
from pipelines.worker import WorkerOptions, close_detectors, run_shard

RUN_ONLY = ("workers", "ray_address", "max_retries", "max_failure_rate", "overwrite", "face_model", "decode_regions")  # no effect on bytes
IN_FLIGHT = 2  # shard tasks queued per worker: keeps workers busy while the driver lists the next clips


@dataclass(frozen=True)
class IngestConfig:
    """Everything `mer-data ingest` does; the resolved form (less RUN_ONLY fields) is stored in ingest.json."""

    dataset: str = "casme2"  # adapter registry name
    root: str = ""  # dataset root folder ("" → data/<dataset>)
    out: str = "shards"  # output directory
    annotations: str = ""  # labeled mode: explicit coding sheet ("" → found inside root)
    labeled: bool = False  # one sample per annotated ME (onset..offset) instead of pairs from every frame
    frames: int = 0  # labeled: frames stored per sample, uniform over onset..offset, onset/apex/offset kept (0 = all)
    views: tuple[str, ...] = ()  # labeled: views computed once here and stored with each sample ("flow")
    delta: tuple[int, int] = (5, 11)  # inclusive δ range in frames
    pairs_per_frame: int = 1  # δ draws per anchor frame
    stride: int = 1  # anchor every stride-th frame
    seed: int = 0  # base of the per-clip δ seeds
    size: int = 224  # output side in pixels
    face_detector: str = "mediapipe"  # "mediapipe" (align on the eyes) or "none" (resize pre-cropped frames)
    face_model: str = ""  # .tflite path ("" → $MER_DATA_FACE_MODEL or the user cache)
    face_runtime: str = "auto"  # "auto" (LiteRT where installed, else MediaPipe Tasks), "litert" or "mediapipe"
    min_confidence: float = 0.5  # detection score accepted on its own
    fallback_confidence: float = 0.3  # lower score accepted next to a confident, consistent detection
    detect_hz: float = 3.0  # scheduled face detections per second of video (more where the face moves)
    smooth_s: float = 0.5  # radius of the eye-track smoothing window, seconds
    tolerance_px: float = 1.0  # frames share one matrix while their eyes stay this close to the template (224 px)
    decode_scale: str = "auto"  # "auto": JPEG frames decode at 1/2, 1/4, 1/8 where the face stays at output size; "full"
    decode_regions: bool = True  # JPEG frames decode only the box the warp reads where no face is detected on them
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
                  (self.face_runtime in RUNTIMES, f"--face-runtime {self.face_runtime}: expected {'|'.join(RUNTIMES)}"),
                  (self.decode_scale in ("auto", "full"), f"--decode-scale {self.decode_scale}: expected auto or full"),
                  (self.image_format in ("jpg", "png"), f"--format {self.image_format}: expected jpg or png"),
                  (1 <= self.quality <= 100, f"--quality {self.quality}: expected 1..100"),
                  (self.shard_size >= 1, "--shard-size must be >= 1"), (self.workers >= 0, "--workers must be >= 0"),
                  (0 < self.fallback_confidence <= self.min_confidence < 1,
                   f"--min-confidence {self.min_confidence}: expected {self.fallback_confidence}..1"),
                  (0.1 <= self.detect_hz <= 240, f"--detect-hz {self.detect_hz}: expected 0.1..240"),
                  (self.smooth_s > 0, "--smooth-s must be > 0"), (self.tolerance_px > 0, "--tolerance-px must be > 0"),
                  (0.0 <= self.max_failure_rate <= 1.0, "--max-failure-rate must be within 0..1"),
                  (self.frames == 0 or self.frames >= 3, f"--frames {self.frames}: 0 (all) or at least 3"),
                  (set(self.views) <= set(STORED_VIEWS), f"--views {','.join(self.views)}: expected {STORED_VIEWS}"),
                  (self.labeled or not (self.frames or self.views), "--frames and --views need --labeled")]
        for ok, message in checks:
            if not ok:
                raise MerDataError(message)

    def track(self) -> TrackConfig:
        """The face-tracking settings of this ingest."""
        return TrackConfig(size=self.size, detect_hz=self.detect_hz, min_confidence=self.min_confidence,
                           fallback_confidence=self.fallback_confidence, smooth_s=self.smooth_s,
                           tolerance_px=self.tolerance_px)

    def resolved(self, model_sha256: str, runtime: str = "") -> dict:
        """The fields that determine the output bytes, with the face model identified by its sha256 and the runtime
        that ran it ("litert" or "mediapipe": their detections differ by tenths of a pixel)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in RUN_ONLY}
        out.update(delta=list(self.delta), exclude_subjects=list(self.exclude_subjects), face_model_sha256=model_sha256,
                   views=list(self.views), face_runtime=runtime)
        if self.face_detector == "mediapipe":  # every tracking constant, defaults included, decides the bytes
            out["track"] = {f.name: getattr(self.track(), f.name) for f in fields(TrackConfig)}
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


def layout(cfg: IngestConfig, clips: list[Clip], samples: list[Sample]) -> tuple[Iterator[ShardSpec], int]:
    """The shard specs (a lazy iterator: clips are listed as it advances) and the number of clips to finish."""
    excluded = set(cfg.exclude_subjects)
    kept = [c for c in clips if c.subject not in excluded]
    if cfg.labeled:
        chosen = [s for s in samples if s.subject not in excluded]
        return layout_labeled(kept, chosen, cfg.shard_size), len({f"{s.subject}/{s.clip}" for s in chosen})
    opts = PairOptions(cfg.delta, cfg.pairs_per_frame, cfg.stride, cfg.seed)
    return layout_unlabeled(kept, opts, cfg.shard_size), len(kept)


def prepare_out(cfg: IngestConfig, resolved: dict) -> tuple[list[int], list[int]]:
    """Create or check the output directory; returns the shards already finished (to skip) and those found cut short
    or incomplete, whose files are removed so that this run writes them again."""
    out = Path(cfg.out)
    meta = out / "ingest.json"
    with output_errors(out):  # a read-only or vanished --out: one line naming it
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
        redo = [i for i in finished_shards(out) if shard_problem(out, i)]
        for index in redo:  # stats last: a crash while removing leaves the shard unfinished, not half-trusted
            for kind in ("tar", "parquet", "stats"):
                shard_paths(out, index)[kind].unlink(missing_ok=True)
    return finished_shards(out), redo


def _versions() -> dict:
    """The versions recorded in ingest.json. MediaPipe and LiteRT are read from their installed metadata, not imported:
    importing mediapipe (which pulls in matplotlib) cost 1.4 s of every ingest run here, and the LiteRT runtime the
    ingest uses does not need it."""
    import cv2
    import numpy
    import pyarrow

    return {"mer_data": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "opencv": cv2.__version__, "mediapipe": _installed("mediapipe"), "ai_edge_litert": _installed("ai-edge-litert"),
            "pyarrow": pyarrow.__version__}


def _installed(distribution: str) -> str:
    """The installed version of a distribution ('' where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return ""


class Tally:
    """Running totals over finished shards (run now or earlier), plus this run's timing: constant memory."""

    def __init__(self, out: Path, started: float):
        self.out, self.t0 = out, started  # started: when the ingest began (time to the first shard counts from it)
        self.shards = self.shards_run = self.rows = self.written = self.tar_bytes = 0
        self.nodes: set[str] = set()  # Ray nodes that ran a shard
        self.failures: Counter = Counter()
        self.counts: Counter = Counter()
        self.encoded_now, self.first_shard_s = 0, None
        self.redone: list[int] = []  # finished shards found cut short at the start, written again by this run

    def add(self, stats: dict, ran: bool) -> None:
        self.shards += 1
        self.rows, self.written = self.rows + stats["rows"], self.written + stats["written"]
        self.tar_bytes += stats.get("tar_bytes", 0)
        self.failures.update(stats["failures_by_reason"])
        self.counts.update({k: stats.get(k, 0) for k in STAT_COUNTS})
        if ran:
            self.counts.update(stats.get("work", {}))  # decodes and detections: this run's only (not in _stats.json)
            self.shards_run += 1
            self.nodes.update([stats["node"]] if stats.get("node") else [])
            self.encoded_now += stats["frames_encoded"]
            if self.first_shard_s is None:
                self.first_shard_s = round(time.perf_counter() - self.t0, 3)

    def add_finished(self, index: int) -> None:
        self.add(json.loads(shard_paths(self.out, index)["stats"].read_text()), ran=False)


def run_ingest(cfg: IngestConfig, clips: list[Clip] | None = None, samples: list[Sample] | None = None) -> dict:
    """Run the ingest described by `cfg` and return its summary (also stored in DIR/ingest.json).

    `clips`/`samples` default to the dataset adapter's; passing them lets callers ingest any list of clips.
    """
    t_start = time.perf_counter()
    model_path, model_sha, runtime = "", "", ""
    if cfg.face_detector == "mediapipe":
        model = resolve_model(cfg.face_model or None)
        model_path, model_sha, runtime = str(model.resolve()), sha256_file(model), resolve_runtime(cfg.face_runtime)
    if clips is None:
        clips, samples = load_inputs(cfg)
    resolved = cfg.resolved(model_sha, runtime)
    finished, redone = prepare_out(cfg, resolved)
    done = set(finished)
    specs, n_clips = layout(cfg, clips, samples or [])
    info = {"config": resolved, "status": "running", "face_model": {"path": model_path, "sha256": model_sha},
            "run": {k: getattr(cfg, k) for k in RUN_ONLY if k != "face_model"}, "versions": _versions(),
            "exclude_subjects": list(cfg.exclude_subjects), "redone_shards": redone,
            "excluded_clips": sum(c.subject in set(cfg.exclude_subjects) for c in clips)}
    write_json(Path(cfg.out) / "ingest.json", info)
    opts = WorkerOptions(out=str(cfg.out), pairs=PairOptions(cfg.delta, cfg.pairs_per_frame, cfg.stride, cfg.seed),
                         labeled=cfg.labeled, size=cfg.size, image_format=cfg.image_format, quality=cfg.quality,
                         face_detector=cfg.face_detector, face_model=model_path, face_runtime=runtime or "auto",
                         track=cfg.track(),
                         frames=cfg.frames, views=tuple(cfg.views), decode_scale=cfg.decode_scale,
                         decode_regions=cfg.decode_regions, run_id=uuid.uuid4().hex)
    t_plan = time.perf_counter()
    tally = Tally(Path(cfg.out), t_start)
    tally.redone = redone
    bar = tqdm(total=n_clips, unit="clip", desc=f"ingest {cfg.dataset}", leave=False)
    run = _run_serial if cfg.workers == 0 else _run_ray
    try:
        run(specs, done, opts, cfg, bar, tally)
    finally:  # an error's one line must not land on the bar's line
        bar.close()
    t_end = time.perf_counter()
    summary = summarize(cfg, tally, t_end - t_plan)
    info.update(status="complete", totals=summary,
                timings={"setup_s": round(t_plan - t_start, 3), "run_s": round(t_end - t_plan, 3),
                         "total_s": round(t_end - t_start, 3), "first_shard_s": tally.first_shard_s,
                         "frames_per_s": summary["frames_per_s"]})
    write_json(Path(cfg.out) / "ingest.json", info)
    return summary


def _progress(bar: tqdm, spec: ShardSpec, tally: Tally) -> None:
    bar.update(spec.clips_finished)
    bar.set_postfix(frames_s=f"{tally.encoded_now / max(time.perf_counter() - tally.t0, 1e-9):.0f}")


def _run_serial(specs: Iterator[ShardSpec], done: set[int], opts: WorkerOptions, cfg: IngestConfig, bar: tqdm,
                tally: Tally) -> None:
    try:
        for spec in specs:
            if spec.index in done:
                tally.add_finished(spec.index)
            else:
                tally.add(run_shard(spec, opts), ran=True)
            _progress(bar, spec, tally)
    finally:
        close_detectors()  # mediapipe's own finalizer fails at interpreter exit, so close while threads still run


def _run_ray(specs: Iterator[ShardSpec], done: set[int], opts: WorkerOptions, cfg: IngestConfig, bar: tqdm,
             tally: Tally) -> None:
    """One Ray task per shard, retried up to cfg.max_retries times, at most IN_FLIGHT × workers queued at a time
    (`workers` in a joined session);
    results arrive in completion order (the bytes do not depend on it).

    Joins this process's Ray session or `cfg.ray_address` when given, else starts a local one with `workers` CPUs
    ("local": never silently joins another program's Ray instance on this machine, e.g. a second ingest).
    """
    import ray

    started = not ray.is_initialized()
    if started:
        address = cfg.ray_address or None
        ray.init(address=address or "local", num_cpus=None if address else max(cfg.workers, 1), include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)  # Ray's start-up chatter would break the tqdm bar
    try:
        task = ray.remote(num_cpus=1, max_retries=cfg.max_retries, retry_exceptions=True)(_shard_on_node)
        pending: dict = {}  # task ref → its spec, only while in flight
        # In a session of our own (workers CPUs) Ray runs `workers` tasks at once and queues the rest; a joined one may
        # have more CPUs, and would run every queued task at once: there, in flight = running = `workers`.
        limit = (IN_FLIGHT if started else 1) * max(cfg.workers, 1)
        for spec in specs:
            if spec.index in done:
                tally.add_finished(spec.index)
                _progress(bar, spec, tally)
                continue
            pending[task.remote(spec, opts)] = spec
            while len(pending) >= limit:
                _collect(ray, pending, bar, tally, cfg)
        while pending:
            _collect(ray, pending, bar, tally, cfg)
    finally:
        if started:
            ray.shutdown()


def _shard_on_node(spec: ShardSpec, opts: WorkerOptions) -> dict:
    """`run_shard` as a Ray task: its result also names the node that ran it. The task holds one CPU, so OpenCV runs
    on one thread in it: its own pool spread each warp and colour conversion over every core (a lone Ray worker kept
    1.3 of 2 cores busy), so workers, one per core, got in each other's way."""
    import cv2
    import ray

    cv2.setNumThreads(1)

    return {**run_shard(spec, opts), "node": ray.get_runtime_context().get_node_id()}


def _collect(ray, pending: dict, bar: tqdm, tally: Tally, cfg: IngestConfig) -> None:
    """Wait for one task to finish and fold its stats in; a task that failed every retry is a one-line error."""
    ready, _ = ray.wait(list(pending), num_returns=1)
    spec = pending.pop(ready[0])
    try:
        tally.add(ray.get(ready[0]), ran=True)
    except ray.exceptions.RayError as exc:
        if isinstance(getattr(exc, "cause", None), MerDataError):  # a full disk or a vanished --out: retries won't help
            raise MerDataError(f"shard {spec.index:06d}: {exc.cause}") from None
        cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise MerDataError(f"shard {spec.index:06d} failed after {cfg.max_retries} retries: {cause}") from None
    _progress(bar, spec, tally)


def summarize(cfg: IngestConfig, tally: Tally, seconds: float) -> dict:
    """Totals over every shard (this run's and, on resume, the earlier ones'), with the tracking counts; decodes and
    detections (and detections per frame) count this run's shards only."""
    rows, written, failures, counts = tally.rows, tally.written, tally.failures, tally.counts
    rate = sum(failures.values()) / rows if rows else 1.0
    ok = written > 0 and rate <= cfg.max_failure_rate
    message = ("ok" if ok else "nothing was written" if written == 0
               else f"failure rate {rate:.2f} exceeds --max-failure-rate {cfg.max_failure_rate}")
    anchors = counts["anchors_tracked"] + counts["anchors_lost"]
    frames_read = counts["decoded"] - counts["decoded_full"]  # this run's decodes for the output, not a detection's
    return {"out": str(cfg.out), "shards": tally.shards, "shards_run": tally.shards_run,
            "shards_skipped": tally.shards - tally.shards_run, "shards_redone": len(tally.redone), "rows": rows, "written": written,
            "failures": sum(failures.values()), "failures_by_reason": dict(sorted(failures.items())),
            "failure_rate": round(rate, 4), **{k: counts[k] for k in STAT_COUNTS + WORK_COUNTS},
            "encodes_per_frame": round(counts["encodes"] / counts["frames_encoded"], 4) if counts["frames_encoded"] else 0.0,
            "detections_per_frame": round(counts["detections"] / frames_read, 4) if frames_read else 0.0,
            "tracked_fraction": round(counts["anchors_tracked"] / anchors, 4) if anchors else 0.0,
            "frames_per_s": round(tally.encoded_now / seconds, 1) if seconds > 0 and tally.encoded_now else 0.0,
            "first_shard_s": tally.first_shard_s, "ray_nodes": len(tally.nodes), "ok": ok, "message": message,
            "kib_per_row": round(tally.tar_bytes / 1024 / written, 1) if written else 0.0}


def format_summary(summary: dict) -> str:
    """A few lines a person can read after the progress bar."""
    lines = [f"{summary['written']} pairs in {summary['shards']} shards under {summary['out']} "
             f"({summary['shards_skipped']} already done, {summary['shards_redone']} redone: found cut short), "
             f"{summary['frames_encoded']} frames, "
             f"{summary['frames_per_s']} frames/s, {summary['kib_per_row']} KiB of tar per pair or sample",
             f"face track: {summary['anchors_tracked']} anchor frames tracked, {summary['anchors_lost']} lost; "
             f"{summary['detections_per_frame']} detections and {summary['encodes_per_frame']} encodes per frame; "
             f"{summary['decoded_regions']} of {summary['decoded']} decodes only the box the warps read",
             f"failures: {summary['failures']} of {summary['rows']} rows ({summary['failure_rate']:.1%})"]
    lines += [f"  {reason}: {n}" for reason, n in summary["failures_by_reason"].items()]
    if not summary["ok"]:
        lines.append(f"FAILED: {summary['message']}")
    return "\n".join(lines)
