"""FDP, fine-grained dynamic perception (Shao et al., "Micro-Expression Recognition via Fine-Grained Dynamic
Perception", arXiv 2509.06015; code github CYF-cuber/FDP), registered as `fdp`.

T = 8 grayscale 64×64 frames (the `sequence` view) → the frame encoder (`fdp_backbone`) → T frame features of
D = S² (S = 64) → laid out as a volume (B, 1, S, S, T) → the rank scorer, a 3-D convolution whose kernel spans all T
frames (3×3×T, R = 8 filters), scoring and pooling the frames in one step → the dynamic representation (B, R, S, S).
It feeds (i) the MER head: 3×3 max-pooling, FC 256, ReLU, FC n_classes, and (ii) the dynamic image construction
module: a SegNet encoder-decoder R → 1 with a sigmoid, trained with MSE against the sample's dynamic image (Bilen et
al.'s approximate rank pooling of the same T frames, min-max scaled to [0, 1]). The loss is
`mer_weight · CE + dy_weight · MSE` (code: 1 and 100; the paper gives no values we could read, so we take the code's).

The dynamic-image target is computed here from the sequence with `mer_data.views.dynamic.rank_pool_weights` (the
`dynamic` view's formula, one copy), so the model needs one view only.

Differences of the released code, each a switch (`authors()` turns them all on):
- `frame_layout="reshape"`: the code stacks the frame features (B, T, D) and calls `reshape(-1, 1, S, S, T)`, so the
  volume's last axis — which the rank scorer treats as time — holds T consecutive feature values of one frame, and
  the "temporal" kernel mixes feature dimensions, not frames. "permute" (paper) puts frame t at index t.
- `FrameEncoderSpec.global_blocks=False` and `dense_local_conv=True`: see `fdp_backbone`.
Not a switch here: the code normalises each split (the training side, and the test subject alone) by its own mean
and maximum; we scale each frame as the code does first, (x − 0.5) / 0.5, and leave split statistics to no one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn import functional as F

from mer_data import MerDataError
from mer_data.models import ModelEntry, register
from mer_data.models.fdp_backbone import FrameEncoder, FrameEncoderSpec
from mer_data.views.dynamic import rank_pool_weights

LAYOUTS = ("permute", "reshape")


@dataclass(frozen=True)
class FDPConfig:
    """FDP's sizes, loss weights, optimiser settings and the released code's switches."""

    frames: int = 8  # T, frames of the sequence view
    size: int = 64  # frame side in px (= S, the side of the frame-feature map)
    encoder: FrameEncoderSpec = field(default_factory=FrameEncoderSpec)  # frame encoder sizes and switches
    rank_channels: int = 8  # R, rank-scorer filters
    hidden: int = 256  # MER head hidden width
    segnet: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (width, convs) per stage
    frame_layout: str = "permute"  # "permute" (paper: frames on the time axis) | "reshape" (code)
    mer_weight: float = 1.0  # weight of the cross-entropy
    dy_weight: float = 100.0  # weight of the dynamic-image MSE
    lr: float = 1e-4  # Adam learning rate (code)
    weight_decay: float = 1e-3  # Adam weight decay (code)
    epochs: int = 70  # the code's 500 steps of 36 ≈ 70 epochs of a CASME II training side (~250 samples)
    batch_size: int = 36  # code

    def __post_init__(self):
        if self.frame_layout not in LAYOUTS:
            raise MerDataError(f"fdp: frame_layout must be one of {', '.join(LAYOUTS)}, got {self.frame_layout!r}")
        if self.encoder.out_dim != self.size ** 2:
            raise MerDataError(f"fdp: encoder.out_dim {self.encoder.out_dim} must be size² = {self.size ** 2}")
        if self.size % 2 ** len(self.segnet):
            raise MerDataError(f"fdp: size {self.size} must divide by 2^{len(self.segnet)} (SegNet poolings)")


def paper() -> FDPConfig:
    """The paper's model: the full local-global encoder, frames on the time axis."""
    return FDPConfig()


def authors() -> FDPConfig:
    """The released code: no global blocks, dense local convolutions, reshape before the rank scorer."""
    base = paper()
    return replace(base, frame_layout="reshape",
                   encoder=replace(base.encoder, global_blocks=False, dense_local_conv=True))


