"""One LOSO fold of each seed model (FDP, CVA/FPF) at the tiny preset, through its declared view and the loader:
the view's tensors fit the model, a few epochs lower the training loss, the held-out subject gets predictions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from mer_data.loader import collate, load_samples
from mer_data.models import get
from mer_data.models.fdp import dynamic_target
from conftest import labeled_casme2


@pytest.fixture(scope="module")
def data(tmp_path_factory, face_model) -> tuple[Path, Path]:
    """(manifest, labeled shards) of a 3-subject synthetic CASME II, 8 frames a sample, 64 px."""
    return labeled_casme2(tmp_path_factory.mktemp("fold"), face_model, subjects=3, clips=2, seed=11)


@pytest.mark.parametrize("name", ["fdp", "cva-fpf"])
def test_one_fold_trains_through_the_loader(data, name):
    manifest, shards = data
    entry = get(name)
    cfg = entry.presets["tiny"]()
    view = entry.view_options(cfg)
    train = load_samples(manifest, shards, entry.view, fold="casme2/sub01", split="train", **view).augment(seed=0)
    test = load_samples(manifest, shards, entry.view, fold="casme2/sub01", split="test", **view)
    torch.manual_seed(0)
    model = entry.build(cfg, 5)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    batches = list(DataLoader(train, batch_size=len(train), collate_fn=collate))
    assert len(batches) == 1 and len(train) >= 2
    batch = batches[0]
    model.train()
    first = model.loss(batch)[0].item()
    for _ in range(4):
        opt.zero_grad()
        model.loss(batch)[0].backward()
        opt.step()
    assert model.loss(batch)[0].item() < first
    model.eval()
    held_out = next(iter(DataLoader(test, batch_size=len(test), collate_fn=collate)))
    with torch.no_grad():
        logits = model(held_out)
    assert logits.shape == (len(test), 5) and bool(torch.isfinite(logits).all())


def test_fdp_target_is_the_dynamic_view(data):
    """FDP's in-model target from the sequence equals the loader's `dynamic` view (min-max) of the same sample."""
    manifest, shards = data
    cfg = get("fdp").presets["tiny"]()
    options = get("fdp").view_options(cfg)
    sequences = load_samples(manifest, shards, "sequence", split="all", **options)
    dynamics = load_samples(manifest, shards, "dynamic", split="all", scale="minmax", **options)
    by_id = {it["meta"]["sample_id"]: it["x"] for it in dynamics}
    for item in sequences:
        expected = by_id[item["meta"]["sample_id"]][0]  # (H, W)
        torch.testing.assert_close(dynamic_target(item["x"][None])[0], expected, atol=1e-5, rtol=1e-4)
