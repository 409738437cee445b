"""μ-Encoder and μ-Decoder of μ-BERT: patches, fixed sin-cos positions, pre-norm transformer blocks.

- Eq. 1-2   N_p = HW/ps² non-overlapping patches, linear projection α plus fixed 2-D sin-cos position e(i); a
            contextual token CT (position 0, learned) is prepended to the sequence.
- Eq. 3-4   μ-Encoder: L_e pre-norm blocks x' = x + MHA(LN(x)), x = x' + MLP(LN(x')); P = E(Z), (B, 1+N, D).
- Eq. 5-6   μ-Decoder: the same blocks, then a linear layer to ps·ps·C values per patch, reshaped to the image.
The blocks are the released code's ViT-S/8 blocks (qkv with bias, GELU MLP, LayerNorm eps 1e-6), its class token our
CT; `pos_layout`, `input_norm` and `decoder_ct` select its position-table layout, its input normalisation and whether
the CT enters the decoder.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mubert.attention import ct_attention_row
from mubert.config import MuBERTConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # input_norm="imagenet": per-channel mean and std of the released code's inputs
IMAGENET_STD = (0.229, 0.224, 0.225)


def patchify(imgs: torch.Tensor, ps: int) -> torch.Tensor:
    """(B, C, H, W) → (B, N, ps·ps·C), patches in row-major order, values ordered (row, column, channel)."""
    b, c, h, w = imgs.shape
    x = imgs.reshape(b, c, h // ps, ps, w // ps, ps)
    return torch.einsum("bcipjq->bijpqc", x).reshape(b, (h // ps) * (w // ps), ps * ps * c)


def unpatchify(x: torch.Tensor, ps: int, grid: tuple[int, int], chans: int = 3) -> torch.Tensor:
    """(B, N, ps·ps·C) → (B, C, H, W); inverse of `patchify`."""
    b = x.shape[0]
    h, w = grid
    x = x.reshape(b, h, w, ps, ps, chans)
    return torch.einsum("bijpqc->bcipjq", x).reshape(b, chans, h * ps, w * ps)


def sincos_2d(dim: int, grid: tuple[int, int], layout: str = "row_col") -> torch.Tensor:
    """Fixed 2-D sin-cos positions e(i) (Eq. 2): half the channels encode the row, half the column, in the order of
    `layout` ("row_col", or the released code's "col_row"); each half is [sin | cos] of dim/4 frequencies. → (N, dim)."""
    h, w = grid
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))  # (dim/4,)

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)  # (N, dim/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    halves = [encode(rows), encode(cols)] if layout == "row_col" else [encode(cols), encode(rows)]
    return torch.cat(halves, dim=1).float()


def resize_pos(pos: torch.Tensor, grid: tuple[int, int], new: tuple[int, int]) -> torch.Tensor:
    """Positions of a lower-resolution view: the (1, h·w, D) table resampled bicubically to `new` (1, h'·w', D).

    As the released code and DINO do it, including their scale factor (new + 0.1) / old that guards the output size.
    """
    (h, w), d = grid, pos.shape[-1]
    table = pos.reshape(1, h, w, d).permute(0, 3, 1, 2)  # (1, D, h, w)
    out = F.interpolate(table, scale_factor=((new[0] + 0.1) / h, (new[1] + 0.1) / w), mode="bicubic")
    return out.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], d)


class Attention(nn.Module):
    """Multi-head self-attention through `scaled_dot_product_attention` (fused; no (T, T) matrix is stored)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ct_row: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, T, dh)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, T, dh)
        out = self.proj(out.transpose(1, 2).reshape(b, t, d))  # (B, T, D)
        return out, (ct_attention_row(q, k) if ct_row else None)


class Block(nn.Module):
    """Pre-norm transformer block (Eq. 3)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, ct_row: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, row = self.attn(self.norm1(x), ct_row)
        x = x + a
        return x + self.mlp(self.norm2(x)), row


class PixelNorm(nn.Module):
    """input_norm: [0, 1] pixels → (x − mean) / std per channel ("imagenet"), or unchanged ("none")."""

    def __init__(self, cfg: MuBERTConfig):
        super().__init__()
        on = cfg.input_norm == "imagenet"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN if on else (0.0,) * 3).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD if on else (1.0,) * 3).view(1, 3, 1, 1), persistent=False)
        self.on = on

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return (imgs - self.mean) / self.std if self.on else imgs


