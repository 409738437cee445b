"""FDP's frame encoder: the local-global feature-aware transformer (Shao et al., arXiv 2509.06015, Sec. 3.2).

One grayscale frame (B, 1, H, W) → a frame-level feature (B, D), D = S² so that T of them can be laid out as a
(S, S, T) volume for the rank scorer. The paper builds it as a stem of plain convolutions, then N_S stages, each a
patch embedding followed by N_L CNN-based local relational aggregators (LRA: multi-head convolution — each head a
conv-BN-ReLU on its own channel group — concatenated, a pointwise projection, a residual; then an MLP with a residual)
and N_G ViT-based global relational aggregators (GRA: an efficient multi-head self-attention over spatially reduced
keys/values with a residual, an LRA-style convolution on a slice of the channels, concatenation, an MLP). This is the
Next-ViT hybrid layout; the released code (github CYF-cuber/FDP, fdp.py) takes the stage widths and block types from
it. Where they differ, two switches (`FrameEncoderSpec`) reproduce the code:

- `global_blocks=False`: the code's block loop runs `depths[i]` times over lists of length `depths[i] + 1`, so the
  last entry of every stage — its GRA — is never built. With it False, no stage has a global block.
- `dense_local_conv=True`: the code's "multi-head convolutional attention" is one dense 3×3 convolution over all
  channels (no heads, no BN/ReLU, no projection) instead of per-head convolutions with a pointwise projection.

The paper is silent on N_G and the head width; we take one GRA per stage and 8-channel heads, as the code's lists do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FrameEncoderSpec:
    """The frame encoder's sizes and the released code's switches."""

    stem: tuple[int, ...] = (64, 32, 64)  # stem conv widths (strides 2, 1, 1, then 2 at the last width)
    depths: tuple[int, ...] = (3, 4, 10, 3)  # N_L local aggregators per stage
    local_widths: tuple[int, ...] = (96, 192, 384, 768)  # LRA width per stage
    global_widths: tuple[int, ...] = (128, 256, 512, 1024)  # GRA width per stage (one GRA closes each stage)
    strides: tuple[int, ...] = (1, 2, 2, 2)  # first block's stride per stage
    sr_ratios: tuple[int, ...] = (8, 4, 2, 1)  # GRA key/value spatial reduction per stage
    head_dim: int = 8  # channels per head (convolution and attention)
    mix_ratio: float = 0.75  # GRA: share of channels through self-attention
    mlp_ratio: int = 3  # LRA MLP hidden = width × this (GRA: 2)
    out_dim: int = 4096  # D, the frame feature (= S²)
    global_blocks: bool = True  # paper: one GRA per stage; code (False): none built
    dense_local_conv: bool = False  # code (True): one dense 3×3 conv in place of the multi-head convolution


def divisible(v: float, divisor: int) -> int:
    """v rounded to a multiple of `divisor`, never below `divisor` nor more than 10 % under v (MobileNet's rule)."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PatchEmbed(nn.Module):
    """Stride-2 average pooling and/or a pointwise conv + BN to change width; identity when neither is needed."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) if stride == 2 else nn.Identity()
        same = stride == 1 and cin == cout
        self.proj = nn.Identity() if same else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(x))


class MultiHeadConv(nn.Module):
    """Paper: per-head 3×3 conv + BN + ReLU (a grouped conv), then a pointwise projection; code: one dense 3×3 conv."""

    def __init__(self, width: int, head_dim: int, dense: bool):
        super().__init__()
        if dense:
            self.body = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        else:
            self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, groups=width // head_dim, bias=False),
                                      nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                      nn.Conv2d(width, width, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def mlp(width: int, ratio: int) -> nn.Sequential:
    hidden = divisible(width * ratio, 32)
    return nn.Sequential(nn.Conv2d(width, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, width, 1))


class LocalBlock(nn.Module):
    """LRA: x + MHC(x), then x + MLP(BN(x))."""

    def __init__(self, cin: int, cout: int, stride: int, spec: FrameEncoderSpec):
        super().__init__()
        self.embed = PatchEmbed(cin, cout, stride)
        self.conv = MultiHeadConv(cout, spec.head_dim, spec.dense_local_conv)
        self.norm = nn.BatchNorm2d(cout)
        self.mlp = mlp(cout, spec.mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = x + self.conv(x)
        return x + self.mlp(self.norm(x))


class ReducedSelfAttention(nn.Module):
    """Multi-head self-attention whose keys and values are average-pooled over sr² neighbouring tokens."""

    def __init__(self, dim: int, head_dim: int, sr_ratio: int):
        super().__init__()
        self.heads, self.scale = dim // head_dim, head_dim ** -0.5
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))
        self.reduce = sr_ratio ** 2
        self.norm = nn.BatchNorm1d(dim) if self.reduce > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C) → (B, N, C)
        b, n, c = x.shape
        kv = x
        if self.reduce > 1 and n >= self.reduce:
            kv = self.norm(nn.functional.avg_pool1d(x.transpose(1, 2), self.reduce, self.reduce)).transpose(1, 2)
        split = lambda t: t.reshape(b, -1, self.heads, c // self.heads).transpose(1, 2)  # noqa: E731  (B, h, N, d)
        attn = (split(self.q(x)) @ split(self.k(kv)).transpose(-2, -1) * self.scale).softmax(-1)
        return self.proj((attn @ split(self.v(kv))).transpose(1, 2).reshape(b, n, c))


class GlobalBlock(nn.Module):
    """GRA: self-attention on `mix_ratio` of the channels (residual), a multi-head conv on the rest, concat, MLP."""

    def __init__(self, cin: int, cout: int, stride: int, sr_ratio: int, spec: FrameEncoderSpec):
        super().__init__()
        attn_width = divisible(cout * spec.mix_ratio, 4 * spec.head_dim)  # 32 at the paper's 8-channel heads
        self.embed = PatchEmbed(cin, attn_width, stride)
        self.norm1 = nn.BatchNorm2d(attn_width)
        self.attn = ReducedSelfAttention(attn_width, spec.head_dim, sr_ratio)
        self.project = PatchEmbed(attn_width, cout - attn_width, 1)
        self.conv = MultiHeadConv(cout - attn_width, spec.head_dim, spec.dense_local_conv)
        self.norm2 = nn.BatchNorm2d(cout)
        self.mlp = mlp(cout, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        b, c, h, w = x.shape
        tokens = self.norm1(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        x = x + self.attn(tokens).transpose(1, 2).reshape(b, c, h, w)
        local = self.project(x)
        x = torch.cat([x, local + self.conv(local)], dim=1)
        return x + self.mlp(self.norm2(x))


class FrameEncoder(nn.Module):
    """Frame (B, 1, H, W) → feature (B, out_dim)."""

    def __init__(self, spec: FrameEncoderSpec):
        super().__init__()
        s = spec.stem
        self.stem = nn.Sequential(conv_bn_relu(1, s[0], 2), conv_bn_relu(s[0], s[1], 1), conv_bn_relu(s[1], s[2], 1),
                                  conv_bn_relu(s[2], s[2], 2))
        blocks: list[nn.Module] = []
        width = s[2]
        for i, depth in enumerate(spec.depths):
            for j in range(depth):
                stride = spec.strides[i] if j == 0 else 1
                blocks.append(LocalBlock(width, spec.local_widths[i], stride, spec))
                width = spec.local_widths[i]
            if spec.global_blocks:
                blocks.append(GlobalBlock(width, spec.global_widths[i], 1, spec.sr_ratios[i], spec))
                width = spec.global_widths[i]
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, spec.out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.blocks(self.stem(x)))  # (B, C, h, w)
        return self.head(x.mean(dim=(2, 3)))  # (B, D)
