"""Frame-pair batches from the ingest shards: a webdataset pipeline decoded in DataLoader workers, converted on the device.

Shards are `DIR/{shard:06d}.tar` holding `KEY.f0.jpg` (I_t), `KEY.f1.jpg` (I_{t+δ}) and `KEY.json`; a shard counts as
complete once its `{shard:06d}_stats.json` (written last by the ingest) exists.

Pretraining reads an endless resampled stream (`wds.ResampledShards`) cut into epochs of a fixed number of batches per
worker (`with_epoch`). Each (rank, worker) draws its own shards with a seed made from (seed, epoch, rank, worker) — the
resampled form of splitting by node and worker — and shuffles with a seeded buffer, so the batch sequence of every rank is
a function of (seed, epoch, world size, workers, batch size) alone. The DataLoader takes batches from its workers round
robin, so resuming at batch c of an epoch is exact: worker w replaces its first ceil((c - w) / workers) batches, still
undecoded, by empty skip markers, and the trainer drops the c markers. `finite_loader` reads every shard once instead
(split by node and worker), for evaluation.

Only jpg/png and json members are read (never pickle): images are decoded with OpenCV in the workers to uint8 tensors
(B, H, W, 3) and turned into float (B, 3, H, W) in [0, 1] on the device by `to_device`. An unreadable shard or sample is
skipped with a counted warning (each batch carries the count); a stream that yields nothing but errors raises
`MerDataError` instead of spinning forever.
"""

from __future__ import annotations

import json
import logging
import math
import random
import tarfile
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import webdataset as wds
from torch.utils.data import DataLoader

from mer_data import MerDataError

log = logging.getLogger(__name__)

IMAGE_EXTS = ("jpg", "png")  # frame members decoded, with explicit decoders; everything else but json is never read


def list_shards(shard_dir: Path | str) -> list[str]:
    """The complete shards of `shard_dir`, sorted: `*.tar` files whose `_stats.json` done marker exists."""
    root = Path(shard_dir)
    if not root.is_dir():
        raise MerDataError(f"--shards {root}: no such folder")
    tars = sorted(root.glob("*.tar"))
    done = [t for t in tars if t.with_name(f"{t.stem}_stats.json").exists()]
    if not done:
        raise MerDataError(f"--shards {root}: no complete shard (a .tar with its _stats.json) in this folder")
    if len(done) < len(tars):
        log.warning("%s: skipping %d shard(s) without a _stats.json (ingest unfinished)", root, len(tars) - len(done))
    return [str(t) for t in done]


def count_samples(shards: list[str]) -> int:
    """Number of frame pairs in `shards`: from each stats file when it says, else by listing the tar's json members."""
    total = 0
    for shard in shards:
        stats_path = Path(shard).with_name(f"{Path(shard).stem}_stats.json")
        stats = json.loads(stats_path.read_text())
        n = stats.get("written") if isinstance(stats, dict) else None  # pairs in the tar, per the ingest
        if not isinstance(n, int):
            try:
                with tarfile.open(shard) as tar:
                    n = sum(1 for name in tar.getnames() if name.endswith(".json"))
            except (OSError, tarfile.TarError):
                n = 0  # unreadable: the loader will skip it with a warning
        total += n
    return total


