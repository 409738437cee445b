"""Benchmark: ingest frames/s on one worker against the bare decode → warp → encode loop, and Ray scaling.

    .venv/bin/python bench/bench_ingest.py [--dataset casme2] [--subjects 20] [--clips 15] [--scale 2] [--repeat 2]
        [--video] [--clip-frames 61] [--ray-workers 1,2]

Writes a synthetic tree to a temporary folder (or uses --root), then measures, interleaved and best of --repeat:
(a) the bare loop over exactly the frames the ingest encodes, each once (decode in OpenCV's channel order →
    cv2.warpAffine with a fixed matrix → JPEG 95; the same functions the ingest calls),
(b) `run_ingest` serial in-process (one worker, everything included: planning, detection, tar, parquet, stats),
    as frames/s (wall clock) and as CPU seconds per frame against the bare loop's (`timed_cpu`), as it runs (frames
    no face is detected on decode only the box their warps read) and with `--whole-frames` (the same bytes),
(c) `run_ingest` on Ray with each of --ray-workers (one Ray session with that many CPUs, started before timing; the
    ratios are against 1 worker). Not a test: prints numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mer_data.align import FaceDetector, eye_transform, locate_face, warp
from mer_data.datasets import ADAPTERS
from mer_data.facemodel import model_path
from mer_data.frames import ClipReader, FrameError, frame_files, frame_numbers, keep_freed_frames
from mer_data.synth import generate
from pipelines.ingest import IngestConfig, layout, run_ingest
from pipelines.plan import PairOptions, segment_rows
from pipelines.worker import encode_native


def reference_matrix(clips, model_path: str, size: int) -> np.ndarray:
    """One fixed alignment matrix for the bare loop: the one the ingest computes for the first clip with a face.

    The warp's cost depends on the matrix: a matrix that shrinks the frame into a corner of the output leaves most
    output pixels as border, which costs less to warp and to encode than a face crop filling the output (at 320×240,
    a 0.4 scale fills 128×96 of 224×224 and made the bare loop look ~40 % faster than the same work). Computed before
    any timing, so the bare loop pays no detection.
    """
    with FaceDetector(model_path) as detector:
        for clip in clips:
            with ClipReader(clip) as reader:
                face = locate_face(detector, (im for _, im in reader.frames([clip_first(clip)])
                                              if not isinstance(im, FrameError)))
            if face is not None:
                return eye_transform(face.right_eye, face.left_eye, size)
    raise SystemExit("no face found in any clip's first frame: cannot pick a representative matrix")


def clip_first(clip) -> int:
    return frame_numbers(clip)[0] if clip.kind == "frames" else clip.first


def bare_loop(cfg: IngestConfig, clips, matrix: np.ndarray) -> int:
    """Decode, warp (with one fixed `matrix`) and encode every frame the ingest's pairs need, once each; returns the
    frame count."""
    specs, _ = layout(cfg, clips, [])
    opts = PairOptions(cfg.delta, cfg.pairs_per_frame, cfg.stride, cfg.seed)
    needed: dict[str, set[int]] = {}
    for spec in specs:
        for seg in spec.segments:
            for row in segment_rows(seg, opts):
                if row["status"] == "ok":
                    needed.setdefault(f"{row['subject']}/{row['clip']}", set()).update((row["t0"], row["t1"]))
    by_key, count = {c.key: c for c in clips}, 0
    keep_freed_frames()  # the allocator setting the ingest's workers run with (without it a decode costs up to 2x)
    for key, numbers in needed.items():
        with ClipReader(by_key[key], native=True) as reader:  # the ingest's decoder, minus detection and tar/parquet
            for _, image in reader.frames(numbers):
                encode_native(warp(image, matrix, cfg.size), "jpg", cfg.quality)
                count += 1
    return count


def unit_costs(clips, model_path: str, matrix: np.ndarray, size: int, quality: int, n: int = 20) -> tuple[float, float]:
    """(seconds per face detection as the ingest runs it: `find_face`, two detector calls; seconds per warp + encode
    of a frame in cache), each the median over `n` calls on the first clip's first frame."""
    from mer_data.align import find_face
    from mer_data.frames import to_rgb

    clip = clips[0]
    with ClipReader(clip, native=True) as reader:
        image = next(im for _, im in reader.frames([clip_first(clip)]))
    with FaceDetector(model_path) as detector:  # each in a loop of its own: a detection evicts the frame from cache
        det = [timed(lambda: find_face(detector, image, to_rgb))[1] for _ in range(n)]
    enc = [timed(lambda: encode_native(warp(image, matrix, size), "jpg", quality))[1] for _ in range(n)]
    return float(np.median(det)), float(np.median(enc))


