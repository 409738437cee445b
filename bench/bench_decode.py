"""Benchmark: DCT-scaled JPEG decoding in the ingest against the full-decode bare loop on large frames, its quality,
and threaded video decoding.

    .venv/bin/python bench/bench_decode.py [--sizes 2040x1088,1280x720] [--face 2.5] [--subjects 4] [--clips 4]
        [--repeat 3]

For each frame size: a synthetic CASME II tree whose frames are enlarged so the face's eye distance is `--face` times
the output's (0.30·224 px), then centre-cropped or mirror-padded to the size (SAMM's 2040×1088, CAS(ME)^3's 1280×720).
Side by side, interleaved, best of --repeat with every round's ratio printed:
(a) the bare loop of bench_ingest.py (full decode → warp → encode, each needed frame once),
(b) the ingest with `decode_scale="full"`, (c) the ingest with `decode_scale="auto"` (1 worker, everything included),
each also with `decode_regions=False` (whole frames decoded: the same bytes, the time without region decoding),
then the PSNR of (c)'s aligned crops against (b)'s (same rows, f0 and f1) and the decode scale (c) chose per clip, and the
decoder alone per frame at 1/1, 1/2, 1/4, 1/8. Last, an mp4 (mp4v) of 1280×720 frames read with 1 FFmpeg thread
against VIDEO_THREADS. Not a test: prints numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench_ingest import bare_loop, reference_matrix, timed
from mer_data.datasets import ADAPTERS
from mer_data.facemodel import model_path
from mer_data.frames import VIDEO_THREADS, frame_files, open_video, read_image
from mer_data.shards import tar_samples
from mer_data.synth import generate
from pipelines.ingest import IngestConfig, run_ingest

def reframe(root: Path, scale: float, height: int, width: int) -> None:
    """Enlarge every frame of the tree by `scale`, then centre-crop or mirror-pad it to height × width (in place)."""
    for path in sorted(root.rglob("*.jpg")):
        image = cv2.resize(cv2.imread(str(path)), None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        h, w = image.shape[:2]
        top, left = max(0, (h - height) // 2), max(0, (w - width) // 2)
        image = image[top: top + height, left: left + width]
        h, w = image.shape[:2]
        pad_y, pad_x = height - h, width - w
        image = cv2.copyMakeBorder(image, pad_y // 2, pad_y - pad_y // 2, pad_x // 2, pad_x - pad_x // 2,
                                   cv2.BORDER_REFLECT_101)
        cv2.imwrite(str(path), image)


def crops(out: Path) -> dict[str, tuple[dict, list[np.ndarray]]]:
    """key → (json, [f0, f1] decoded) of every written sample."""
    return {key: (json.loads(m["json"]), [cv2.imdecode(np.frombuffer(m[f"{f}.jpg"], np.uint8), cv2.IMREAD_COLOR)
                                          for f in ("f0", "f1")])
            for path in sorted(out.glob("*.tar")) for key, m in tar_samples(path).items()}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def quality(full: Path, auto: Path) -> str:
    a, b = crops(full), crops(auto)
    shared = sorted(set(a) & set(b))
    values = np.array([psnr(x, y) for k in shared for x, y in zip(a[k][1], b[k][1])])
    scales = sorted({b[k][0]["decode_scale"] for k in shared})
    moved = [np.abs(np.asarray(a[k][0]["crop"]) - np.asarray(b[k][0]["crop"]))[:, 2].max() for k in shared]
    return (f"PSNR auto vs full over {len(values)} crops: p5 {np.percentile(values, 5):.1f}, p50 "
            f"{np.percentile(values, 50):.1f}, min {values.min():.1f} dB; decode scales chosen {scales}; crop shift "
            f"p50 {np.percentile(moved, 50):.2f}, max {max(moved):.2f} px (0: faces are detected at full scale either way)")


def decoder_ms(root: Path, clips) -> str:
    paths = list(frame_files(clips[0]).values())[:40]
    parts = []
    for d in (1, 2, 4, 8):
        start = time.perf_counter()
        for path in paths:
            read_image(path, native=True, reduction=d)
        parts.append(f"1/{d} {1e3 * (time.perf_counter() - start) / len(paths):.2f} ms")
    return "decoder alone per frame: " + ", ".join(parts)


def one_size(args, model: str, work: Path, height: int, width: int) -> None:
    root = generate("casme2", work / f"casme2_{width}", subjects=args.subjects, clips_per_subject=args.clips)
    clips = list(ADAPTERS["casme2"].iter_clips(root))
    found = reference_matrix(clips, model, 224)  # its scale: the output's eye distance / the generator's
    reframe(root, args.face * float(np.hypot(*found[0, :2])), height, width)
    base = IngestConfig(dataset="casme2", root=str(root), out="", workers=0, overwrite=True)
    full = dataclasses.replace(base, out=str(work / f"full_{width}"), decode_scale="full")
    auto = dataclasses.replace(base, out=str(work / f"auto_{width}"), decode_scale="auto")
    runs = {"full": full, "auto": auto,  # and both decoding whole frames (the same bytes as with regions)
            "full, whole frames": dataclasses.replace(full, out=str(work / f"fullw_{width}"), decode_regions=False),
            "auto, whole frames": dataclasses.replace(auto, out=str(work / f"autow_{width}"), decode_regions=False)}
    matrix = reference_matrix(clips, model, base.size)
    best, rounds = {"bare": 0.0, **{k: 0.0 for k in runs}}, []
    for _ in range(args.repeat):  # interleaved: all see the same machine load and page cache
        n, t_bare = timed(lambda: bare_loop(full, clips, matrix))
        rates = {"bare": n / t_bare}
        for name, cfg in runs.items():
            summary, seconds = timed(lambda: run_ingest(cfg, clips))
            rates[name] = summary["frames_encoded"] / seconds
        best = {k: max(best[k], v) for k, v in rates.items()}
        rounds.append([rates[k] / rates["bare"] for k in runs])
    print(f"\n{width}×{height}, face eye distance {args.face}× the output's: {len(clips)} clips, "
          f"{summary['frames_encoded']} frames encoded")
    print(f"bare loop (full decode) {best['bare']:7.1f} frames/s; ingest " +
          "; ".join(f"{k} {best[k]:7.1f} ({best[k] / best['bare']:.2f}×)" for k in runs))
    print(f"per round, against bare ({', '.join(runs)}): " + "  ".join(" ".join(f"{r:.2f}" for r in rs) for rs in rounds))
    print(quality(Path(full.out), Path(auto.out)))
    print(decoder_ms(root, clips))
    if width == 1280:
        video_threads(work, clips)


def video_threads(work: Path, clips) -> None:
    """mp4v at the clips' frame size: frames/s read with 1 thread and with VIDEO_THREADS, interleaved, best of 3."""
    path = work / "threads.mp4"
    first = read_image(next(iter(frame_files(clips[0]).values())), native=True)
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v"), 30.0,
                             (first.shape[1], first.shape[0]), True)
    for clip in clips[:4]:
        for file in frame_files(clip).values():
            writer.write(read_image(file, native=True))
    writer.release()
    best: dict[int, float] = {}
    for _ in range(3):
        for threads in (1, VIDEO_THREADS):
            cap, count, start = open_video(str(path), threads), 0, time.perf_counter()
            while cap.read()[0]:
                count += 1
            cap.release()
            best[threads] = max(best.get(threads, 0.0), count / (time.perf_counter() - start))
    print(f"mp4v {first.shape[1]}×{first.shape[0]}, {count} frames: 1 thread {best[1]:.1f} frames/s, "
          f"{VIDEO_THREADS} threads {best[VIDEO_THREADS]:.1f} ({best[VIDEO_THREADS] / best[1]:.2f}×)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2040x1088,1280x720", help="frame sizes WxH")
    ap.add_argument("--face", type=float, default=2.5, help="the face's eye distance / the output's (0.30·224 px)")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    model = str(model_path())
    work = Path(tempfile.mkdtemp(prefix="bench-decode-"))
    try:
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            one_size(args, model, work, height, width)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
