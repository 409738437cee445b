"""μ-BERT pretraining on frame-pair shards: one loop for one CPU process, one GPU, or many GPUs/nodes under torchrun.

    mer-train --shards DIR --preset tiny --steps 200 --batch-size 16 --out runs/tiny

AdamW with linear warmup and cosine decay to 0, gradient clipping, bf16 autocast on CUDA (float32 on CPU), DDP when
WORLD_SIZE > 1. Rank 0 alone writes `RUN/config.json`, `RUN/metrics.jsonl` (one JSON object per logged step),
`RUN/checkpoint-<step>.pt` and `RUN/checkpoint-last.pt`, and shows the progress bar.

Exact resume. The batch sequence is a function of (seed, epoch, world size, workers, batch size) (see `mubert/data.py`),
and torch is re-seeded from (seed, step, rank) before every step, so the model's random swapping and cropping do not
depend on history either. A checkpoint records the step and the stream position (epoch, batches drawn); `--resume`
rebuilds that epoch's stream and drops the batches already drawn, without decoding them. With the same seed, world size,
workers, batch size and total steps, the resumed run logs the same losses as an uninterrupted one (on CPU bit for bit;
on GPU up to the nondeterminism of its kernels).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import webdataset as wds
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mer_data import MerDataError
from mer_data.shards import write_json
from mubert import checkpoint, data, dist
from mubert.config import PRESETS, MuBERTConfig, preset_config
from mubert.model import MuBERT


class NonFiniteLossError(MerDataError):
    """The loss or its gradient became NaN/inf: the run stops before the optimizer step spreads it into the weights."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one `mer-train` run; written to `RUN/config.json` and into every checkpoint."""

    shards: str = "shards"  # folder of {shard:06d}.tar (+ _stats.json) written by `mer-data ingest`
    out: str = "runs/mubert"  # run folder: config.json, metrics.jsonl, checkpoints, model.safetensors
    preset: str = "tiny"  # OBJECTIVE-SIZE (mubert/config.py): mb1|mb2|mb3|mae|authors × tiny (CPU, tests, demo)|base
    #                       (the paper's d=512, 4+4 blocks, 224 px); a bare size is mb3, the paper's full μ-BERT
    model: tuple[tuple[str, object], ...] = ()  # MuBERTConfig fields overriding the preset, as (name, value) pairs
    steps: int = 0  # optimizer steps; 0 = derive them from `epochs`
    epochs: float = 1.0  # passes over the shards' pairs (nominal: the stream is resampled), used when steps == 0
    batch_size: int = 64  # frame pairs per process and step (the paper: 64 per GPU)
    lr: float = 1e-4  # peak learning rate (the paper: 1e-4, cosine decay to 0)
    warmup: float = 0.05  # fraction of the steps with a linear warmup from 0 to lr
    weight_decay: float = 0.05  # AdamW decoupled weight decay, on matrices only (MAE's setting)
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas (MAE's setting; the paper names only AdamW)
    clip_grad: float = 1.0  # max global L2 norm of the gradients; 0 = no clipping
    precision: str = "auto"  # "auto": bf16 autocast on CUDA GPUs that have it, else float32; "fp32": float32 always
    workers: int = 4  # DataLoader worker processes per rank decoding jpgs (0 = in the training process)
    shuffle_buffer: int = 1000  # pairs held by each worker's shuffle buffer
    seed: int = 0  # seeds the weights, the data stream and every step's swapping/cropping
    save_every: int = 1000  # steps between checkpoints (the last step is always saved)
    log_every: int = 10  # steps between metrics.jsonl lines (the last step is always logged)
    resume: bool = False  # continue from RUN/checkpoint-last.pt
    stop_at: int = 0  # end this invocation after this step, with a checkpoint (to --resume later); 0 = run to the end
    export_safetensors: bool = False  # also write RUN/model.safetensors at the end
    tensorboard: bool = False  # also write TensorBoard scalars to RUN/tensorboard
    device: str = "auto"  # "auto" (cuda if available), "cuda" or "cpu"

    def __post_init__(self) -> None:
        checks = [
            (self.preset in PRESETS, f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}"),
            (self.steps >= 0 and self.epochs > 0, "--steps must be ≥ 0 and --epochs > 0"),
            (self.batch_size >= 1, "--batch-size must be ≥ 1"),
            (self.lr > 0 and 0 <= self.warmup < 1, "--lr must be > 0 and --warmup in [0, 1)"),
            (self.clip_grad >= 0 and self.weight_decay >= 0, "--clip-grad and --weight-decay must be ≥ 0"),
            (self.precision in ("auto", "fp32"), f"--precision must be auto or fp32, got {self.precision!r}"),
            (self.workers >= 0 and self.shuffle_buffer >= 1, "--workers must be ≥ 0 and --shuffle-buffer ≥ 1"),
            (self.save_every >= 1 and self.log_every >= 1, "--save-every and --log-every must be ≥ 1"),
            (self.stop_at >= 0, "--stop-at must be ≥ 0"),
            (self.device in ("auto", "cuda", "cpu"), f"--device must be auto, cuda or cpu, got {self.device!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise MerDataError(message)
        self.model_config()  # an unknown or invalid model field fails here, before any work

    def model_config(self) -> MuBERTConfig:
        """The preset with the `model` overrides applied."""
        overrides = dict(self.model)
        known = set(MuBERTConfig.__dataclass_fields__)
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise MerDataError(f"unknown model setting(s) {unknown}; known: {sorted(known)}")
        return preset_config(self.preset, **overrides)


def parse_model_settings(items: list[str]) -> tuple[tuple[str, object], ...]:
    """["dim=256", "poi=dino", "swap_aspect=[0.5, 2]"] → (("dim", 256), ...): JSON values, else plain strings."""
    pairs = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise MerDataError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        pairs.append((key.strip(), tuple(value) if isinstance(value, list) else value))
    return tuple(pairs)


@dataclass(frozen=True)
class Plan:
    """How the run's steps map onto the resampled stream."""

    total_steps: int  # optimizer steps of the whole run
    steps_per_epoch: int  # ceil(pairs / (batch_size · world_size)): a nominal pass over the shards
    batches_per_worker: int  # each DataLoader worker's share of an epoch (`with_epoch`)


@dataclass
class TrainResult:
    """What a run produced (every rank returns one; `model` is that rank's replica)."""

    rank: int  # this process's rank: only rank 0 reports
    start: int  # the step this invocation started from (0, or the checkpoint's with --resume)
    step: int  # the step it ended at
    loss: float | None  # mean loss of the last logged interval (None if nothing was logged)
    run_dir: Path
    checkpoint: Path | None  # the last checkpoint written (rank 0), else None
    model: MuBERT


def make_plan(cfg: TrainConfig, pairs: int, world_size: int) -> Plan:
    steps_per_epoch = max(1, math.ceil(pairs / (cfg.batch_size * world_size)))
    total = cfg.steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    return Plan(total, steps_per_epoch, math.ceil(steps_per_epoch / max(1, cfg.workers)))


def warmup_cosine(step: int, total: int, warm: int) -> float:
    """Multiplier of the peak lr at 0-based `step` of `total`: linear warmup over `warm` steps, then cosine decay to 0."""
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_at(step: int, total: int, peak: float, warmup: float) -> float:
    """Learning rate for the optimizer step with 0-based index `step`; `warmup` is a fraction of `total`."""
    return peak * warmup_cosine(step, total, int(warmup * total))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; weight decay on weight matrices only (not on biases, norms, the contextual token)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=device.type == "cuda")


def resolved_config(cfg: TrainConfig, plan: Plan, world_size: int, shards: list[str]) -> dict:
    return {"train": asdict(cfg), "model": cfg.model_config().to_dict(), "world_size": world_size,
            "plan": asdict(plan), "shards": [Path(s).name for s in shards]}


def _check_resumable(saved: dict, now: dict, path: Path) -> None:
    """A resumed run must rebuild the same stream and model; name the first setting that differs."""
    pairs = [("--preset/model settings", saved["model"], now["model"]), ("world size", saved["world_size"],
             now["world_size"]), ("shard list", saved["shards"], now["shards"])]
    pairs += [(f"--{k.replace('_', '-')}", saved["train"][k], now["train"][k])
              for k in ("seed", "batch_size", "workers", "shuffle_buffer")]
    for name, old, new in pairs:
        if json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True):
            raise MerDataError(f"--resume: {name} differs from {path} ({old!r} there, {new!r} now)")


def _stream(cfg: TrainConfig, info: dist.DistInfo, shards: list[str], plan: Plan, epoch: int, drawn: int):
    """Yield (epoch, batches drawn in it, batch) forever, starting after batch `drawn` of `epoch`."""
    while True:
        pipe = data.pretrain_pipeline(shards, batch_size=cfg.batch_size, batches_per_worker=plan.batches_per_worker,
                                      seed=cfg.seed, epoch=epoch, skip_batches=drawn,
                                      shuffle_buffer=cfg.shuffle_buffer)
        loader = data.make_loader(pipe, workers=cfg.workers, device=info.device,
                                  seed=wds.utils.make_seed(cfg.seed, epoch, info.rank))
        try:
            for i, batch in enumerate(loader):
                if i >= drawn:  # the first `drawn` items are skip markers: batches consumed before the resume
                    yield epoch, i + 1, batch
        except MerDataError as exn:  # re-raised from a worker with its traceback inside: keep the message only
            last = [line for line in str(exn).splitlines() if line.strip()][-1]
            raise MerDataError(last.split("MerDataError: ", 1)[-1]) from None
        epoch, drawn = epoch + 1, 0


def _all_have_data(has: bool, info: dist.DistInfo) -> bool:
    """Every rank must step together: a batch with no decodable pair on any rank makes all of them skip it."""
    if info.world_size == 1:
        return has
    flag = dist.all_reduce_sum(torch.tensor([0.0 if has else 1.0], device=info.device))
    return bool(flag.item() == 0)


class Meter:
    """Loss sums kept on the device between log lines, reduced over the ranks when a line is written."""

    def __init__(self, device: torch.device):
        self.device = device
        self.names: list[str] | None = None  # the model's loss terms, fixed at the first step
        self.reset()

    def reset(self) -> None:
        self.sums, self.steps, self.pairs, self.skipped, self.wait = None, 0, 0, 0, 0.0
        self.t0 = time.perf_counter()

    def add(self, out: dict, pairs: int) -> None:
        if self.names is None:
            self.names = sorted(k for k, v in out.items() if k.startswith("loss") and v.dim() == 0)
        vals = torch.stack([out[k].detach().float() for k in self.names])
        self.sums = vals if self.sums is None else self.sums + vals
        self.steps, self.pairs = self.steps + 1, self.pairs + pairs

    def summary(self) -> dict:
        """Means over the interval and the ranks, pairs/s over all ranks, this rank's fraction waiting for data."""
        counts = torch.tensor([self.steps, self.pairs, self.skipped], device=self.device, dtype=torch.float64)
        sums = dist.all_reduce_sum(self.sums.double()).tolist()
        steps, pairs, skipped = dist.all_reduce_sum(counts).tolist()
        elapsed = time.perf_counter() - self.t0
        out = {k: s / steps for k, s in zip(self.names, sums)}
        out.update(samples_per_s=pairs / elapsed, data_wait_frac=min(1.0, self.wait / elapsed),
                   skipped=int(skipped))
        self.reset()
        return out


class RunLog:
    """Rank 0's outputs: metrics.jsonl (trimmed back to the resumed step), the tqdm bar, optional TensorBoard."""

    def __init__(self, run_dir: Path, info: dist.DistInfo, cfg: TrainConfig, start: int, total: int):
        self.active = info.is_main
        self.path = run_dir / "metrics.jsonl"
        self.bar = tqdm(total=total, initial=start, disable=not self.active, dynamic_ncols=True, desc="mer-train")
        self.tb = None
        if not self.active:
            return
        if self.path.exists():  # lines past the checkpoint came from the interrupted run: they will be redone
            lines = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= start]
            self.path.write_text("".join(ln + "\n" for ln in lines) if start else "")
        self.file = self.path.open("a")
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise MerDataError("--tensorboard needs the tensorboard package: pip install 'mer-data[tensorboard]'")
            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start + 1)

    def advance(self) -> None:
        self.bar.update(1)

    def write(self, record: dict) -> None:
        if not self.active:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        self.bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
        if self.tb is not None:
            for k, v in record.items():
                if k not in ("step", "epoch"):
                    self.tb.add_scalar(f"train/{k}", v, record["step"])

    def close(self) -> None:
        self.bar.close()
        if self.active:
            self.file.close()
            if self.tb is not None:
                self.tb.close()


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, f0: torch.Tensor, f1: torch.Tensor,
               cfg: TrainConfig, step: int) -> tuple[dict, float]:
    """One optimizer step on (I_t, I_{t+δ}); returns the model's losses and the global gradient norm.

    Raises NonFiniteLossError (on every rank at once: the norm is computed from the all-reduced gradients) before the
    optimizer could write NaN/inf into the weights.
    """
    amp = f0.device.type == "cuda" and cfg.precision == "auto" and torch.cuda.is_bf16_supported()
    with torch.autocast(device_type=f0.device.type, dtype=torch.bfloat16, enabled=amp):
        out = model(f0, f1)
    out["loss"].backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad or math.inf)
    if not torch.isfinite(norm):
        terms = ", ".join(f"{k}={v.item():.4g}" for k, v in out.items() if v.dim() == 0)
        raise NonFiniteLossError(f"non-finite loss or gradient at step {step + 1} ({terms}, grad norm {norm.item()}); "
                                 f"the run stopped: lower --lr or resume from the last checkpoint")
    opt.step()
    opt.zero_grad(set_to_none=True)
    return out, norm.item()