def ceiling(rounds: list[tuple[float, float, float]], summary: dict) -> str:
    """An estimate of the ratio to the bare loop that the ingest could reach if everything but its face detections and
    its extra encodes (a frame encoded under a second matrix) were free, decoding whole frames at full scale: about what
    that design allows on this machine (frames the ingest decodes in part or reduced make the real ratio exceed it). `rounds` holds, per round, (bare frames/s,
    s per detection, s per warp + encode), the unit costs timed right after that round's ingest (`unit_costs`): one
    estimate per round, because a bare rate and unit costs timed at different moments of a shared machine mix its fast
    and slow spells (once timed after all rounds, the estimate came out below ratios measured in the same run)."""
    frames, extras = summary["frames_encoded"], summary["encodes"] - summary["frames_encoded"]
    ratios = []
    for bare_rate, detect_s, encode_s in rounds:
        bare = frames / bare_rate
        ratios.append(bare / (bare + summary["detections"] * detect_s + extras * encode_s))
    detect_ms, encode_ms = (np.median([r[k] for r in rounds]) * 1e3 for k in (1, 2))
    return (f"ceiling of the design here (estimate per round): {' '.join(f'{r:.2f}' for r in ratios)} (median "
            f"{np.median(ratios):.2f}; {summary['detections']} detections × {detect_ms:.2f} ms, {extras} extra encodes "
            f"× {encode_ms:.2f} ms, medians over rounds, against {frames / np.median([r[0] for r in rounds]):.2f} s "
            f"of bare loop)")


def upscale_frames(root: Path, scale: float) -> tuple[int, int]:
    """Resize every frame image of a synthetic tree in place (the generator writes small frames; real releases are
    640×480 and larger, which changes the balance of per-frame against per-clip costs). Returns the new (H, W)."""
    shape = (0, 0)
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in (".jpg", ".bmp", ".png"):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(path), image)
            shape = image.shape[:2]
    return shape


