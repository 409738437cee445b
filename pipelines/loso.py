"""LOSO / LODO evaluation over a split manifest: every fold fine-tuned (serially or as Ray tasks), predictions pooled.

Each finished fold is written to `RUN/folds/<fold>.json` (temp name, then rename), so a rerun of the same command skips
the folds already done; the pooled metrics are computed from those files. Folds run as Ray tasks with `workers > 0` (one
GPU each where GPUs exist), or one after another in this process with `workers = 0`. A tqdm bar on stderr counts the
fine-tuning steps of all folds to do (Ray tasks report theirs through a `ray.util.queue.Queue`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from tqdm import tqdm

from manifests.io import read_manifest
from mer_data import MerDataError, __version__
from mer_data.evaluation.fold import FoldConfig
from mer_data.evaluation.fold import train_fold as fold_of_model
from mer_data.loader import read_stored
from mubert import checkpoint
from mubert.data import finite_pipeline, list_shards
from mubert.finetune import FinetuneConfig, train_fold
from mer_data.evaluation.metrics import evaluate, fold_mean, grouped
from mer_data.evaluation.report import confusion_png, results_table


@dataclass(frozen=True)
class LosoConfig:
    """`mer-eval loso`: which split, which frames, which initial weights, where to write."""

    manifest: str  # split manifest parquet from `mer-data splits`
    shards: str  # labeled shards from `mer-data ingest --labeled` (one onset/apex pair per sample)
    out: str  # run folder: folds/, results.json, predictions.csv, confusion.png
    init: str | None = None  # pretrained checkpoint (.pt or .safetensors); None = training-only baseline
    preset: str = "tiny"  # model size of the baseline (ignored with init)
    workers: int = 0  # folds in parallel as Ray tasks; 0 = one after another in this process
    ray_address: str | None = None  # an existing Ray cluster instead of a local one
    device: str = "auto"  # "auto" (cuda if available), "cpu" or "cuda"
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # μ-BERT's fold (model "mubert")
    model: str = "mubert"  # "mubert" (the μ-BERT fine-tuning above) or a registered model (mer_data.models)
    fold: FoldConfig | None = None  # a registered model's fold and selection protocol (model ≠ "mubert")

    def __post_init__(self) -> None:
        if self.model != "mubert" and (self.fold is None or self.fold.model != self.model):
            raise MerDataError(f"--model {self.model}: its fold config is missing")
        if self.model == "mubert" and self.fold is not None:
            raise MerDataError("--select / --au-input / --epochs apply to registered models, not to --model mubert "
                               "(it has --steps and --inner-val-subjects)")

    def labels(self) -> list[str]:
        """What of the test side this run uses (empty when honest)."""
        return self.fold.labels() if self.fold else []


def load_rows(manifest: str) -> tuple[list[dict], dict]:
    """The manifest's ok rows (those with a fold) and its metadata."""
    table, meta = read_manifest(Path(manifest))
    rows = [r for r in table.to_pylist() if r["status"] == "ok" and r["fold"] is not None]
    if not rows:
        raise MerDataError(f"{manifest}: no ok samples with a fold")
    return rows, meta