def _save(run_dir: Path, model: MuBERT, opt: torch.optim.Optimizer, step: int, epoch: int, drawn: int,
          config: dict) -> Path:
    return checkpoint.save_run_checkpoint(run_dir, {
        "format": checkpoint.FORMAT, "step": step, "data": {"epoch": epoch, "batch": drawn},
        "model": model.state_dict(), "optimizer": opt.state_dict(), "config": config})


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) pretraining as configured; under torchrun every process calls this."""
    info = dist.setup(cfg.device)
    try:
        return _run(cfg, info)
    finally:
        dist.cleanup()


def _run(cfg: TrainConfig, info: dist.DistInfo) -> TrainResult:
    run_dir, shards = Path(cfg.out), data.list_shards(cfg.shards)
    plan = make_plan(cfg, data.count_samples(shards), info.world_size)
    config = resolved_config(cfg, plan, info.world_size, shards)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = MuBERT(cfg.model_config()).to(info.device)
    opt = make_optimizer(model, cfg, info.device)
    start, epoch, drawn = 0, 0, 0
    if cfg.resume:
        state = checkpoint.load(run_dir / checkpoint.LAST, map_location=info.device)
        _check_resumable(state["config"], config, run_dir / checkpoint.LAST)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, epoch, drawn = state["step"], state["data"]["epoch"], state["data"]["batch"]
    elif info.is_main and (run_dir / checkpoint.LAST).exists():
        raise MerDataError(f"--out {run_dir} already holds a run: pass --resume to continue it, or another --out")
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", config)
    net = DistributedDataParallel(model, device_ids=[info.device.index] if info.device.type == "cuda" else None) \
        if info.world_size > 1 else model
    log = RunLog(run_dir, info, cfg, start, plan.total_steps)
    stream = _stream(cfg, info, shards, plan, epoch, drawn)
    try:
        step, loss, last = _loop(cfg, info, plan, net, model, opt, stream, log, config, start)
    finally:
        stream.close()
        log.close()
    if cfg.export_safetensors and info.is_main:
        checkpoint.export_safetensors(model.state_dict(), run_dir / "model.safetensors", config)
    return TrainResult(info.rank, start, step, loss, run_dir, last, model)


def _loop(cfg: TrainConfig, info: dist.DistInfo, plan: Plan, net: torch.nn.Module, model: MuBERT,
          opt: torch.optim.Optimizer, stream, log: RunLog, config: dict, step: int):
    """Steps until the plan's last step (or --stop-at); returns (step, last logged loss, last checkpoint path)."""
    meter, loss, last, size = Meter(info.device), None, None, model.cfg.image_size
    end = min(plan.total_steps, cfg.stop_at or plan.total_steps)
    while step < end:
        t0 = time.perf_counter()
        epoch, drawn, batch = next(stream)
        meter.wait += time.perf_counter() - t0
        meter.skipped += batch["skipped"]
        if not _all_have_data("f0" in batch, info):
            continue
        f0, f1 = data.to_device(batch["f0"], info.device, size), data.to_device(batch["f1"], info.device, size)
        lr = lr_at(step, plan.total_steps, cfg.lr, cfg.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        torch.manual_seed(wds.utils.make_seed(cfg.seed, step, info.rank))  # this step's swaps and crops
        model.set_progress(step, plan.total_steps)  # DINO's teacher temperature and momentum schedules
        out, norm = train_step(net, opt, f0, f1, cfg, step)
        model.ema_update()
        step += 1
        meter.add(out, f0.shape[0])
        log.advance()
        if step % cfg.log_every == 0 or step == end:
            record = {"step": step, "epoch": epoch, **meter.summary(), "lr": lr, "grad_norm": norm}
            loss = record["loss"]
            log.write(record)
        if info.is_main and (step % cfg.save_every == 0 or step == end):
            last = _save(Path(cfg.out), model, opt, step, epoch, drawn, config)
    return step, loss, last
