"""A Swin Transformer encoder (Liu et al., arXiv 2103.14030): patch embedding, stages of (shifted-)window attention
blocks with relative position bias, patch merging between stages, a final LayerNorm; returns the last stage's tokens.

Used by CVA/FPF's Facial Position Focalizer (`cva_fpf`). No classification head, no pretrained weights.
"""

from __future__ import annotations

import torch
from torch import nn


def windows(x: torch.Tensor, m: int) -> torch.Tensor:
    """(B, H, W, C) → (B·nW, m·m, C), non-overlapping m×m windows."""
    b, h, w, c = x.shape
    return x.view(b, h // m, m, w // m, m, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, m * m, c)


def unwindow(x: torch.Tensor, m: int, b: int, h: int, w: int) -> torch.Tensor:
    """(B·nW, m·m, C) → (B, H, W, C), the inverse of `windows`."""
    return x.view(b, h // m, w // m, m, m, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside an m×m window with a learned bias per relative offset and head."""

    def __init__(self, dim: int, heads: int, m: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.bias = nn.Parameter(torch.zeros((2 * m - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")).flatten(1)  # (2, m²)
        rel = (coords[:, :, None] - coords[:, None, :]) + (m - 1)  # (2, m², m²) offsets shifted to ≥ 0
        self.register_buffer("index", rel[0] * (2 * m - 1) + rel[1], persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:  # (B·nW, N, C)
        bw, n, c = x.shape
        q, k, v = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = q @ k.transpose(-2, -1) * self.scale + self.bias[self.index].permute(2, 0, 1)  # (B·nW, h, N, N)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(bw // nw, nw, self.heads, n, n) + mask[None, :, None]).view(bw, self.heads, n, n)
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """x + W-MSA(LN(x)) (cyclically shifted by `shift` when > 0), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, m: int, shift: int, side: int):
        super().__init__()
        self.m, self.shift = m, shift if side > m else 0  # one window covers the map: nothing to shift
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, m)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.register_buffer("mask", self.shift_mask(side) if self.shift else None, persistent=False)

    def shift_mask(self, side: int) -> torch.Tensor:
        """(nW, m², m²) 0 / −100: after the shift, tokens from different original regions must not attend."""
        region = torch.zeros(1, side, side, 1)
        cuts = (slice(0, -self.m), slice(-self.m, -self.shift), slice(-self.shift, None))
        for i, (hs, ws) in enumerate((h, w) for h in cuts for w in cuts):
            region[:, hs, ws] = i
        ids = windows(region, self.m)[..., 0]  # (nW, m²)
        return (ids[:, None, :] != ids[:, :, None]).float() * -100.0

    def forward(self, x: torch.Tensor, side: int) -> torch.Tensor:  # (B, side², C)
        b, _, c = x.shape
        y = self.norm1(x).view(b, side, side, c)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        y = unwindow(self.attn(windows(y, self.m), self.mask), self.m, b, side, side)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + y.reshape(b, side * side, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2×2 neighbouring tokens concatenated (4C), LayerNorm, linear to 2C: half the side, twice the width."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm, self.reduce = nn.LayerNorm(4 * dim), nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor, side: int) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, side, side, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduce(self.norm(x.reshape(b, -1, 4 * c)))


class SwinEncoder(nn.Module):
    """Image (B, 3, H, H) → last-stage tokens (B, (H / patch / 2^(S−1))², embed · 2^(S−1))."""

    def __init__(self, size: int, patch: int, embed: int, depths: tuple[int, ...], heads: tuple[int, ...], window: int):
        super().__init__()
        self.patch = nn.Conv2d(3, embed, patch, patch)
        self.patch_norm = nn.LayerNorm(embed)
        self.sides, self.stages, self.merges = [], nn.ModuleList(), nn.ModuleList()
        side, dim = size // patch, embed
        for i, (depth, h) in enumerate(zip(depths, heads)):
            self.sides.append(side)
            self.stages.append(nn.ModuleList(SwinBlock(dim, h, window, window // 2 if j % 2 else 0, side)
                                             for j in range(depth)))
            if i < len(depths) - 1:
                self.merges.append(PatchMerging(dim))
                side, dim = side // 2, dim * 2
        self.norm, self.out_dim, self.out_side = nn.LayerNorm(dim), dim, side
        self.apply(init_linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_norm(self.patch(x).flatten(2).transpose(1, 2))  # (B, N, C)
        for i, (stage, side) in enumerate(zip(self.stages, self.sides)):
            for block in stage:
                x = block(x, side)
            if i < len(self.merges):
                x = self.merges[i](x, side)
        return self.norm(x)


def init_linear(m: nn.Module) -> None:
    """Swin's initialisation: truncated-normal (σ 0.02) linear weights, zero biases."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)

