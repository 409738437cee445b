"""CVA/FPF ("A Novel Approach for Micro-Expression Recognition Incorporating Vertical Attention and Position
Localization", ICLR 2024 submission; published as FaceSleuth, arXiv 2506.02695; code github Svardfox/FaceSleuth,
CASME2_5.py, CA_block.py, swin_transformer.py), registered as `cva-fpf`.

Input: the `pair` view, onset and apex RGB 224×224 (training draws them with FaceSleuth's jitter), ImageNet-normalised
here. Two streams:
- main (motion): apex − onset → conv 3→180 (stride 2) → conv 180→128 → four CVA blocks (128, 128, 256, 512; strides
  1, 2, 2, 2) → (B, 512, 14, 14). A CVA block is a residual block whose output is gated by a *vertical* attention
  map: features averaged along the width → (B, C, H, 1) → 1×1 conv squeeze, BN, h-swish, 1×1 conv, sigmoid. The map
  is "continuous": each block multiplies its map by the previous block's (max-pooled to the new height, 1×1-mapped
  to the new width where it changes).
- FPF (position): a Swin Transformer (patch 4, embed 128, depths 2-2-6, heads 4-8-16, window 7; `swin`) shared by
  onset and apex; the sum of their last-stage tokens (B, 512, 14, 14) is added to the motion features.
Head: flatten → FC 512 → [concat the AU vector] → BN → ReLU → FC 128 → BN → FC n_classes; cross-entropy.

Differences of the released code, each a switch (`authors()` turns them all on):
- `attention="soa"`: the code's blocks are FaceSleuth's Single-Orientation Attention: the map pools along a learned
  direction (a rotation by θ − 90° through `grid_sample` before the width average, θ initialised at 72°) and gates
  with a squeeze-excite (reduction 16, ReLU, no BN). "cva" (paper) pools along the fixed vertical; SOA at θ = 90°
  pools exactly as CVA does.
- `au_input="annotation"`: the code concatenates the dataset's ground-truth AU vector, at test time too — an input
  no deployed system has; the harness must label any run with it as using the annotation. "none" (default) leaves
  the AU slot out (FC 512 → BN directly).
Where the paper is silent we follow the code: the widths above, the attention maps' max-pool/1×1 hand-over.
Not built: the code's unused modules (`MMNet.pos`, `MMNet.head`, `timeembed`), which add parameters but no function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from mer_data import MerDataError
from mer_data.aus import AU_COLUMNS
from mer_data.models import ModelEntry, register
from mer_data.models.swin import SwinEncoder

ATTENTIONS = ("cva", "soa")
AU_INPUTS = ("none", "annotation")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CVAConfig:
    """CVA/FPF's sizes, optimiser settings and the released code's switches."""

    size: int = 224  # input side in px
    jitter: float = 0.0375  # training onset/apex jitter (the pair view's; FaceSleuth's 0.15 / 4)
    act_width: int = 180  # width of the first (stride-2) conv on apex − onset
    widths: tuple[int, ...] = (128, 128, 256, 512)  # stem conv, then one CVA block per entry after the first...
    strides: tuple[int, ...] = (1, 2, 2, 2)  # ...stride of each CVA block (the stem conv has stride 1)
    swin_embed: int = 128  # FPF patch-embedding width
    swin_depths: tuple[int, ...] = (2, 2, 6)  # FPF blocks per stage
    swin_heads: tuple[int, ...] = (4, 8, 16)  # FPF heads per stage
    swin_window: int = 7  # FPF window side in tokens
    swin_patch: int = 4  # FPF patch side in px
    fc: int = 512  # first FC width
    hidden: int = 128  # second FC width
    attention: str = "cva"  # "cva" (paper: fixed vertical pooling) | "soa" (code: learned orientation)
    soa_init_deg: float = 72.0  # SOA's initial θ (code: 2π/5)
    au_input: str = "none"  # "none" | "annotation" (ground-truth AUs as input, at test time too; code)
    lr: float = 8e-4  # AdamW (code; SOA's angle has its own 5e-3 there, one rate here)
    weight_decay: float = 0.6  # AdamW (code)
    epochs: int = 99  # code: epochs 1..99
    batch_size: int = 50  # code default

    def __post_init__(self):
        if self.attention not in ATTENTIONS:
            raise MerDataError(f"cva-fpf: attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if self.au_input not in AU_INPUTS:
            raise MerDataError(f"cva-fpf: au_input must be one of {', '.join(AU_INPUTS)}, got {self.au_input!r}")
        if len(self.strides) != len(self.widths):
            raise MerDataError("cva-fpf: strides and widths must have the same length")
        main_side = self.size // 2 // math.prod(self.strides)
        fpf_side = self.size // self.swin_patch // 2 ** (len(self.swin_depths) - 1)
        fpf_dim = self.swin_embed * 2 ** (len(self.swin_depths) - 1)
        if (main_side, self.widths[-1]) != (fpf_side, fpf_dim):
            raise MerDataError(f"cva-fpf: motion map {main_side}² × {self.widths[-1]} and position map "
                               f"{fpf_side}² × {fpf_dim} must match")


def paper() -> CVAConfig:
    """The paper's model: fixed vertical attention, no annotated AUs as input."""
    return CVAConfig()


