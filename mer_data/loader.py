"""A torch Dataset of labeled samples for any training loop: a split manifest's rows, their stored frames from the
labeled shards, and one view.

    from mer_data.loader import collate, load_samples
    train = load_samples("m.parquet", "shards/", view="flow", fold="casme2/sub01", split="train",
                         channels="uvs", size=28).augment(seed=0)
    loader = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True, collate_fn=collate)

Each item is `{"x": float32 tensor (the view's shape), "label": int (the manifest's label_id), "fold": str,
"aus": float32 (n_AU,) multi-hot (zeros where the dataset codes no AUs), "meta": {sample_id, subject, dataset, key,
frames (the frame numbers the view used), onset, apex, offset}}`. The dataset holds every sample's encoded frames in
memory (a few tens of kB a frame) and decodes on each access.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from manifests.io import read_manifest
from mer_data import MerDataError
from mer_data.aus import AU_COLUMNS
from mer_data.shards import tar_samples
from mer_data.views import StoredSample, View, make_view

SPLITS = ("all", "train", "test")


def shard_files(shards: str | Path) -> list[Path]:
    """The finished tars of a shard folder (those whose `_stats.json` exists), sorted; MerDataError if none."""
    root = Path(shards)
    if not root.is_dir():
        raise MerDataError(f"shards {root}: no such folder")
    tars = [t for t in sorted(root.glob("*.tar")) if t.with_name(f"{t.stem}_stats.json").exists()]
    if not tars:
        raise MerDataError(f"shards {root}: no finished shard (a .tar with its _stats.json)")
    return tars


def read_stored(shards: str | Path, wanted: set[str] | None = None) -> dict[str, StoredSample]:
    """sample_id → StoredSample for the labeled samples of a shard folder (only those in `wanted` when given)."""
    found: dict[str, StoredSample] = {}
    for path in shard_files(shards):
        for key, members in tar_samples(path).items():
            if "json" not in members:
                raise MerDataError(f"{path}: sample {key} has no json member")
            sample = StoredSample.from_members(key, members)
            sid = sample.meta.get("sample_id")
            if not sid:
                raise MerDataError(f"{path}: sample {key} is not labeled (written without `ingest --labeled`?)")
            if wanted is None or sid in wanted:
                found[sid] = sample
    return found


class SampleDataset(Dataset):
    """Manifest rows with their stored samples and a view; `augment(seed)` turns training augmentation on."""

    def __init__(self, rows: list[dict], samples: dict[str, StoredSample], view: View, missing: dict[str, str]):
        self.rows, self.samples, self.view = rows, samples, view
        self.missing = missing  # sample_id → why: ok manifest rows of the split left out (not in the shards, …)
        self.seed: int | None = None  # None: evaluation (deterministic views)
        self.epoch = 0

    def augment(self, seed: int | None) -> SampleDataset:
        """Draw the view's augmentation from (seed, epoch, item) generators; None turns it off. Returns self."""
        self.seed = seed
        return self

    def set_epoch(self, epoch: int) -> None:
        """A new epoch draws new augmentations (same seed and epoch → same draws, whatever the workers)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        sample = self.samples[row["sample_id"]]
        rng = None if self.seed is None else np.random.default_rng([self.seed, self.epoch, i])
        numbers = self.view.frames_used(sample, rng)
        x = self.view.render(sample, numbers)
        aus = np.array([row.get(c) or 0 for c in AU_COLUMNS], np.float32)
        meta = {"sample_id": row["sample_id"], "subject": row["subject"], "dataset": row["dataset"],
                "key": sample.key, "frames": numbers, "onset": sample.onset, "apex": sample.apex, "offset": sample.end}
        return {"x": torch.from_numpy(np.ascontiguousarray(x)), "label": int(row["label_id"]), "fold": str(row["fold"]),
                "aus": torch.from_numpy(aus), "meta": meta}


def collate(items: list[dict]) -> dict:
    """Items → a batch {"x": (B, ...), "label": (B,), "aus": (B, n_AU), "fold": [...], "meta": [...]}."""
    return {"x": torch.stack([it["x"] for it in items]), "label": torch.tensor([it["label"] for it in items]),
            "aus": torch.stack([it["aus"] for it in items]), "fold": [it["fold"] for it in items],
            "meta": [it["meta"] for it in items]}


def split_rows(rows: list[dict], fold: str | None, split: str, manifest: str) -> list[dict]:
    """The ok rows with a fold, of the split: "test" = fold `fold`, "train" = every other fold, "all" = every one."""
    if split not in SPLITS:
        raise MerDataError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    ok = [r for r in rows if r["status"] == "ok" and r.get("fold") is not None]
    if split == "all":
        return ok
    if fold is None:
        raise MerDataError(f"split {split!r} needs a fold")
    if not any(str(r["fold"]) == str(fold) for r in ok):
        raise MerDataError(f"fold {fold!r}: no ok row of {manifest} has that fold")
    return [r for r in ok if (str(r["fold"]) == str(fold)) == (split == "test")]


def load_samples(manifest: str | Path, shards: str | Path, view: str | View = "flow", fold: str | None = None,
                 split: str = "all", **view_options) -> SampleDataset:
    """The Dataset of a manifest's split over labeled shards, each item rendered by `view` (a name, made with
    `view_options`, or a View). Rows missing from the shards are left out, with why, in `.missing`; the manifest's
    apex is the one used (see `follow_manifest`)."""
    if isinstance(view, str):
        view = make_view(view, **view_options)
    elif view_options:
        raise MerDataError(f"view options {sorted(view_options)} given with a ready View: pass them to make_view")
    table, _ = read_manifest(Path(manifest))
    rows = split_rows(table.to_pylist(), fold, split, str(manifest))
    samples = read_stored(shards, {r["sample_id"] for r in rows})
    if rows and not samples:
        raise MerDataError(f"shards {shards}: none of the {len(rows)} samples of {manifest} ({split}) is in them")
    missing = {r["sample_id"]: "not in the shards" for r in rows if r["sample_id"] not in samples}
    for row in rows:
        if row["sample_id"] in samples:
            sample, why = follow_manifest(row, samples[row["sample_id"]])
            if sample is None:
                missing[row["sample_id"]] = why
            else:
                samples[row["sample_id"]] = sample
    kept = [r for r in rows if r["sample_id"] not in missing]
    return SampleDataset(kept, samples, view, dict(sorted(missing.items())))


def follow_manifest(row: dict, sample: StoredSample) -> tuple[StoredSample | None, str]:
    """The sample with the manifest row's apex, which may differ from the shard's where the manifest chose another
    apex policy (SMIC: `--smic-apex max_diff`): kept when that frame is stored (its stored onset→apex flow, of the
    other apex, is dropped), else (None, why)."""
    apex = row.get("apex")
    if apex is None or apex == sample.apex:
        return sample, ""
    if apex not in sample.images:
        return None, (f"the manifest's apex {apex} ({row.get('apex_policy')}) is not a stored frame "
                      f"(stored {sample.numbers[0]}..{sample.end}, {len(sample.images)} frames)")
    meta = {**sample.meta, "apex": apex, "apex_policy": row.get("apex_policy")}
    return StoredSample(sample.key, meta, sample.images, None), ""
