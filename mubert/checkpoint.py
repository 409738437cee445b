"""Checkpoints: atomic writes by rank 0, loading with `torch.load(weights_only=True)`, safetensors export of the weights.

A training checkpoint is a plain dict of tensors and Python scalars/containers (so `weights_only` loading accepts it):
    format     2
    step       optimizer steps taken
    data       {"epoch", "batch"}: the stream position (batches drawn in that epoch on every rank)
    model      the model's state_dict (unwrapped from DDP)
    optimizer  the AdamW state_dict
    config     the resolved run configuration: {"train", "model", "world_size", "plan", "shards"}; a checkpoint converted
               by `mer-eval import-checkpoint` has {"model", "imported"} (source file, its epoch and args, notes)
Format 1 (before DMA followed Eq. 8) still loads when its model had no DMA and no DINO head (nothing those changed); any
other format-1 file is refused with a one-line reason (`upgrade`).
There is no loss scaler: bf16 autocast keeps float32's exponent range and needs none. Nor is there RNG state: the trainer
re-seeds torch from (seed, step, rank) before every step, so a resumed run draws the same swaps and crops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mer_data import MerDataError
from mubert.config import MuBERTConfig

FORMAT = 2  # bump when the checkpoint layout changes
LAST = "checkpoint-last.pt"


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def save(path: Path, state: dict) -> Path:
    """Write `state` to `path` through a temp name and a rename: a checkpoint file that exists is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def save_run_checkpoint(run_dir: Path, state: dict) -> Path:
    """`RUN/checkpoint-<step>.pt`, then `RUN/checkpoint-last.pt` pointing at the same bytes (a hard link, else a copy)."""
    path = save(Path(run_dir) / f"checkpoint-{state['step']}.pt", state)
    last, tmp = path.with_name(LAST), _tmp(path.with_name(LAST))
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:  # file systems without hard links
        shutil.copyfile(path, tmp)
    os.replace(tmp, last)
    return path


def load(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by `save` (tensors and plain containers only: `weights_only=True`)."""
    path = Path(path)
    if not path.is_file():
        raise MerDataError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exn:  # a foreign file fails anywhere in the unpickler: UnpicklingError, KeyError, EOFError, …
        reason = load_error(exn)
        hint = "; the authors' released file? convert it with `mer-eval import-checkpoint`" \
            if "argparse.Namespace" in reason else ""
        raise MerDataError(f"{path}: not a readable checkpoint ({reason}){hint}") from None
    if not isinstance(state, dict) or state.get("format") not in (1, FORMAT):
        raise MerDataError(f"{path}: not a mer-train checkpoint of format {FORMAT}")
    return {**state, "format": FORMAT, "config": upgrade(state.get("config", {}), state["format"], path)}


def load_error(exn: Exception) -> str:
    """One line saying why `torch.load` refused a file: the weights-only unpickler's own reason where it gives one."""
    text = str(exn)
    found = re.search(r"WeightsUnpickler error: (.*?\.)(?:\s|$)", text)
    reason = found.group(1) if found else next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(exn).__name__}: {reason[:200]}" if reason else type(exn).__name__


def upgrade(config: dict, fmt: int, path: Path) -> dict:
    """The resolved config of a checkpoint of format `fmt`, in today's form; a one-line error where the weights would
    no longer compute what they were trained to.

    Format 1 had `dma` as a bool, normalised Â over the patches of I_{t/s} (Eq. 8 normalises over I_{t+δ}) and a
    different DINO head; a model with neither DMA nor DINO computes exactly what it did.
    """
    if fmt == FORMAT or "model" not in config:
        return config
    model = dict(config["model"])
    if model.get("dma") is True:
        raise MerDataError(f"{path}: written by an older mer-train (format 1) whose DMA normalised Â over I_{{t/s}}; "
                           "DMA now follows Eq. 8 (over I_{t+δ}): pretrain again")
    if model.get("poi") == "dino":
        raise MerDataError(f"{path}: written by an older mer-train (format 1) with another DINO head; pretrain again")
    model["dma"] = "off"
    return {**config, "model": MuBERTConfig.from_dict(model).to_dict()}  # fields added since, at their defaults


def export_safetensors(model_state: dict[str, torch.Tensor], path: Path, config: dict) -> Path:
    """Write the weights as safetensors (temp name, then rename), the resolved config as JSON in the metadata."""
    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model_state.items()}  # no shared storage
    tmp = _tmp(path)
    save_file(tensors, str(tmp), metadata={"format": str(FORMAT), "config": json.dumps(config, sort_keys=True)})
    os.replace(tmp, path)
    return path


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, resolved config) from a training checkpoint (.pt) or an exported .safetensors file.

    The model settings are `config["model"]`: `MuBERTConfig.from_dict(config["model"])` rebuilds the model.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        state = load(path)
        return state["model"], state["config"]
    if not path.is_file():
        raise MerDataError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            weights = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exn:  # safetensors raises its own error types for a damaged header
        raise MerDataError(f"{path}: not a readable safetensors file ({exn})") from None
    if "config" not in meta or meta.get("format") not in ("1", str(FORMAT)):
        raise MerDataError(f"{path}: safetensors file without a mer-train config of format {FORMAT} in its metadata")
    return weights, upgrade(json.loads(meta["config"]), int(meta["format"]), path)
