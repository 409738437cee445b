"""Benchmark: one training step (forward, loss, backward, AdamW step) of each seed model, side by side.

    .venv/bin/python bench/bench_models.py [--preset tiny] [--batch 8] [--repeat 3] [--models fdp,cva-fpf]

Builds each registered model at --preset, feeds random inputs of its view's shape (FDP: (B, 8, 1, S, S); CVA/FPF:
(B, 2, 3, S, S) + an AU vector), and prints parameters, seconds per step (best of --repeat, after one warm-up step)
and each model's step cost relative to the first one listed. Not a test: prints numbers.
"""

from __future__ import annotations

import argparse
import time

import torch

from mer_data.aus import AU_COLUMNS
from mer_data.models import get


def random_batch(name: str, cfg, batch: int) -> dict:
    """Random inputs shaped as the model's view delivers them."""
    if get(name).view == "sequence":
        x = torch.rand(batch, cfg.frames, 1, cfg.size, cfg.size)
    else:
        x = torch.rand(batch, 2, 3, cfg.size, cfg.size)
    return {"x": x, "label": torch.arange(batch) % 5, "aus": (torch.rand(batch, len(AU_COLUMNS)) > 0.7).float()}


def step_seconds(name: str, preset: str, batch: int, repeat: int) -> tuple[int, float]:
    """(parameters, best seconds of one training step)."""
    entry = get(name)
    cfg = entry.presets[preset]()
    torch.manual_seed(0)
    model = entry.build(cfg, 5).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    data = random_batch(name, cfg, batch)
    best = float("inf")
    for i in range(repeat + 1):
        start = time.perf_counter()
        opt.zero_grad()
        model.loss(data)[0].backward()
        opt.step()
        if i:  # the first step warms up allocations
            best = min(best, time.perf_counter() - start)
    return sum(p.numel() for p in model.parameters()), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default="fdp,cva-fpf")
    args = parser.parse_args()
    rows = [(name, *step_seconds(name, args.preset, args.batch, args.repeat)) for name in args.models.split(",")]
    print(f"preset {args.preset}, batch {args.batch}, {torch.get_num_threads()} threads, best of {args.repeat}")
    print(f"{'model':<10}{'params':>14}{'s/step':>10}{'× first':>10}")
    for name, params, seconds in rows:
        print(f"{name:<10}{params:>14,}{seconds:>10.3f}{seconds / rows[0][2]:>10.2f}")


if __name__ == "__main__":
    main()
