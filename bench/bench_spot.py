"""Spotting speed: frames per second of MDMD spotting (track, align, flow, MDMD) against decoding the same frames alone.

    PYTHONPATH=. python bench/bench_spot.py [--subjects 3] [--flow tvl1|farneback|both]

Writes a synthetic CAS(ME)^2 to a temporary folder and measures, side by side in one run, each stage on its videos.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mer_data.datasets import adapter
from mer_data.frame_window import FrameWindow
from mer_data.spot.features import FeatureConfig, video_features
from mer_data.spot.mdmd import MDMDConfig, MDMDExtractor, spot_mdmd
from mer_data.synth import SynthConfig, synthesize
from pipelines.plan import list_clip


def decode_only(spans) -> tuple[int, float]:
    start, n = time.perf_counter(), 0
    for span in spans:
        with FrameWindow(span.clip) as frames:
            for t in range(span.first, span.last + 1):
                frames.get(t)
                frames.release(t)
                n += 1
    return n, time.perf_counter() - start


def spot_all(spans, flow: str) -> tuple[int, float]:
    start, n = time.perf_counter(), 0
    cfg = MDMDConfig(flow=flow)
    for span in spans:
        feats = video_features(span.clip, span.first, span.last, span.fps, MDMDExtractor(cfg, span.fps),
                               FeatureConfig(flow=flow))
        spot_mdmd(feats, cfg)
        n += span.last - span.first + 1
    return n, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--flow", default="both", choices=("tvl1", "farneback", "both"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "casme_sq"
        synthesize(SynthConfig("casme_sq", root, subjects=args.subjects, clips_per_subject=4))
        spans = [list_clip(c) for c in adapter("casme_sq").iter_clips(root)]
        n, base = decode_only(spans)
        print(f"decode only         {n} frames  {n / base:8.1f} frames/s  1.00x the time")
        for flow in (("tvl1", "farneback") if args.flow == "both" else (args.flow,)):
            m, sec = spot_all(spans, flow)
            print(f"mdmd spot ({flow:9s}) {m} frames  {m / sec:8.1f} frames/s  {sec / base:5.2f}x the time")


if __name__ == "__main__":
    main()