def lengthen_clips(clips, frames: int) -> int:
    """Extend every frame-folder clip to `frames` frames by repeating its frames back and forth (ping-pong, numbered
    on from its last frame): real CASME II clips run 24–141 frames (mean 67, median 61, from the coding sheet) where
    the generator's run 20–30, and a clip's fixed costs (its detection, its setup) spread over its frames. The head
    stays as still as in the generated frames. Returns the frames added."""
    added = 0
    for clip in clips:
        files = frame_files(clip)
        numbers = sorted(files)
        cycle = numbers + numbers[-2:0:-1]  # there and back, no frame twice in a row
        pattern = re.compile(clip.pattern)
        template = Path(files[numbers[-1]]).name
        for k in range(len(numbers), frames):
            src = Path(files[cycle[k % len(cycle)]])
            n = numbers[-1] + 1 + k - len(numbers)
            name = template.replace(pattern.fullmatch(template).group(1), str(n), 1)
            shutil.copyfile(src, src.with_name(name))
            added += 1
    return added


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def timed_cpu(fn):
    """(value, wall seconds, CPU seconds of this process, all its threads): on a shared machine the CPU time of an
    in-process run is far less disturbed by other tenants than its wall time (time spent waiting for a core is not
    counted), so the benches print both ratios."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def cpu_ratio_line(rounds: list[tuple[float, float]]) -> str:
    """The CPU-time ratio (bare CPU s / ingest CPU s, same frames) of (bare, ingest) CPU seconds per round."""
    ratios = [bare / ingest for bare, ingest in rounds]
    return (f"CPU-time ratio (bare loop CPU s / ingest CPU s): best {max(ratios):.2f}, per round "
            f"{' '.join(f'{r:.2f}' for r in ratios)} (median {np.median(ratios):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="casme2")
    ap.add_argument("--root", type=Path, default=None, help="an existing dataset root (default: a synthetic tree)")
    ap.add_argument("--subjects", type=int, default=20)
    ap.add_argument("--clips", type=int, default=15, help="clips per subject (default: 300 clips, a few hundred)")
    ap.add_argument("--video", action="store_true")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--scale", type=float, default=2.0, help="resize the synthetic frames (2: 640×480 like CASME II)")
    ap.add_argument("--clip-frames", type=int, default=0,
                    help="lengthen every clip to this many frames (61: real CASME II's median; 0: as generated, 20-30)")
    ap.add_argument("--ray-workers", default="1,2", help="worker counts to time on Ray ('' to skip)")
    args = ap.parse_args()
    model = model_path()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        root = args.root or generate(args.dataset, work / args.dataset, subjects=args.subjects,
                                     clips_per_subject=args.clips, video=args.video)
        if args.scale != 1 and not args.root:
            print(f"frames upscaled to {upscale_frames(root, args.scale)} (H, W)")
        clips = list(ADAPTERS[args.dataset].iter_clips(root))
        if args.clip_frames:
            print(f"clips lengthened to {args.clip_frames} frames ({lengthen_clips(clips, args.clip_frames)} added)")
            clips = list(ADAPTERS[args.dataset].iter_clips(root))
        cfg = IngestConfig(dataset=args.dataset, root=str(root), out=str(work / "out"), workers=0, overwrite=True)
        whole = dataclasses.replace(cfg, decode_regions=False)
        matrix = reference_matrix(clips, str(model), cfg.size)
        best, rounds, cpu, costs = {"bare": 0.0, "serial": 0.0, "whole": 0.0}, [], [], []
        for _ in range(args.repeat):  # interleaved so all see the same machine load and page cache
            n_bare, t_bare, c_bare = timed_cpu(lambda: bare_loop(cfg, clips, matrix))
            summary, t_ing, c_ing = timed_cpu(lambda: run_ingest(cfg, clips))
            summary_whole, t_whole, c_whole = timed_cpu(lambda: run_ingest(whole, clips))
            best["bare"] = max(best["bare"], n_bare / t_bare)
            best["serial"] = max(best["serial"], summary["frames_encoded"] / t_ing)
            best["whole"] = max(best["whole"], summary["frames_encoded"] / t_whole)
            rounds.append((t_bare / n_bare * summary["frames_encoded"] / t_ing,
                           t_bare / n_bare * summary["frames_encoded"] / t_whole))
            cpu.append((c_bare / n_bare, c_ing / summary["frames_encoded"], c_whole / summary["frames_encoded"]))
            costs.append((n_bare / t_bare, *unit_costs(clips, str(model), matrix, cfg.size, cfg.quality)))
        print(f"{len(clips)} clips, {summary['written']} pairs, {summary['frames_encoded']} frames encoded "
              f"(bare loop: {n_bare}); bare-loop matrix {np.round(matrix, 3).tolist()}")
        print(f"bare decode→warp→encode: {best['bare']:8.1f} frames/s (best of {args.repeat})")
        for k, (name, label) in enumerate((("serial", "ingest, 1 worker serial:"), ("whole", "  … --whole-frames:"))):
            ratios = [r[k] for r in rounds]
            print(f"{label:<25}{best[name]:8.1f} frames/s   ratio of bests {best[name] / best['bare']:.2f}   "
                  f"per-round ratios {' '.join(f'{r:.2f}' for r in ratios)} (median {np.median(ratios):.2f})")
            print(f"{'':<25}{cpu_ratio_line([(c[0], c[1 + k]) for c in cpu])}")
        print(f"{summary['decoded_regions']} of {summary['decoded']} decodes only the box the warps read (the same "
              f"bytes as whole frames: tests/test_decode_scale.py)")
        print(ceiling(costs, summary_whole) + " (whole frames)")
        if args.ray_workers:
            ray_scaling(cfg, clips, args.repeat, [int(w) for w in args.ray_workers.split(",")])
    finally:
        shutil.rmtree(work, ignore_errors=True)


RAY_SHARD_SIZES = (100, 1000)  # rows per shard (= per Ray task) timed: small tasks, and the ingest's default


def cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat: the machine's load during a run, ours and others'."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def ray_scaling(cfg: IngestConfig, clips, repeat: int, counts: list[int]) -> None:
    """Ingest frames/s on Ray for each worker count and shard size, against 1 worker: best and spread of `repeat` runs.

    Each worker count gets a Ray session of exactly that many CPUs (in one session of max(counts) CPUs, the "1 worker"
    run ran two tasks at once: that is how the earlier bench measured 1.03x), and an untimed warm-up run first, so the
    worker processes, their imports and face detectors are up before timing. The machine is shared: each run also
    prints how busy all cores were (ours and other processes'), so a low ratio can be told from a busy machine.
    """
    import logging

    import ray

    cores = os.cpu_count() or 1
    for shard_size in RAY_SHARD_SIZES:
        base = None
        for workers in counts:
            run_cfg = dataclasses.replace(cfg, workers=workers, shard_size=shard_size)
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            try:
                run_ingest(run_cfg, clips)  # warm-up
                rates, loads = [], []
                for _ in range(repeat):
                    b0, t0 = cpu_busy()
                    summary, seconds = timed(lambda: run_ingest(run_cfg, clips))
                    b1, t1 = cpu_busy()
                    rates.append(summary["frames_encoded"] / seconds)
                    loads.append(cores * (b1 - b0) / max(t1 - t0, 1))
            finally:
                ray.shutdown()
            base = base or rates
            print(f"Ray, shard size {shard_size:>5} ({summary['shards']:>3} tasks), {workers:>2} worker(s): "
                  f"{max(rates):7.1f} frames/s best, runs {' '.join(f'{r:.0f}' for r in rates)} | "
                  f"{max(rates) / max(base):.2f}x {counts[0]} worker(s) (bests), per-run ratios "
                  f"{min(rates) / max(base):.2f}..{max(rates) / min(base):.2f} | cores busy "
                  f"{' '.join(f'{x:.1f}' for x in loads)} of {cores}", flush=True)


if __name__ == "__main__":
    main()
