"""The prepared GPU check: bf16 samples/s and MFU of the base preset, the loader's wait at 8 and 16 workers, and a
torchrun (NCCL) run with exact resume — on a lent GPU machine in under 8 minutes; on CPU the same steps, tiny size.

    python bench/bench_gpu.py --json gpu.json        # GPU: base preset, bf16, 8/16 loader workers, one rank per GPU
    python bench/bench_gpu.py --smoke                # CPU: tiny preset, 1/2 workers, 2 gloo ranks (its own smoke test)

Steps, each timed and printed, all results also in --json:
1. data      a synthetic CASME II tree ingested (`--face-detector none`, at the model's input size) into shards;
2. step      one μ-BERT (mb3) training step on a fixed batch, as `bench/bench_mubert.py` times it: median step time,
             samples/s, model FLOPs per step (torch.utils.flop_counter) and MFU against the GPU's dense bf16 peak;
3. loader    `mubert.train.train` on those shards for each worker count: samples/s and the fraction of the time the
             step waited for a batch (`data_wait_frac` of metrics.jsonl), leaving out the first log interval (start);
4. resume    `torchrun --nproc_per_node N` (one rank per GPU, NCCL; gloo on CPU) runs S steps straight, then S/2 with
             `--stop-at` and the rest with `--resume` (a launch each); the two metrics.jsonl must agree (bit for bit on
             CPU; on GPU the largest loss difference is printed, kernels being nondeterministic). With one GPU the
             run is a single rank and NCCL is not exercised: the output says so.
The shards sit in the page cache, so the loader figure is decoding, not disk. Not a test: prints numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # run from a checkout; bench_mubert is a sibling script

import torch  # noqa: E402

TIMING = ("samples_per_s", "data_wait_frac")  # metrics.jsonl keys that depend on the clock, not on the run


@dataclass(frozen=True)
class Plan:
    """The sizes of one check: the GPU run, or the CPU smoke run."""

    preset: str  # mer-train preset
    batch: int  # pairs per rank and step
    subjects: int  # synthetic CASME II subjects (× `clips` clips) ingested as the loader's data
    clips: int
    step_steps: int  # timed steps of the step measurement (median), after `step_warmup`
    step_warmup: int
    loader_workers: tuple[int, ...]  # DataLoader workers measured
    loader_steps: int  # training steps per loader measurement, logged every loader_steps // 4
    resume_steps: int  # steps of the straight run; the resumed one stops at half
    ranks: int  # torchrun processes


def gpu_plan() -> Plan:
    return Plan("base", 64, 8, 8, 20, 5, (8, 16), 80, 20, max(torch.cuda.device_count(), 1))


def smoke_plan() -> Plan:
    return Plan("tiny", 4, 2, 2, 2, 1, (1, 2), 8, 4, 2)


def make_shards(work: Path, plan: Plan, image_size: int) -> tuple[Path, dict]:
    """Synthetic CASME II → shards at the model's input size (frames resized whole: the loader's cost is the same)."""
    from mer_data.synth import generate
    from pipelines.ingest import IngestConfig, run_ingest

    root = generate("casme2", work / "casme2", subjects=plan.subjects, clips_per_subject=plan.clips)
    out = work / "shards"
    summary = run_ingest(IngestConfig(dataset="casme2", root=str(root), out=str(out), workers=0, face_detector="none",
                                      size=image_size, shard_size=64))
    return out, {"pairs": summary["written"], "shards": summary["shards"]}


def step_rate(plan: Plan, device: torch.device, peak: float | None) -> dict:
    """One mb3 training step on a fixed batch: median time, samples/s, FLOPs and MFU (bf16 autocast on CUDA)."""
    from bench_mubert import Variant

    v = Variant("mubert", plan.preset, plan.batch, device, device.type == "cuda", 0)
    for _ in range(plan.step_warmup):
        v.step()
    flops = v.flops()
    step_s = statistics.median(v.timed_step() for _ in range(plan.step_steps))
    return {"step_s": step_s, "samples_s": plan.batch / step_s, "gflops_step": flops / 1e9,
            "tflops_s": flops / step_s / 1e12, "mfu": flops / step_s / (peak * 1e12) if peak else None}


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def loader_rate(shards: Path, work: Path, plan: Plan, workers: int) -> dict:
    """Train `loader_steps` steps with `workers` DataLoader workers; samples/s and wait fraction after the first log."""
    from mubert.train import TrainConfig, train

    log_every = max(plan.loader_steps // 4, 1)
    cfg = TrainConfig(shards=str(shards), out=str(work / f"loader-{workers}"), preset=plan.preset,
                      steps=plan.loader_steps, batch_size=plan.batch, workers=workers, log_every=log_every,
                      save_every=10 ** 9)
    train(cfg)
    lines = metrics(Path(cfg.out))[1:]
    return {"workers": workers, "samples_s": statistics.mean(m["samples_per_s"] for m in lines),
            "data_wait_frac": statistics.mean(m["data_wait_frac"] for m in lines)}


def resume_worker(shards: str, work: str, preset: str, batch: int, steps: int, part: str) -> None:
    """Under torchrun: `straight` (S steps into work/straight), `stop` (S/2 into work/resumed) or `resume` (the rest).

    One launch per part: a process group re-created in the same torchrun worker hangs."""
    from dataclasses import replace

    from mubert.train import TrainConfig, train

    cfg = TrainConfig(shards=shards, out=f"{work}/straight", preset=preset, steps=steps, batch_size=batch, workers=2,
                      log_every=1, save_every=10 ** 9, shuffle_buffer=64)
    parts = {"straight": cfg, "stop": replace(cfg, out=f"{work}/resumed", stop_at=steps // 2),
             "resume": replace(cfg, out=f"{work}/resumed", resume=True)}
    train(parts[part])


def resume_check(shards: Path, work: Path, plan: Plan) -> dict:
    """Launch `resume_worker` under torchrun per part and compare the straight and the resumed metrics.jsonl."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for part in ("straight", "stop", "resume"):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(plan.ranks),
               __file__, "--resume-worker", str(shards), str(work), plan.preset, str(plan.batch),
               str(plan.resume_steps), part]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"torchrun ({part}) failed:\n{proc.stderr[-3000:]}")
    straight, resumed = metrics(work / "straight"), metrics(work / "resumed")
    clean = [[{k: v for k, v in m.items() if k not in TIMING} for m in run] for run in (straight, resumed)]
    diff = max(abs(a["loss"] - b["loss"]) for a, b in zip(*clean)) if len(clean[0]) == len(clean[1]) else None
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    return {"ranks": plan.ranks, "backend": backend if plan.ranks > 1 else "none (one rank)",
            "steps": [m["step"] for m in resumed], "exact": clean[0] == clean[1], "max_loss_diff": diff}


