"""Models the LOSO harness evaluates, registered by name: each declares the sample view it consumes and builds one
module per fold whose `loss(batch)` trains it and whose `forward(batch)` gives class logits.

A batch is a dict: `x` the view's tensor (B, ...) float32, `label` (B,) int64, `aus` (B, n_AU) float32 multi-hot
(`mer_data.aus` column order), `meta` a list of per-sample dicts. Adding a model = one file defining its config
(a frozen dataclass with at least `lr`, `weight_decay`, `epochs`, `batch_size`, presets as named functions) and a
`ModelEntry`, plus one `register(...)` line below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mer_data import MerDataError


@dataclass(frozen=True)
class ModelEntry:
    """What the harness needs to know of a model."""

    name: str  # registry name, as on the command line (`mer-eval loso --model NAME`)
    view: str  # the sample view it consumes (a name in `mer_data.views`)
    view_options: Callable[[Any], dict]  # config → that view's options (frames, side, colour, …)
    presets: dict[str, Callable[[], Any]]  # preset name → config; "paper" (the paper's size) and "tiny" at least
    build: Callable[[Any, int], Any]  # (config, n_classes) → torch.nn.Module with loss(batch) and forward(batch)


MODELS: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add `entry` to the registry under its name (once)."""
    if entry.name in MODELS:
        raise ValueError(f"model {entry.name!r} registered twice")
    MODELS[entry.name] = entry
    return entry


def get(name: str) -> ModelEntry:
    """The registered model `name`, or a one-line error listing the known ones."""
    if name not in MODELS:
        raise MerDataError(f"--model must be one of {', '.join(sorted(MODELS)) or '(none)'}, got {name!r}")
    return MODELS[name]

from mer_data.models import fdp  # noqa: E402,F401  (registers "fdp")
from mer_data.models import cva_fpf  # noqa: E402,F401  (registers "cva-fpf")
