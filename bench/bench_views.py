"""Benchmark: labeled ingest with each stored view against without, and the cost of one sample's flow by side.

    .venv/bin/python bench/bench_views.py [--subjects 3] [--clips 4] [--size 224] [--repeat 2] [--frames 0]

Writes a synthetic CASME II tree to a temporary folder, then, interleaved and best of --repeat:
(a) `run_ingest --labeled` serially without a stored view, and with `--views flow` (TV-L1 onset→apex stored per
    sample): seconds and tar bytes per sample, and their ratio;
(b) the `flow` view (u, v, strain, magnitude) of every sample computed from the stored frames at 28 and at 224 px
    (`compute=28` / `compute=224`), and read from the stored flow: milliseconds per sample, side by side.
Not a test: prints numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

from mer_data.facemodel import model_path
from mer_data.loader import read_stored
from mer_data.synth import generate
from mer_data.views import make_view
from pipelines.ingest import IngestConfig, run_ingest


def ingest_once(root: Path, out: Path, args, views: tuple[str, ...]) -> tuple[float, float]:
    """(seconds, tar bytes per written sample) of one serial labeled ingest into a fresh `out`."""
    shutil.rmtree(out, ignore_errors=True)
    cfg = IngestConfig(dataset="casme2", root=str(root), out=str(out), labeled=True, workers=0, size=args.size,
                       frames=args.frames, views=views, face_model=str(model_path()))
    start = time.perf_counter()
    summary = run_ingest(cfg)
    seconds = time.perf_counter() - start
    tar_bytes = sum(json.loads(p.read_text())["tar_bytes"] for p in out.glob("*_stats.json"))
    return seconds, tar_bytes / max(summary["written"], 1)


def flow_ms(samples: list, **options) -> float:
    """Milliseconds per sample of the flow view with `options` over `samples`."""
    view = make_view("flow", **options)
    start = time.perf_counter()
    for sample in samples:
        view(sample)
    return 1000 * (time.perf_counter() - start) / len(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--frames", type=int, default=0, help="--frames of the ingest (0 = every frame)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = generate("casme2", Path(tmp) / "casme2", subjects=args.subjects, clips_per_subject=args.clips, seed=0)
        runs: dict[str, list[tuple[float, float]]] = {"none": [], "flow": []}
        for _ in range(args.repeat):  # interleaved: both see the same machine load
            for name, views in (("none", ()), ("flow", ("flow",))):
                runs[name].append(ingest_once(root, Path(tmp) / name, args, views))
        (t0, b0), (t1, b1) = min(runs["none"]), min(runs["flow"])
        n = len(read_stored(Path(tmp) / "flow"))
        print(f"labeled ingest of {n} samples at {args.size} px, --frames {args.frames}, best of {args.repeat}:")
        print(f"  no stored view : {t0:7.2f} s  {b0 / 1024:8.1f} KiB/sample")
        print(f"  --views flow   : {t1:7.2f} s  {b1 / 1024:8.1f} KiB/sample   "
              f"time ×{t1 / t0:.2f}, bytes ×{b1 / b0:.2f}")
        stored = list(read_stored(Path(tmp) / "flow").values())
        bare = [dataclasses.replace(s, flow=None) for s in stored]
        cost = {k: [] for k in ("28", "224", "stored")}
        for _ in range(args.repeat):
            cost["28"].append(flow_ms(bare, compute=28, size=28))
            cost["224"].append(flow_ms(bare, compute=224, size=224))
            cost["stored"].append(flow_ms(stored, size=28))
        c28, c224, cs = (min(cost[k]) for k in ("28", "224", "stored"))
        print(f"flow view per sample (u, v, strain, magnitude), best of {args.repeat}:")
        print(f"  TV-L1 at 28 px : {c28:8.1f} ms")
        print(f"  TV-L1 at 224 px: {c224:8.1f} ms   ×{c224 / c28:.1f} the 28 px cost")
        print(f"  stored (→28 px): {cs:8.1f} ms   ×{cs / c224:.3f} the 224 px cost")


if __name__ == "__main__":
    main()