def timed(label: str, fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    print(f"[{time.perf_counter() - start:6.1f} s] {label}: {value}", flush=True)
    return value


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="the CPU smoke run (tiny preset), whatever the device")
    ap.add_argument("--work", type=Path, default=None, help="folder for data and runs (default: a temporary one)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="accelerator peak for MFU (default: by GPU name)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--resume-worker", nargs=6, default=None, help=argparse.SUPPRESS)  # torchrun's entry (step 4)
    args = ap.parse_args(argv)
    if args.resume_worker:
        shards, work, preset, batch, steps, part = args.resume_worker
        resume_worker(shards, work, preset, int(batch), int(steps), part)
        return {}
    from bench_mubert import peak_tflops
    from mubert.config import preset_config

    cuda = torch.cuda.is_available() and not args.smoke
    plan = gpu_plan() if cuda else smoke_plan()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(1)  # a small shared CPU: spinning thread pools make tiny steps slower
    peak = peak_tflops(str(device), args.peak_tflops)
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(f"device {name}, preset {plan.preset}, batch {plan.batch}, bf16 {cuda}, peak {peak} TFLOP/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        work = args.work or Path(tmp)
        shards, data = timed("data", make_shards, work, plan, preset_config(plan.preset).image_size)
        out = {"device": name, "plan": plan.__dict__ | {"loader_workers": list(plan.loader_workers)}, "data": data,
               "step": timed("step", step_rate, plan, device, peak),
               "loader": [timed(f"loader {w} workers", loader_rate, shards, work, plan, w)
                          for w in plan.loader_workers],
               "resume": timed("torchrun resume", resume_check, shards, work / "resume", plan)}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