def tiny() -> FDPConfig:
    """A ~170k-parameter FDP for tests and CPU runs: 32×32 frames, two stages, two SegNet stages."""
    spec = FrameEncoderSpec(stem=(8, 8, 8), depths=(1, 1), local_widths=(16, 32), global_widths=(64, 64),
                            strides=(1, 2), sr_ratios=(2, 1), head_dim=4, out_dim=32 ** 2)
    return FDPConfig(size=32, encoder=spec, hidden=32, segnet=((8, 1), (16, 1)), epochs=3, batch_size=8, lr=1e-3)


class SegNet(nn.Module):
    """Encoder (conv-BN-ReLU stages, 2×2 max-pool keeping indices) and a mirrored decoder (unpool, convs)."""

    def __init__(self, cin: int, cout: int, stages: tuple[tuple[int, int], ...]):
        super().__init__()
        def cbr(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, 1, 1), nn.BatchNorm2d(b), nn.ReLU(inplace=True))

        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        width = cin
        for w, n in stages:
            self.down.append(nn.Sequential(*[cbr(width if i == 0 else w, w) for i in range(n)]))
            width = w
        for k in reversed(range(len(stages))):
            w, n = stages[k]
            after = stages[k - 1][0] if k else None
            convs = [cbr(w, w) for _ in range(n - 1)]
            convs.append(cbr(w, after) if after else nn.Conv2d(w, cout, 3, 1, 1))
            self.up.append(nn.Sequential(*convs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, H, W) → (B, cout, H, W)
        indices = []
        for stage in self.down:
            x, idx = F.max_pool2d(stage(x), 2, 2, return_indices=True)
            indices.append(idx)
        for stage, idx in zip(self.up, reversed(indices)):
            x = stage(F.max_unpool2d(x, idx, 2, 2))
        return x


def dynamic_target(frames: torch.Tensor) -> torch.Tensor:
    """Approximate rank pooling of (B, T, 1, H, W) frames in [0, 1] → (B, H, W), min-max scaled per sample."""
    weights = torch.as_tensor(rank_pool_weights(frames.shape[1]), dtype=frames.dtype, device=frames.device)
    image = torch.einsum("t,bthw->bhw", weights, frames[:, :, 0])
    low = image.amin(dim=(1, 2), keepdim=True)
    span = image.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (image - low) / span.clamp_min(1e-12), torch.zeros_like(image))


class FDP(nn.Module):
    """x (B, T, 1, S, S) in [0, 1] → class logits and the constructed dynamic image."""

    def __init__(self, cfg: FDPConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        self.encoder = FrameEncoder(cfg.encoder)
        self.scorer = nn.Conv3d(1, cfg.rank_channels, (3, 3, cfg.frames), padding=(1, 1, 0))
        pooled = cfg.rank_channels * (cfg.size // 3) ** 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(pooled, cfg.hidden), nn.ReLU(),
                                  nn.Linear(cfg.hidden, n_classes))
        self.construct = SegNet(cfg.rank_channels, 1, cfg.segnet)

    def frame_volume(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, S²) frame features → (B, 1, S, S, T): frame t at time index t ("permute") or as the code lays it."""
        b, t, _ = feats.shape
        s = self.cfg.size
        if self.cfg.frame_layout == "reshape":
            return feats.reshape(b, 1, s, s, t)
        return feats.reshape(b, t, s, s).permute(0, 2, 3, 1).unsqueeze(1)

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """Frames (B, T, 1, S, S) → dynamic representation (B, R, S, S)."""
        b, t = x.shape[:2]
        feats = self.encoder(((x - 0.5) / 0.5).flatten(0, 1)).reshape(b, t, -1)  # (B, T, S²)
        return self.scorer(self.frame_volume(feats))[..., 0]  # (B, R, S, S)

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rep = self.represent(x)
        logits = self.head(F.max_pool2d(rep, 3))  # (B, n_classes)
        return logits, torch.sigmoid(self.construct(rep))[:, 0]  # (B, S, S)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.outputs(batch["x"])[0]

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        logits, image = self.outputs(batch["x"])
        ce = F.cross_entropy(logits, batch["label"])
        mse = F.mse_loss(image, dynamic_target(batch["x"]))
        total = self.cfg.mer_weight * ce + self.cfg.dy_weight * mse
        return total, {"ce": ce.item(), "dynamic_mse": mse.item()}


def view_options(cfg: FDPConfig) -> dict:
    return {"frames": cfg.frames, "color": False, "size": cfg.size}


register(ModelEntry(name="fdp", view="sequence", view_options=view_options,
                    presets={"paper": paper, "authors": authors, "tiny": tiny}, build=FDP))