def load_frames(shard_dir: str, wanted: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """sample_id → (onset, apex) RGB uint8 frames from labeled shards, for the samples in `wanted`."""
    frames: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for raw_batch in finite_pipeline(list_shards(shard_dir), batch_size=64):
        for onset, apex, meta in zip(raw_batch.get("f0", []), raw_batch.get("f1", []), raw_batch.get("meta", [])):
            sid = meta.get("sample_id")
            if sid in wanted:
                frames[sid] = (onset.numpy(), apex.numpy())
    return frames


def plan(rows: list[dict], frames: dict) -> tuple[dict[str, tuple[list[dict], list[dict]]], list[str]]:
    """fold → (train rows, test rows), and the sample ids missing from the shards (left out of every fold, reported)."""
    missing = sorted(r["sample_id"] for r in rows if r["sample_id"] not in frames)
    usable = [r for r in rows if r["sample_id"] in frames]
    folds = {}
    for fold in sorted({r["fold"] for r in usable}):
        test = [r for r in usable if r["fold"] == fold]
        train = [r for r in usable if r["fold"] != fold]
        folds[fold] = (train, test)
    return folds, missing


def fold_path(out: Path, fold: str) -> Path:
    return out / "folds" / (fold.replace("/", "__") + ".json")


def run_fold(fold: str, train: list[dict], test: list[dict], frames: dict, n_classes: int, cfg: LosoConfig,
             out: Path, threads: int | None = None, on_step=None) -> str:
    """Train and predict one fold, write its record atomically; returns the record's path. `on_step(loss)` is called
    after every fine-tuning step."""
    if threads:
        torch.set_num_threads(threads)
    device = _device(cfg.device)
    init = None
    if cfg.init:
        weights, config = checkpoint.load_weights(Path(cfg.init))
        init = {"model": weights, "config": config}
    t0 = time.perf_counter()
    if cfg.fold is not None:
        record = fold_of_model(fold, cfg.manifest, cfg.shards, n_classes, cfg.fold, device, on_step)
    else:
        record = train_fold(fold, train, test, frames, n_classes, cfg.finetune, init, cfg.preset, device, on_step)
    record["seconds"] = round(time.perf_counter() - t0, 2)
    path = fold_path(out, fold)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return str(path)


def run(cfg: LosoConfig, progress: bool = True) -> dict:
    """Run every fold not yet done, pool the predictions, write results.json, predictions.csv and confusion.png.

    `progress`: show the bar over the steps of all folds, and a line per finished fold.
    """
    rows, meta = load_rows(cfg.manifest)
    classes = list(meta["classes"])
    ids = {r["sample_id"] for r in rows}
    frames = load_frames(cfg.shards, ids) if cfg.model == "mubert" else dict.fromkeys(read_stored(cfg.shards, ids))
    if not frames:
        raise MerDataError(f"--shards {cfg.shards}: none of the manifest's samples is in these shards "
                           "(were they written with `mer-data ingest --labeled` from the same dataset?)")
    folds, missing = plan(rows, frames)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = {f: v for f, v in folds.items() if not fold_path(out, f).exists()}
    _dispatch(todo, frames, len(classes), cfg, out, progress)
    records = [json.loads(fold_path(out, f).read_text()) for f in folds]
    results = aggregate(records, rows, classes, meta, cfg, missing)
    _write_outputs(out, results, records, classes)
    return results


def _dispatch(todo: dict, frames: dict, n_classes: int, cfg: LosoConfig, out: Path, progress: bool) -> None:
    total = len(todo) * cfg.finetune.steps if cfg.fold is None else None  # a registered model's steps vary by fold
    bar = tqdm(total=total, unit="step", desc=f"LOSO {len(todo)} folds", dynamic_ncols=True,
               disable=not (progress and todo))

    def step(loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def say(line: str) -> None:  # above the bar, on stderr with it
        bar.write(line, file=sys.stderr)

    try:
        if cfg.workers == 0:
            for i, (fold, (train, test)) in enumerate(todo.items(), 1):
                bar.set_description(f"fold {i}/{len(todo)} {fold}")
                run_fold(fold, train, test, frames, n_classes, cfg, out, on_step=step)
                if progress:
                    say(f"fold {fold} done")
        else:
            _dispatch_ray(todo, frames, n_classes, cfg, out, step, say if progress else None)
    finally:
        bar.close()


def _dispatch_ray(todo: dict, frames: dict, n_classes: int, cfg: LosoConfig, out: Path, step, say) -> None:
    """Folds as Ray tasks; their steps come back through a queue that the loop drains while it waits."""
    import ray  # only the parallel mode needs Ray
    from ray.util.queue import Queue

    started = not ray.is_initialized()
    if started:
        ray.init(address=cfg.ray_address or "local", num_cpus=None if cfg.ray_address else cfg.workers, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)  # Ray's start-up chatter would break the output
    try:
        gpus = 1 if torch.cuda.is_available() and cfg.device != "cpu" else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=2)(run_fold)
        frames_ref, losses = ray.put(frames), Queue()
        threads = max(1, (os.cpu_count() or 1) // max(1, cfg.workers))
        pending = {task.remote(f, tr, te, frames_ref, n_classes, cfg, out, threads, losses.put): f
                   for f, (tr, te) in todo.items()}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            while not losses.empty():
                step(losses.get_nowait())
            for ref in done:
                ray.get(ref)
                fold = pending.pop(ref)
                if say:
                    say(f"fold {fold} done")
    finally:
        if started:  # a Ray instance this call started is stopped with it; a caller's own is left running
            ray.shutdown()


def aggregate(records: list[dict], rows: list[dict], classes: list[str], meta: dict, cfg: LosoConfig,
              missing: list[str]) -> dict:
    """Pooled UF1/UAR (the headline), per class, confusion, per fold (+ their mean, labelled), per dataset."""
    by_id = {r["sample_id"]: r for r in rows}
    preds = [p for rec in records for p in rec["predictions"]]
    y_true = [p["label_id"] for p in preds]
    y_pred = [p["pred"] for p in preds]
    pooled = evaluate(y_true, y_pred, classes)
    folds = grouped(y_true, y_pred, [by_id[p["sample_id"]]["fold"] for p in preds], classes)
    results = {
        "uf1": pooled["uf1"], "uar": pooled["uar"], "n": pooled["n"], "classes": classes,
        "accuracy": float(np.trace(np.array(pooled["confusion"]))) / max(1, pooled["n"]),
        "per_class": pooled["per_class"], "absent": pooled["absent"], "confusion": pooled["confusion"],
        "folds": {f: {"n": v["n"], "uf1": v["uf1"], "uar": v["uar"], "absent": v["absent"]} for f, v in folds.items()},
        "fold_mean": fold_mean(folds),
        "protocol": meta.get("protocol"), "dataset": meta.get("dataset"), "manifest": cfg.manifest,
        "init": cfg.init, "baseline": cfg.init is None, "missing_from_shards": missing,
        "model": cfg.model, "optimistic": cfg.labels(),
        "epochs_kept": {rec["fold"]: rec["epoch_kept"] for rec in records if "epoch_kept" in rec},
        "params": next((rec["params"] for rec in records if "params" in rec), None),
        "seconds_per_step": (float(np.mean([rec["seconds_per_step"] for rec in records])) if records
                             and all("seconds_per_step" in rec for rec in records) else None),
        "config": {k: v for k, v in asdict(cfg).items()}, "version": __version__,
    }
    datasets = [by_id[p["sample_id"]]["dataset"] for p in preds]
    if len(set(datasets)) > 1:
        per = grouped(y_true, y_pred, datasets, classes)
        results["per_dataset"] = {d: {"n": v["n"], "uf1": v["uf1"], "uar": v["uar"]} for d, v in per.items()}
    return results


def _write_outputs(out: Path, results: dict, records: list[dict], classes: list[str]) -> None:
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, out / "results.json")
    lines = ["sample_id,label_id,pred,fold"]
    lines += [f"{p['sample_id']},{p['label_id']},{p['pred']},{rec['fold']}" for rec in records for p in rec["predictions"]]
    (out / "predictions.csv").write_text("\n".join(lines) + "\n")
    confusion_png(np.array(results["confusion"]), classes, out / "confusion.png")
    (out / "results.txt").write_text(results_table(results) + "\n")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MerDataError("--device cuda: no CUDA device is available")
    return torch.device(name)