def authors() -> CVAConfig:
    """The released code: learned-orientation attention and the ground-truth AU vector as input."""
    return replace(paper(), attention="soa", au_input="annotation")


def tiny() -> CVAConfig:
    """A small CVA/FPF for tests and CPU runs: 32×32 pairs, 4×4 × 32 maps."""
    return CVAConfig(size=32, act_width=8, widths=(8, 8, 16, 32), strides=(1, 1, 2, 2), swin_embed=16,
                     swin_depths=(1, 2), swin_heads=(1, 2),
                     swin_window=4, fc=32, hidden=16, epochs=3, batch_size=8, lr=1e-3, weight_decay=0.05)


def rotation_grid(theta: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """An affine sampling grid rotating a (B, C, H, W) map by `theta` radians about its centre."""
    c, s = torch.cos(theta), torch.sin(theta)
    affine = torch.stack([torch.stack([c, s, torch.zeros_like(c)]), torch.stack([-s, c, torch.zeros_like(c)])])
    return F.affine_grid(affine.expand(shape[0], 2, 3), list(shape), align_corners=False)


class OrientedPool(nn.Module):
    """(B, C, H, W) → (B, C, H, 1): the width average, after a rotation by θ − 90° (SOA) or none (CVA)."""

    def __init__(self, learned: bool, init_deg: float):
        super().__init__()
        init = math.radians(init_deg)
        self.vec = nn.Parameter(torch.tensor([math.cos(init), math.sin(init)])) if learned else None

    def angle(self) -> torch.Tensor:
        """θ in [0, π) (radians) from the learned 2-vector (π / 2 when fixed)."""
        if self.vec is None:
            return torch.tensor(math.pi / 2)
        theta = torch.atan2(self.vec[1], self.vec[0])
        return torch.where(theta < 0, theta + math.pi, theta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.vec is not None:
            x = F.grid_sample(x, rotation_grid(self.angle() - math.pi / 2, x.shape), align_corners=False)
        return x.mean(dim=3, keepdim=True)


class AttentionBlock(nn.Module):
    """Residual block gated by a (B, C, H, 1) attention map multiplied into the previous block's map."""

    def __init__(self, cin: int, cout: int, stride: int, cfg: CVAConfig):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                  nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 1, bias=False), nn.BatchNorm2d(cout))
        same = stride == 1 and cin == cout
        self.short = nn.Identity() if same else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                              nn.BatchNorm2d(cout))
        soa = cfg.attention == "soa"
        self.pool = OrientedPool(soa, cfg.soa_init_deg)
        if soa:
            mid = max(8, cout // 16)
            self.gate = nn.Sequential(nn.Conv2d(cout, mid, 1, bias=False), nn.ReLU(inplace=True),
                                      nn.Conv2d(mid, cout, 1, bias=False), nn.Sigmoid())
        else:
            mid = max(8, cin // 32)
            self.gate = nn.Sequential(nn.Conv2d(cout, mid, 1), nn.BatchNorm2d(mid), nn.Hardswish(),
                                      nn.Conv2d(mid, cout, 1), nn.Sigmoid())
        # the previous block's map, brought to this block's height and width
        pool = nn.MaxPool2d(3, 2, 1) if stride == 2 else nn.Identity()
        self.hand_over = nn.Sequential(pool, nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        out = F.relu(self.body(x) + self.short(x))  # (B, C, H, W)
        attn = self.gate(self.pool(out))  # (B, C, H, 1)
        if prev is not None:
            attn = attn * self.hand_over(prev)
        return out * attn, attn


class CVAFPF(nn.Module):
    """x (B, 2, 3, S, S) onset/apex in [0, 1], aus (B, n_AU) → class logits."""

    def __init__(self, cfg: CVAConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        w = cfg.widths
        self.act = nn.Sequential(nn.Conv2d(3, cfg.act_width, 3, 2, 1, bias=False), nn.BatchNorm2d(cfg.act_width),
                                 nn.ReLU(inplace=True), nn.Conv2d(cfg.act_width, w[0], 3, 1, 1, bias=False),
                                 nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList(AttentionBlock(w[max(i - 1, 0)], w[i], cfg.strides[i], cfg) for i in range(len(w)))
        self.fpf = SwinEncoder(cfg.size, cfg.swin_patch, cfg.swin_embed, cfg.swin_depths, cfg.swin_heads,
                               cfg.swin_window)
        side = self.fpf.out_side
        self.fc1 = nn.Linear(w[-1] * side * side, cfg.fc)
        n_au = len(AU_COLUMNS) if cfg.au_input == "annotation" else 0
        self.head = nn.Sequential(nn.BatchNorm1d(cfg.fc + n_au), nn.ReLU(), nn.Linear(cfg.fc + n_au, cfg.hidden),
                                  nn.BatchNorm1d(cfg.hidden), nn.Linear(cfg.hidden, n_classes))

    def motion(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        """Main stream: apex − onset → (B, C, s, s) through the attention blocks."""
        x, attn = self.act(apex - onset), None
        for block in self.blocks:
            x, attn = block(x, attn)
        return x

    def position(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        """FPF: Swin tokens of onset + those of apex → (B, D, s, s)."""
        b = onset.shape[0]
        tokens = self.fpf(torch.cat([onset, apex]))  # (2B, s², D)
        tokens = tokens[:b] + tokens[b:]
        side = self.fpf.out_side
        return tokens.transpose(1, 2).reshape(b, -1, side, side)

    def forward(self, batch: dict) -> torch.Tensor:
        x = (batch["x"] - self.mean.unsqueeze(1)) / self.std.unsqueeze(1)  # (B, 2, 3, S, S)
        onset, apex = x[:, 0], x[:, 1]
        feat = self.fc1((self.motion(onset, apex) + self.position(onset, apex)).flatten(1))  # (B, fc)
        if self.cfg.au_input == "annotation":
            feat = torch.cat([feat, batch["aus"].to(feat.dtype)], dim=1)
        return self.head(feat)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        ce = F.cross_entropy(self(batch), batch["label"])
        return ce, {"ce": ce.item()}


def view_options(cfg: CVAConfig) -> dict:
    return {"color": True, "size": cfg.size, "jitter": cfg.jitter}


register(ModelEntry(name="cva-fpf", view="pair", view_options=view_options,
                    presets={"paper": paper, "authors": authors, "tiny": tiny}, build=CVAFPF))
