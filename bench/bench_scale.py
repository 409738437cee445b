"""Benchmark: the ingest driver at scale — peak memory per pair and per clip, time to the first shard, frames/s.

    .venv/bin/python bench/bench_scale.py [--frames 100000,1000000] [--clip-frames 1000] [--workers 2] [--size 64]

Builds CAS(ME)^3-layout trees (`part_A/data/part_A/spNO.<k>/<letter>/color/<n>.jpg`) whose frames are hard links of one
tiny JPEG, so a million frames cost a million directory entries and no pixels, then runs each ingest with
`--face-detector none` in a fresh process that reports its own peak RSS (the driver; Ray's workers are other processes).
Three trees separate the two ways a corpus grows:
  small  = N0 frames in clips of --clip-frames,
  long   = N1 frames in as many clips as small (10× longer clips: more pairs, same clips),
  many   = N1 frames in clips of --clip-frames (more pairs and more clips).
Memory per pair = (long − small) / Δpairs, per clip = (many − long) / Δclips, both from peak RSS, and the driver at 8M
pairs is extrapolated from them. Time to the first finished shard should not depend on the corpus size. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

DRIVER = """
import json, resource, sys
from pipelines.ingest import IngestConfig, run_ingest
root, out, workers, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
s = run_ingest(IngestConfig(dataset="casme3", root=root, out=out, face_detector="none", size=size, workers=workers,
                            shard_size=1000))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kib": base, "peak_kib": peak, "rows": s["rows"], "written": s["written"],
                  "shards": s["shards"], "first_shard_s": s["first_shard_s"], "frames_per_s": s["frames_per_s"],
                  "ok": s["ok"]}))
"""
TARGET_PAIRS = 8_000_000  # μ-BERT's pretraining corpus: about 8M frames of CAS(ME)^3


LINKS_PER_FILE = 60_000  # below ext4's 65000 hard links per inode


def build_tree(root: Path, clips: int, frames: int, source: Path) -> None:
    """`clips` videos of `frames` hard-linked frames each, 10 videos (letters a..j) per subject; a fresh copy of the
    source file every LINKS_PER_FILE links."""
    base = root / "part_A" / "data" / "part_A"
    target, links = source, 0
    for c in range(clips):
        folder = base / f"spNO.{c // 10 + 1}" / chr(ord("a") + c % 10) / "color"
        folder.mkdir(parents=True)
        for n in range(frames):
            if links == LINKS_PER_FILE:
                target, links = folder / f"{n}.jpg", 0
                shutil.copyfile(source, target)
            else:
                os.link(target, folder / f"{n}.jpg")
            links += 1


def run(root: Path, out: Path, workers: int, size: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(root), str(out), str(workers), str(size)],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"ingest of {root} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", default="100000,1000000", help="N0,N1: frames of the small and the two large trees")
    ap.add_argument("--clip-frames", type=int, default=1000, help="frames per clip of the small and 'many' trees")
    ap.add_argument("--workers", type=int, default=2, help="Ray workers (0: serial, the driver does the work)")
    ap.add_argument("--size", type=int, default=64, help="output side (small: the bench measures the driver)")
    ap.add_argument("--tmp", default=None, help="folder for the trees (default: system temp)")
    args = ap.parse_args()
    n0, n1 = (int(x) for x in args.frames.split(","))
    small_clips = max(1, n0 // args.clip_frames)
    trees = {"small": (small_clips, args.clip_frames), "long": (small_clips, n1 // small_clips),
             "many": (n1 // args.clip_frames, args.clip_frames)}
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="mer-bench-scale-") as tmp:
        tmp = Path(tmp)
        source = tmp / "frame.jpg"
        cv2.imwrite(str(source), np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
        results = {}
        for name, (clips, frames) in trees.items():
            build_tree(tmp / name, clips, frames, source)
            r = run(tmp / name, tmp / f"{name}-shards", args.workers, args.size)
            r.update(clips=clips, frames=clips * frames, mib=(r["peak_kib"] - r["base_kib"]) / 1024)
            results[name] = r
            print(f"{name:>5}: {clips:>6} clips × {frames:>6} frames = {r['frames']:>8} frames, {r['rows']:>8} rows, "
                  f"{r['shards']:>5} shards | driver peak +{r['mib']:7.1f} MiB over its imports | first shard "
                  f"{r['first_shard_s']:6.2f} s | {r['frames_per_s']:8.1f} frames/s | ok {r['ok']}", flush=True)
            shutil.rmtree(tmp / name)
            shutil.rmtree(tmp / f"{name}-shards")
    s, lg, many = results["small"], results["long"], results["many"]
    per_pair = (lg["mib"] - s["mib"]) * 2**20 / max(lg["rows"] - s["rows"], 1)
    per_clip = (many["mib"] - lg["mib"]) * 2**20 / max(many["clips"] - lg["clips"], 1)
    at_target = s["mib"] + (per_pair * (TARGET_PAIRS - s["rows"]) + per_clip * (1000 - s["clips"])) / 2**20
    print(f"\ndriver memory: {per_pair:.1f} bytes per pair, {per_clip:.0f} bytes per clip; "
          f"extrapolated at {TARGET_PAIRS:,} pairs in 1000 clips: {at_target:.0f} MiB (target <= 1024)")
    print(f"time to the first shard: long/small {lg['first_shard_s'] / s['first_shard_s']:.2f}, "
          f"many/small {many['first_shard_s'] / s['first_shard_s']:.2f} (target: about 1, whatever the corpus size)")
    print(f"frames/s: long/small {lg['frames_per_s'] / s['frames_per_s']:.2f}, "
          f"many/small {many['frames_per_s'] / s['frames_per_s']:.2f}")


if __name__ == "__main__":
    main()
