"""Blockwise Swapping (Algorithm 1 of μ-BERT) and the random crops for POI and DINO, batched on the input's device.

Everything here draws from torch's default generator of the tensors' device, so `torch.manual_seed` makes a batch
reproducible. Masks live on the patch grid: (B, h, w) booleans, True where the patch of I_{t+δ} replaces that of I_t.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def block_mask(batch: int, grid: tuple[int, int], ratio: float, min_block: int,
               aspect: tuple[float, float], device: torch.device | str = "cpu") -> torch.Tensor:
    """Algorithm 1: rectangular blocks until at least `ratio` of the h×w patches of every sample are chosen.

    Each round draws one block for every sample that still needs patches (vectorised over the batch):
    block size bs ~ U(min_block, max(min_block, ratio·N − c)) patches, aspect ratio ar log-uniform in `aspect`,
    m = ⌈√(bs·ar)⌉ rows and n = ⌈√(bs/ar)⌉ columns (so m·n ≥ bs unless the grid is smaller), top-left uniform.
    Unlike the paper's `c ← c + m·n`, c counts distinct chosen patches, so overlapping blocks cannot stop the loop
    short of the ratio. Returns (B, h, w) bool.
    """
    h, w = grid
    target = ratio * h * w  # patches per sample
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    mask = torch.zeros(batch, h, w, dtype=torch.bool, device=device)
    count = torch.zeros(batch, device=device)  # distinct chosen patches per sample
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    while bool((count < target).any()):  # one host sync per round; a few rounds per batch
        active = (count < target).view(batch, 1, 1)
        hi = (target - count).clamp(min=min_block)
        bs = min_block + torch.rand(batch, device=device) * (hi - min_block)
        ar = torch.exp(log_lo + torch.rand(batch, device=device) * (log_hi - log_lo))
        m = torch.ceil(torch.sqrt(bs * ar)).clamp(1, h).long()
        n = torch.ceil(torch.sqrt(bs / ar)).clamp(1, w).long()
        p = (torch.rand(batch, device=device) * (h - m + 1)).long()  # top row in [0, h − m]
        q = (torch.rand(batch, device=device) * (w - n + 1)).long()  # left column in [0, w − n]
        p, q, m, n = (t.view(batch, 1, 1) for t in (p, q, m, n))
        block = (rows >= p) & (rows < p + m) & (cols >= q) & (cols < q + n)  # (B, h, w)
        mask |= block & active
        count = mask.flatten(1).sum(1).float()
    return mask


def token_mask(batch: int, grid: tuple[int, int], ratio: float,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """The authors' variant: exactly ⌈ratio·N⌉ patches per sample chosen uniformly at random. Returns (B, h, w) bool."""
    h, w = grid
    k = math.ceil(ratio * h * w)
    order = torch.rand(batch, h * w, device=device).argsort(dim=1)  # (B, N) random permutation
    mask = torch.zeros(batch, h * w, dtype=torch.bool, device=device)
    mask.scatter_(1, order[:, :k], True)
    return mask.view(batch, h, w)


def apply_swap(f0: torch.Tensor, f1: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """I_{t/s}: patches of f1 (I_{t+δ}) where mask is True, f0 (I_t) elsewhere, at the same positions.

    f0, f1: (B, C, H, W); mask: (B, h, w) with H = h·ps, W = w·ps. Returns (B, C, H, W).
    """
    ps = f0.shape[-1] // mask.shape[-1]
    pixel_mask = mask.repeat_interleave(ps, dim=1).repeat_interleave(ps, dim=2).unsqueeze(1)  # (B, 1, H, W)
    return torch.where(pixel_mask, f1, f0)


def random_resized_crop(x: torch.Tensor, scale: tuple[float, float], ratio: tuple[float, float],
                        size: int | None = None) -> torch.Tensor:
    """Crop(I_{t+δ}) for POI (and DINO's crops): one random box per sample, resampled bilinearly to `size` px
    (default: the input size).

    Box area is a fraction U(scale) of the image, its width/height log-uniform in `ratio`, its position uniform.
    x: (B, C, H, W) → (B, C, size, size).
    """
    b = x.shape[0]
    dev = x.device
    area = scale[0] + torch.rand(b, device=dev) * (scale[1] - scale[0])
    log_r = math.log(ratio[0]) + torch.rand(b, device=dev) * (math.log(ratio[1]) - math.log(ratio[0]))
    # Box half-extents in normalized [-1, 1] coordinates (1 = the full image side).
    sx = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
    sy = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    cx = (torch.rand(b, device=dev) * 2 - 1) * (1 - sx)  # centre keeps the box inside the image
    cy = (torch.rand(b, device=dev) * 2 - 1) * (1 - sy)
    theta = torch.zeros(b, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = sy, cy
    out_hw = (size, size) if size else tuple(x.shape[-2:])
    grid = F.affine_grid(theta, [b, x.shape[1], *out_hw], align_corners=False)  # (B, h, w, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
