"""poi="dino": the released code's DINO self-distillation of the class token (multi-crop, EMA teacher, 3-layer head).

What the released code (uark-cviu/Micron-BERT: models/mae.py, models/dino.py, models/vision_transformer.py) defines:
- head: Linear(D, hidden) GELU Linear(hidden, hidden) GELU Linear(hidden, bottleneck), L2-normalised, then a weight-normed
  Linear(bottleneck, K, no bias) with its gain fixed at 1 (norm_last_layer=True): the K prototypes are unit vectors.
- student: the shared encoder + head, on the class token of every crop; teacher: its own encoder + head, no gradients,
  on the 2 global crops only; crops of one resolution go through the encoder together (their MultiCropWrapper).
- loss: cross-entropy between the centred teacher softmax (temperature τ_t) and the student log-softmax (τ_s) for every
  (teacher crop, student crop) pair of different crops, averaged over the pairs; added 1:1 to L_r.
- centre: EMA (dino_center_momentum) of the teacher's mean output over the batch on all ranks.
- teacher weights: EMA with a momentum rising from ema_momentum to 1 on a cosine over the run (their cosine_scheduler).
- teacher temperature: linear warmup from dino_warmup_teacher_temp (theirs per epoch, ours per step).
Not in the released code (its data pipeline is unpublished), so DINO's published defaults: 2 global crops at image_size
with area in dino_global_scale, dino_local_crops local crops at dino_local_size px with area in dino_local_scale, all
from I_{t+δ} (their batch key "ref_frame_dino"), bilinear resampling, no colour augmentation. The teacher starts as a copy
of the student, as in DINO.
"""

from __future__ import annotations

import copy
import math
from itertools import chain

import torch
import torch.nn as nn
import torch.nn.functional as F

from mubert import dist
from mubert.config import MuBERTConfig
from mubert.swap import random_resized_crop


class DinoHead(nn.Module):
    """Class token (B, D) → K prototype logits (B, K): 3-layer MLP, L2 normalisation, unit-norm prototypes."""

    def __init__(self, dim: int, hidden: int, bottleneck: int, out_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.last = nn.Linear(bottleneck, out_dim, bias=False)

    def forward(self, ct: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(ct), dim=-1)  # (B, bottleneck)
        return F.linear(x, F.normalize(self.last.weight, dim=1))  # weight norm with gain 1: each prototype row unit


def multi_crop(f1: torch.Tensor, cfg: MuBERTConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of I_{t+δ} (B, C, H, W), crop-major: 2 global (2B, C, H, W) and L local (L·B, C, s, s), s = dino_local_size."""
    globals_ = torch.cat([random_resized_crop(f1, cfg.dino_global_scale, cfg.crop_ratio) for _ in range(2)])
    locals_ = [random_resized_crop(f1, cfg.dino_local_scale, cfg.crop_ratio, cfg.dino_local_size)
               for _ in range(cfg.dino_local_crops)]
    side = cfg.dino_local_size
    return globals_, torch.cat(locals_) if locals_ else f1.new_zeros(0, f1.shape[1], side, side)


def teacher_temp(cfg: MuBERTConfig, progress: float) -> float:
    """τ_t at `progress` (fraction of the run done): linear warmup over dino_warmup_frac, then dino_teacher_temp."""
    if progress < cfg.dino_warmup_frac:
        return cfg.dino_warmup_teacher_temp + (cfg.dino_teacher_temp - cfg.dino_warmup_teacher_temp) * (
            progress / cfg.dino_warmup_frac)
    return cfg.dino_teacher_temp


def momentum(cfg: MuBERTConfig, progress: float) -> float:
    """Teacher EMA momentum at `progress`: 1 − (1 − m₀)·(cos(π·progress) + 1)/2, from m₀ = ema_momentum up to 1."""
    return 1.0 - (1.0 - cfg.ema_momentum) * (math.cos(math.pi * progress) + 1.0) / 2.0


class Dino(nn.Module):
    """The student head, the teacher (encoder + head, after `start_teacher`) and the centre of the teacher outputs."""

    def __init__(self, cfg: MuBERTConfig):
        super().__init__()
        self.cfg = cfg
        self.head = DinoHead(cfg.dim, cfg.dino_hidden, cfg.dino_bottleneck, cfg.dino_out_dim)
        self.register_buffer("center", torch.zeros(1, cfg.dino_out_dim))
        self._batch = None  # (sum of teacher outputs (1, K), rows) of the last batch, for ema_update

    def start_teacher(self, encoder: nn.Module) -> None:
        """The teacher starts as a copy of the student (its encoder and this head) and never gets gradients."""
        self.teacher = copy.deepcopy(encoder).requires_grad_(False)
        self.teacher_head = copy.deepcopy(self.head).requires_grad_(False)

    def loss(self, ct_global: torch.Tensor, ct_local: torch.Tensor | None, globals_: torch.Tensor,
             progress: float) -> torch.Tensor:
        """L_agg. ct_global (2B, D), ct_local (L·B, D) or None: the student's class tokens of the crops, crop-major;
        globals_ (2B, C, H, W): the global crops, which the teacher encodes."""
        cfg = self.cfg
        with torch.no_grad():
            t = self.teacher_head(self.teacher(globals_)[0][:, 0]).float()  # (2B, K)
            self._batch = (t.sum(0, keepdim=True), t.shape[0])
            targets = F.softmax((t - self.center) / teacher_temp(cfg, progress), dim=-1).chunk(2)
        student = ct_global if ct_local is None else torch.cat([ct_global, ct_local])
        n_crops = student.shape[0] // targets[0].shape[0]
        logp = F.log_softmax(self.head(student).float() / cfg.dino_student_temp, dim=-1).chunk(n_crops)
        terms = [-(q * lp).sum(-1).mean() for i, q in enumerate(targets) for v, lp in enumerate(logp) if v != i]
        return torch.stack(terms).mean()

    @torch.no_grad()
    def ema_update(self, encoder: nn.Module, progress: float) -> None:
        """teacher ← m·teacher + (1 − m)·student at momentum(progress); centre ← EMA of the last batch's mean output."""
        m = momentum(self.cfg, progress)
        students = chain(encoder.parameters(), self.head.parameters())
        teachers = chain(self.teacher.parameters(), self.teacher_head.parameters())
        for p_s, p_t in zip(students, teachers):
            p_t.mul_(m).add_(p_s.detach(), alpha=1.0 - m)
        if self._batch is not None:
            total, rows = self._batch
            count = torch.tensor([float(rows)], device=total.device)
            mean = dist.all_reduce_sum(total.clone()) / dist.all_reduce_sum(count)  # over all ranks, as theirs
            cm = self.cfg.dino_center_momentum
            self.center.mul_(cm).add_(mean, alpha=1.0 - cm)
            self._batch = None