def decode_image(data: bytes) -> np.ndarray:
    """jpg/png bytes → RGB uint8 (H, W, 3); a grayscale file is expanded to three equal channels."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a decodable jpg/png image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _member(sample: dict, name: str) -> bytes:
    for ext in IMAGE_EXTS:
        if f"{name}.{ext}" in sample:
            return sample[f"{name}.{ext}"]
    raise ValueError(f"sample {sample.get('__key__')!r} in {sample.get('__url__')} has no {name}.jpg/png")


def decode_pair(sample: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """One raw webdataset sample → (I_t, I_{t+δ}) as RGB uint8 (H, W, 3) and its json metadata."""
    f0, f1 = decode_image(_member(sample, "f0")), decode_image(_member(sample, "f1"))
    if f0.shape != f1.shape:
        raise ValueError(f"sample {sample.get('__key__')!r}: f0 {f0.shape} and f1 {f1.shape} differ")
    meta = json.loads(sample["json"]) if "json" in sample else {}
    meta.setdefault("key", sample.get("__key__"))
    return f0, f1, meta


def _wanted_member(name: str) -> bool:
    """Tar members worth reading: f0, f1 and the json (so a pickle member is never even loaded, nor the other frames
    and the stored flow of a labeled sample)."""
    parts = name.split(".")
    return parts[-1] == "json" or (parts[-1] in IMAGE_EXTS and len(parts) >= 3 and parts[-2] in ("f0", "f1"))


def worker_position() -> tuple[int, int, int, int]:
    """(rank, world_size, worker, num_workers) of the calling process, as webdataset sees it."""
    return wds.utils.pytorch_worker_info()


class ErrorCounter:
    """webdataset handler: log each unreadable shard or sample with a running count, and keep going.

    Gives up with `MerDataError` after `limit` errors in a row without one good sample: a folder of corrupt shards
    would otherwise be resampled forever.
    """

    def __init__(self, limit: int = 1000):
        self.limit = limit  # consecutive errors tolerated
        self.total = 0  # errors in this worker since it started
        self.reported = 0  # part of `total` already attached to a batch
        self.in_a_row = 0  # errors since the last good sample

    def __call__(self, exn: Exception) -> bool:
        self.total += 1
        self.in_a_row += 1
        log.warning("skipped unreadable shard or sample (%d so far in this worker): %s", self.total, exn)
        if self.in_a_row >= self.limit:
            raise MerDataError(f"{self.in_a_row} unreadable shards or samples in a row, last: {exn}; are the shards corrupt?")
        return True

    def good(self) -> None:
        self.in_a_row = 0

    def take_new(self) -> int:
        """Errors since the previous call (attached to the next batch so the trainer can count them)."""
        new, self.reported = self.total - self.reported, self.total
        return new


class DecodeBatches:
    """Pipeline stage: lists of raw samples → batch dicts; the first `skip` batches of this worker pass undecoded as
    skip markers ({"skipped": 0}), a batch with no decodable sample as {"skipped": n}."""

    def __init__(self, counter: ErrorCounter, skip_batches: int = 0):
        self.counter = counter
        self.skip_batches = skip_batches  # batches the trainer already consumed in this epoch (all workers)

    def __call__(self, src):
        _, _, worker, num_workers = worker_position()
        mine = max(0, math.ceil((self.skip_batches - worker) / num_workers))  # round robin: batches i ≡ worker mod n
        for i, raw in enumerate(src):
            yield {"skipped": 0} if i < mine else self.decode(raw)

    def decode(self, raw: list[dict]) -> dict:
        f0s, f1s, metas = [], [], []
        for sample in raw:
            try:
                f0, f1, meta = decode_pair(sample)
                if f0s and f0.shape != f0s[0].shape:
                    raise ValueError(f"sample {meta['key']!r}: size {f0.shape} differs from the batch's {f0s[0].shape}")
            except Exception as exn:  # a bad sample becomes a counted warning, the batch goes on without it
                self.counter(exn)
                continue
            self.counter.good()
            f0s.append(f0), f1s.append(f1), metas.append(meta)
        batch: dict = {"skipped": self.counter.take_new()}
        if f0s:
            batch.update(f0=torch.from_numpy(np.stack(f0s)), f1=torch.from_numpy(np.stack(f1s)), meta=metas)
        return batch


class SeededShuffle:
    """Pipeline stage: a shuffle buffer whose seed is made from (seed, epoch, rank, worker), inside the worker."""

    def __init__(self, bufsize: int, seed: int, epoch: int):
        self.bufsize, self.seed, self.epoch = bufsize, seed, epoch

    def __call__(self, src):
        rank, _, worker, _ = worker_position()
        rng = random.Random(wds.utils.make_seed(self.seed, self.epoch, rank, worker))
        return wds.shuffle(self.bufsize, self.bufsize, rng=rng)(src)


class MarkGood:
    """Pipeline stage: a sample read from a tar resets the counter's run of errors (it is not decoded yet)."""

    def __init__(self, counter: ErrorCounter):
        self.counter = counter

    def __call__(self, src):
        for sample in src:
            self.counter.good()
            yield sample


def pretrain_pipeline(shards: list[str], *, batch_size: int, batches_per_worker: int, seed: int, epoch: int,
                      skip_batches: int = 0, shuffle_buffer: int = 1000, error_limit: int = 1000) -> wds.DataPipeline:
    """One epoch of the resampled stream: `batches_per_worker` batches of `batch_size` pairs in each worker."""
    counter = ErrorCounter(error_limit)
    return wds.DataPipeline(
        # deterministic: seeded from (worker_seed() = rank * 1000 + worker, this object's first epoch, seed ⊕ epoch)
        wds.ResampledShards(shards, seed=wds.utils.make_seed(seed, epoch), deterministic=True),
        wds.tarfile_to_samples(handler=counter, select_files=_wanted_member),
        MarkGood(counter),
        SeededShuffle(shuffle_buffer, seed, epoch),
        wds.batched(batch_size, collation_fn=list, partial=False),  # raw bytes: decoded below once known to be wanted
        DecodeBatches(counter, skip_batches),
    ).with_epoch(batches_per_worker)


def finite_pipeline(shards: list[str], *, batch_size: int, error_limit: int = 1000) -> wds.DataPipeline:
    """Every sample of `shards` once, in shard order, split by node and by worker; the last batch may be short."""
    counter = ErrorCounter(error_limit)
    return wds.DataPipeline(
        wds.SimpleShardList(shards),
        wds.split_by_node,
        wds.split_by_worker,
        wds.tarfile_to_samples(handler=counter, select_files=_wanted_member),
        MarkGood(counter),
        wds.batched(batch_size, collation_fn=list, partial=True),
        DecodeBatches(counter),
    )


def _as_is(batch):
    return batch  # batching happens in the pipeline (batch_size=None)


def make_loader(pipeline: wds.DataPipeline, *, workers: int, device: torch.device, seed: int = 0) -> DataLoader:
    """A DataLoader over a pipeline that yields whole batches, with pinned memory for CUDA copies.

    The loader draws its worker base seed from its own generator, never from torch's default RNG, so creating one does
    not disturb the model's random swapping and cropping.
    """
    return DataLoader(pipeline, batch_size=None, num_workers=workers, collate_fn=_as_is,
                      pin_memory=device.type == "cuda", prefetch_factor=4 if workers else None,
                      generator=torch.Generator().manual_seed(seed))


def to_device(frames: torch.Tensor, device: torch.device, size: int | None = None) -> torch.Tensor:
    """uint8 (B, H, W, 3) → float (B, 3, size, size) in [0, 1] on `device`; converted and resized there, not on the CPU."""
    x = frames.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x
