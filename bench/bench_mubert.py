"""Benchmark one μ-BERT training step against a plain ViT autoencoder of the same size, side by side.

The variants share the encoder/decoder sizes of the chosen size preset and run on the same random (I_t, I_{t+δ}) batch,
so that only the objective differs:
- plain    ViT autoencoder: encode I_t, decode, MSE to I_t (no swapping, DMA or POI).
- matched  the same token work as μ-BERT without DMA and POI: one encoder call over I_{t/s}, I_{t+δ} and a crop
           (3 views), decode the first, MSE plus a CT-agreement MSE. μ-BERT minus this is the cost of DMA + POI proper.
- mb2      μ-BERT without POI (Table 6 MB2): swapping, 2 encoder views, DMA, decoder; no Crop(I_{t+δ}) view.
- mubert   the full model (mb3, `MuBERT(cfg)(f0, f1)["loss"]`): swapping, 3 encoder views, DMA, POI, decoder.
- lowcrop  mubert with Crop(I_{t+δ}) encoded at --crop-size px (a DINO-style local crop) instead of full size.
mubert / mb2 is what the Crop(I_{t+δ}) view (and the agreement loss) costs; lowcrop / mb2 what it costs at low resolution.
All are built in one process and their timed steps interleaved, so machine load affects them alike. A step is
forward + backward + AdamW step. Reported: median step time, samples/s, the step's peak working memory (bytes allocated
during a step above those held before it: activations and gradients; CUDA allocator peak, or on CPU the profiler's
allocation events replayed in order), model FLOPs per step (torch.utils.flop_counter) and, on CUDA, MFU.

    python bench/bench_mubert.py --preset tiny --batch-size 8
    python bench/bench_mubert.py --preset base --batch-size 2 --steps 5 --crop-size 96
    python bench/bench_mubert.py --preset base --batch-size 64 --device cuda   # bf16 autocast on CUDA
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from mubert.config import SIZES, MuBERTConfig, preset_config  # noqa: E402
from mubert.model import MuBERT  # noqa: E402
from mubert.swap import random_resized_crop  # noqa: E402

VARIANTS = ("plain", "matched", "mb2", "mubert", "lowcrop")
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}  # dense, per GPU


def step_loss(variant: str, model: MuBERT, f0: torch.Tensor, f1: torch.Tensor) -> torch.Tensor:
    """The loss of one step of `variant` (see the module docstring)."""
    if variant in ("mb2", "mubert", "lowcrop"):
        return model(f0, f1)["loss"]
    if variant == "plain":
        tokens, _ = model.forward_encoder(f0)
        return model.forward_loss(f0, model.forward_decoder(tokens))
    cfg = model.cfg
    x_ts, _ = model.swap_blocks(f0, f1)
    crop = random_resized_crop(f1, cfg.crop_scale, cfg.crop_ratio)
    tokens, _ = model.forward_encoder(torch.cat([x_ts, f1, crop]))
    p_ts, p_f1, p_crop = tokens.split(f0.shape[0])
    loss_r = model.forward_loss(f0, model.forward_decoder(p_ts))
    return loss_r + F.mse_loss(p_f1[:, 0].float(), p_crop[:, 0].float())


def variant_config(name: str, size: str, crop_size: int) -> MuBERTConfig:
    """plain and matched run on the model without DMA/POI parameters (mb1); the others are the named objectives."""
    objective = {"plain": "mb1", "matched": "mb1", "mb2": "mb2", "mubert": "mb3", "lowcrop": "mb3"}[name]
    return preset_config(f"{objective}-{size}", **({"crop_size": crop_size} if name == "lowcrop" else {}))


class Variant:
    """One variant's model, optimizer and training step on a fixed batch."""

    def __init__(self, name: str, size: str, batch: int, device: torch.device, bf16: bool, crop_size: int):
        torch.manual_seed(0)
        cfg = variant_config(name, size, crop_size)
        self.name, self.device, self.bf16 = name, device, bf16
        self.model = MuBERT(cfg).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.f0 = torch.rand(batch, cfg.in_chans, cfg.image_size, cfg.image_size, device=device)
        self.f1 = (self.f0 + 0.05 * torch.randn_like(self.f0)).clamp(0, 1)

    def step(self) -> None:
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            loss = step_loss(self.name, self.model, self.f0, self.f1)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.model.ema_update()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed_step(self) -> float:
        self.sync()
        start = time.perf_counter()
        self.step()
        self.sync()
        return time.perf_counter() - start

    def flops(self) -> int:
        """Model FLOPs of one step (matmuls, convolutions and attention, forward and backward)."""
        with FlopCounterMode(display=False) as counter:
            self.step()
        return counter.get_total_flops()

    def step_memory(self) -> int:
        """Peak bytes allocated during one step above what was allocated before it (activations, gradients)."""
        if self.device.type == "cuda":
            self.sync()
            before = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.step()
            self.sync()
            return torch.cuda.max_memory_allocated(self.device) - before
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            self.step()
        # Allocations are attributed to the op that made them, frees to "[memory]" events: replay them in order.
        events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
        live = peak = 0
        for e in events:
            live += e.self_cpu_memory_usage
            peak = max(peak, live)
        return peak