class Encoder(nn.Module):
    """μ-Encoder: α + e (Eq. 2), the CT token, L_e blocks and a final LayerNorm (Eq. 3-4)."""

    def __init__(self, cfg: MuBERTConfig):
        super().__init__()
        self.ps, self.grid = cfg.patch_size, cfg.grid
        self.pixels = PixelNorm(cfg)
        self.patch_embed = nn.Linear(cfg.patch_size ** 2 * cfg.in_chans, cfg.dim)
        self.ct = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        pos = sincos_2d(cfg.dim, cfg.grid, cfg.pos_layout)
        self.register_buffer("pos", pos.unsqueeze(0), persistent=False)  # (1, N, D)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.ln_eps) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.ln_eps)

    def forward(self, imgs: torch.Tensor, ct_row: bool = False,
                keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, H, W) in [0, 1] → tokens (B, 1+n, D) (CT first) and, if asked, S of the last layer (B, n).

        A view smaller than image_size gets the position table resized to its grid; `keep` (B, n) selects the patches
        that enter the encoder (MAE masking), else all n = N do.
        """
        grid = (imgs.shape[-2] // self.ps, imgs.shape[-1] // self.ps)
        pos = self.pos if grid == self.grid else resize_pos(self.pos, self.grid, grid)
        z = self.patch_embed(patchify(self.pixels(imgs), self.ps)) + pos  # (B, N, D)
        if keep is not None:
            z = torch.gather(z, 1, keep.unsqueeze(-1).expand(-1, -1, z.shape[-1]))  # (B, n, D)
        x = torch.cat([self.ct.expand(z.shape[0], -1, -1).to(z.dtype), z], dim=1)  # (B, 1+n, D)
        row = None
        for i, blk in enumerate(self.blocks):
            x, row = blk(x, ct_row=ct_row and i == len(self.blocks) - 1)
        return self.norm(x), row


class Decoder(nn.Module):
    """μ-Decoder (Eq. 5-6): width projection, fixed positions, L_d blocks, LayerNorm, linear to ps·ps·C."""

    def __init__(self, cfg: MuBERTConfig):
        super().__init__()
        self.with_ct = cfg.decoder_ct
        self.embed = nn.Linear(cfg.dim, cfg.decoder_dim)
        pos = torch.cat([torch.zeros(1, cfg.decoder_dim), sincos_2d(cfg.decoder_dim, cfg.grid, cfg.pos_layout)])
        self.register_buffer("pos", pos.unsqueeze(0), persistent=False)  # (1, 1+N, Dd), the CT's row is 0
        if cfg.objective == "mae":  # stands in for every hidden patch
            self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
        self.blocks = nn.ModuleList(Block(cfg.decoder_dim, cfg.decoder_heads, cfg.mlp_ratio, cfg.ln_eps)
                                    for _ in range(cfg.decoder_depth))
        self.norm = nn.LayerNorm(cfg.decoder_dim, eps=cfg.ln_eps)
        self.pred = nn.Linear(cfg.decoder_dim, cfg.patch_size ** 2 * cfg.in_chans)

    def forward(self, tokens: torch.Tensor, restore: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1+N, D) with the CT first (decoder_ct) or (B, N, D) patches → per-patch pixels y_t (B, N, ps·ps·C).

        MAE: tokens are (B, 1+n, D), CT + the visible patches in `keep` order; `restore` (B, N) puts them and a mask
        token per hidden patch back in image order.
        """
        x = self.embed(tokens)
        if restore is not None:
            ct, seen = x[:, :1], x[:, 1:]
            hidden = self.mask_token.to(x.dtype).expand(x.shape[0], restore.shape[1] - seen.shape[1], -1)
            x = torch.gather(torch.cat([seen, hidden], dim=1), 1, restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
            x = torch.cat([ct, x], dim=1) if self.with_ct else x  # (B, 1+N, Dd) or (B, N, Dd)
        x = x + (self.pos if self.with_ct else self.pos[:, 1:])
        for blk in self.blocks:
            x, _ = blk(x)
        x = self.pred(self.norm(x))
        return x[:, 1:] if self.with_ct else x
