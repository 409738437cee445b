"""A SOFTNet-style learned spotter (Liong et al. 2021, "Shallow Optical Flow Three-Stream CNN for Macro- and
Micro-Expression Spotting from Long Videos"), trained leave-one-subject-out.

As in SOFTNet: flow from frame t to t+k on the face, with k about half an expression's length; the input is
(u, v, optical strain) resized to 42×42; three shallow convolution streams (3, 5 and 8 filters), one per channel,
concatenated, pooled, and a dense layer of 400 regress one score per frame; the score is smoothed over k frames,
thresholded at mean + p·(max − mean) over the video, and each peak (at least k apart) becomes an interval around
the window's middle frame, ± k.

Where we differ (we read the paper's description, not their notebook): the flow is on our tracked, aligned 64 px face
(cv2 DualTVL1 or Farneback), not on their 128 px crops with the nose masked and the eye and mouth regions stitched;
the pseudo-label of the window [t, t+k] is the fraction of it inside a labelled interval (theirs thresholds the
overlap); one model per fold is trained for a fixed number of epochs with Adam and MSE, with no augmentation; windows
off the tracked face are gaps, neither trained on nor scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from mer_data.spot.features import VideoFeatures, compute_flow, optical_strain
from mer_data.spot.peaks import Interval, moving_average, peak_intervals, relative_threshold

SIDE = 42  # the network's input side, px (SOFTNet's)


@dataclass(frozen=True)
class SoftNetConfig:
    """SOFTNet settings."""

    k_s: float = 0.2  # flow distance in seconds (about half a micro-expression)
    k: int = 0  # flow distance in frames; 0 = round(k_s · fps)
    p: float = 0.55  # peak threshold = mean + p·(max − mean) of the smoothed score
    size: int = 64  # aligned face side, px, before resizing to 42
    flow: str = "tvl1"  # "tvl1" | "farneback"
    epochs: int = 10  # training epochs per fold
    batch: int = 64  # training batch size
    lr: float = 5e-4  # Adam learning rate
    seed: int = 0  # weights and batch order

    def frames(self, fps: float) -> int:
        return self.k if self.k > 0 else max(1, round(self.k_s * fps))


class SoftNetExtractor:
    """Windows (t, t+k) of gray faces → (u, v, strain) at 42×42, flattened."""

    gray, width = True, 3 * SIDE * SIDE

    def __init__(self, cfg: SoftNetConfig, fps: float):
        self.cfg, self.k = cfg, cfg.frames(fps)
        self.offsets, self.size = (0, self.k), cfg.size

    def __call__(self, faces: list[np.ndarray]) -> np.ndarray:
        flow = compute_flow(faces[0], faces[1], self.cfg.flow)
        planes = [flow[..., 0], flow[..., 1], optical_strain(flow)]
        return np.stack([cv2.resize(x, (SIDE, SIDE), interpolation=cv2.INTER_AREA) for x in planes]).ravel()


class SoftNet(nn.Module):
    """Three one-channel convolution streams → concatenated → pooled → dense 400 → one score."""

    def __init__(self):
        super().__init__()
        self.streams = nn.ModuleList(
            nn.Sequential(nn.Conv2d(1, c, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 3)) for c in (3, 5, 8))
        self.head = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 7 * 7, 400), nn.ReLU(),
                                  nn.Linear(400, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, 42, 42) → (B,)
        x = torch.cat([s(x[:, i: i + 1]) for i, s in enumerate(self.streams)], dim=1)  # (B, 16, 14, 14)
        return self.head(x)[:, 0]


def pseudo_labels(frames: np.ndarray, k: int, intervals: list[tuple[int, int]]) -> np.ndarray:
    """For each window [t, t+k]: the largest fraction of it inside one labelled interval (onset, offset)."""
    out = np.zeros(frames.size, np.float32)
    for a, b in intervals:
        inside = np.clip(np.minimum(frames + k, b) - np.maximum(frames, a) + 1, 0, None) / (k + 1)
        out = np.maximum(out, inside.astype(np.float32))
    return out


def train(x: np.ndarray, y: np.ndarray, cfg: SoftNetConfig) -> SoftNet:
    """One fold's model on inputs x (n, 3·42·42) and targets y (n,).

    Trains on one thread: a net this shallow on batches of 64 gains nothing from more, and on a busy 2-core machine
    two threads ran 10x slower (20 s against 2 s for 8 epochs of 240 windows)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(x, y, cfg)
    finally:
        torch.set_num_threads(threads)


def _fit(x: np.ndarray, y: np.ndarray, cfg: SoftNetConfig) -> SoftNet:
    torch.manual_seed(cfg.seed)
    model = SoftNet()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    xs, ys = torch.from_numpy(x.reshape(-1, 3, SIDE, SIDE)), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(xs), generator=gen).split(cfg.batch):
            loss = nn.functional.mse_loss(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def score(model: SoftNet, feats: VideoFeatures) -> np.ndarray:
    """The model's score per row of a video (NaN on gaps)."""
    out = np.full(len(feats.frames), np.nan)
    if feats.valid.any():
        x = torch.from_numpy(np.ascontiguousarray(feats.values[feats.valid]).reshape(-1, 3, SIDE, SIDE))
        out[feats.valid] = model(x).numpy()
    return out


def spot(scores: np.ndarray, feats: VideoFeatures, cfg: SoftNetConfig) -> list[Interval]:
    """Intervals from one video's scores: smoothed, thresholded, peaks k apart, each its window's middle ± k."""
    k = cfg.frames(feats.fps)
    smooth = moving_average(scores, feats.valid, k)
    ok = feats.valid & np.isfinite(smooth)
    found = peak_intervals(smooth, feats.frames + k // 2, ok, relative_threshold(smooth, ok, cfg.p), k, k)
    return found


def loso(videos: dict[str, tuple[str, VideoFeatures]], labels: dict[str, list[tuple[int, int]]],
         cfg: SoftNetConfig) -> dict[str, list[Interval]]:
    """Intervals per video, each from the model trained on the other subjects' videos.

    videos: video id → (subject, its SoftNetExtractor features); labels: video id → labelled (onset, offset)."""
    out = {}
    for subject in sorted({s for s, _ in videos.values()}):
        train_ids = [v for v, (s, _) in videos.items() if s != subject]
        xs = [videos[v][1].values[videos[v][1].valid] for v in train_ids]
        ys = [pseudo_labels(videos[v][1].frames[videos[v][1].valid], cfg.frames(videos[v][1].fps), labels.get(v, []))
              for v in train_ids]
        model = train(np.concatenate(xs), np.concatenate(ys), cfg) if xs else SoftNet().eval()
        for v, (s, feats) in videos.items():
            if s == subject:
                out[v] = spot(score(model, feats), feats, cfg)
    return out