def measure(size: str, batch: int, steps: int, warmup: int, device: torch.device, bf16: bool, crop_size: int) -> dict:
    """Build all variants, then measure them side by side; timing steps are interleaved so load noise hits all."""
    variants = [Variant(name, size, batch, device, bf16, crop_size) for name in VARIANTS]
    for v in variants:
        for _ in range(warmup):
            v.step()
    results = {v.name: {"variant": v.name, "params_m": sum(p.numel() for p in v.model.parameters()) / 1e6,
                        "gflops_step": v.flops() / 1e9, "peak_mib": v.step_memory() / 2 ** 20, "times": []}
               for v in variants}
    for _ in range(steps):
        for v in variants:
            results[v.name]["times"].append(v.timed_step())
    for r in results.values():
        r["step_s"] = statistics.median(r.pop("times"))
        r["samples_s"] = batch / r["step_s"]
    return results


def peak_tflops(device: str, override: float | None) -> float | None:
    if override or not device.startswith("cuda"):
        return override
    name = torch.cuda.get_device_name(torch.device(device))
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def ratios(results: dict) -> dict:
    """Time, memory and FLOPs of one variant over another, for the comparisons the report prints."""
    pairs = {"vs_plain": ("mubert", "plain"), "vs_matched": ("mubert", "matched"), "crop_full": ("mubert", "mb2"),
             "crop_low": ("lowcrop", "mb2"), "low_vs_full": ("lowcrop", "mubert")}
    out = {}
    for key, (a, b) in pairs.items():
        ra, rb = results[a], results[b]
        out[key] = {"time": ra["step_s"] / rb["step_s"], "mem": ra["peak_mib"] / max(rb["peak_mib"], 1e-9),
                    "flops": ra["gflops_step"] / rb["gflops_step"]}
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(SIZES), default="tiny", help="model size")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--crop-size", type=int, default=None,
                    help="side of the low-resolution Crop(I_{t+δ}) of `lowcrop`, px (default: the size's DINO local crop)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                    help="bf16 autocast (default: on for CUDA, off for CPU)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="accelerator peak for MFU (default: by GPU name)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    bf16 = args.device.startswith("cuda") if args.bf16 is None else args.bf16
    crop_size = args.crop_size or SIZES[args.preset]().dino_local_size
    results = measure(args.preset, args.batch_size, args.steps, args.warmup, torch.device(args.device), bf16, crop_size)
    peak = peak_tflops(args.device, args.peak_tflops)
    print(f"preset={args.preset} batch={args.batch_size} device={args.device} bf16={bf16} "
          f"threads={torch.get_num_threads()} lowcrop={crop_size}px")
    print(f"{'variant':8} {'params M':>9} {'step ms':>9} {'samples/s':>10} {'peak MiB':>9} {'GFLOP/step':>11}"
          + ("  MFU" if peak else ""))
    for r in results.values():
        r["mfu"] = r["gflops_step"] * 1e9 / r["step_s"] / (peak * 1e12) if peak else None  # achieved / peak
        mfu = f"  {r['mfu']:.1%}" if peak else ""
        print(f"{r['variant']:8} {r['params_m']:9.2f} {r['step_s'] * 1e3:9.1f} {r['samples_s']:10.1f} "
              f"{r['peak_mib']:9.1f} {r['gflops_step']:11.2f}{mfu}")
    rat = ratios(results)
    lines = [("vs_plain", "μ-BERT / plain ViT-AE ", "3 encoder views + DMA + POI vs 1 view"),
             ("vs_matched", "μ-BERT / matched AE   ", "DMA + POI cost; target ≤ ×1.15"),
             ("crop_full", "μ-BERT / MB2          ", "what the full-size Crop(I_{t+δ}) view costs"),
             ("crop_low", "lowcrop / MB2         ", f"the same view encoded at {crop_size} px"),
             ("low_vs_full", "lowcrop / μ-BERT      ", "a step with the low-res crop against the paper's")]
    for key, label, what in lines:
        r = rat[key]
        print(f"{label}: time ×{r['time']:.2f}, memory ×{r['mem']:.2f}, FLOPs ×{r['flops']:.3f}  ({what})")
    out = {"args": {k: str(v) for k, v in vars(args).items()}, "results": results, "ratios": rat}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
