"""load_samples: a manifest split over labeled shards, every seed system's input by one view option, seeded
augmentation, rows missing from the shards listed, bad input as one-line errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from manifests.build import SplitConfig, build_manifest
from manifests.io import write_manifest
from mer_data import MerDataError
from mer_data.aus import AU_COLUMNS
from mer_data.loader import collate, load_samples, read_stored
from mer_data.synth import generate
from pipelines.ingest import IngestConfig, run_ingest

SIDE = 64  # ingest side: small, so the stored TV-L1 stays cheap


@pytest.fixture(scope="module")
def data(tmp_path_factory, face_model) -> tuple[Path, Path, list[dict]]:
    """(manifest, labeled shards with stored flow, PNG frames, subject sub03 left out, manifest rows)."""
    base = tmp_path_factory.mktemp("loader")
    root = generate("casme2", base / "casme2", subjects=3, clips_per_subject=2, seed=7)
    manifest = build_manifest(SplitConfig(dataset="casme2", protocol="loso", root=root))
    path = write_manifest(manifest.rows, manifest.metadata(), base / "m.parquet", manifest.columns)
    summary = run_ingest(IngestConfig(dataset="casme2", root=str(root), out=str(base / "shards"), labeled=True,
                                      workers=0, size=SIDE, image_format="png", views=("flow",), frames=6,
                                      exclude_subjects=("casme2/sub03",), face_model=str(face_model)))
    assert summary["ok"]
    return path, base / "shards", [r for r in manifest.rows if r["status"] == "ok"]


def test_train_and_test_split_the_folds_and_carry_the_manifest_labels(data):
    manifest, shards, rows = data
    fold = "casme2/sub01"
    test, train = (load_samples(manifest, shards, "diff", fold=fold, split=s) for s in ("test", "train"))
    by_id = {r["sample_id"]: r for r in rows}
    test_ids = {it["meta"]["sample_id"] for it in test}
    train_ids = {it["meta"]["sample_id"] for it in train}
    assert test_ids and train_ids and not test_ids & train_ids
    assert all(by_id[s]["fold"] == fold for s in test_ids) and all(by_id[s]["fold"] != fold for s in train_ids)
    for item in list(test) + list(train):
        row = by_id[item["meta"]["sample_id"]]
        assert item["label"] == row["label_id"] and item["fold"] == row["fold"]
        assert item["aus"].tolist() == [float(row[c] or 0) for c in AU_COLUMNS]
    assert sorted(train.missing) == sorted(r["sample_id"] for r in rows if r["subject"] == "casme2/sub03")
    assert set(train.missing.values()) == {"not in the shards"}


@pytest.mark.parametrize("system, view, options, shape", [
    ("μ-BERT", "pair", {}, (2, 3, SIDE, SIDE)),
    ("FDP", "sequence", {"frames": 8, "color": False}, (8, 1, SIDE, SIDE)),
    ("FDP target", "dynamic", {"frames": 8, "color": False}, (1, SIDE, SIDE)),
    ("FaceSleuth", "pair", {"jitter": 0.0375}, (2, 3, SIDE, SIDE)),
    ("STSTNet / HTNet", "flow", {"channels": "uvs", "size": 28}, (3, 28, 28)),
    ("MMNet", "diff", {}, (3, SIDE, SIDE)),
])
def test_each_seed_system_input_is_one_view_option(data, system, view, options, shape):
    manifest, shards, _ = data
    batch = collate([load_samples(manifest, shards, view, **options)[i] for i in range(2)])
    assert tuple(batch["x"].shape) == (2, *shape) and batch["x"].dtype == torch.float32
    assert batch["label"].shape == (2,) and batch["aus"].shape == (2, len(AU_COLUMNS))
    assert torch.isfinite(batch["x"]).all() and batch["x"].abs().sum() > 0


def test_augmentation_is_off_by_default_and_seeded_when_on(data):
    manifest, shards, _ = data
    ds = load_samples(manifest, shards, "pair", jitter=0.5)
    annotated = [(it["meta"]["onset"], it["meta"]["apex"]) for it in ds]
    assert [tuple(it["meta"]["frames"]) for it in ds] == annotated
    draws = [[tuple(ds.augment(seed)[i]["meta"]["frames"]) for i in range(len(ds))] for seed in (1, 1, 2)]
    assert draws[0] == draws[1] != draws[2]
    assert draws[0] != annotated
    ds.set_epoch(1)
    assert [tuple(ds[i]["meta"]["frames"]) for i in range(len(ds))] != draws[2]


def test_stored_flow_equals_the_flow_of_the_stored_frames(data):
    manifest, shards, _ = data
    sample = next(iter(read_stored(shards).values()))
    assert sample.flow is not None and sample.flow.shape == (2, SIDE, SIDE)
    from mer_data.views import make_view

    view = make_view("flow", channels="uv")
    recomputed = view(dataclasses.replace(sample, flow=None))  # PNG frames: the same pixels the ingest saw
    assert np.allclose(view(sample), recomputed, atol=1e-4)


def test_bad_loader_input_is_a_one_line_error(data, tmp_path):
    manifest, shards, _ = data
    cases = [(dict(split="val"), "split 'val'"), (dict(split="test"), "needs a fold"),
             (dict(split="test", fold="casme2/sub09"), "fold 'casme2/sub09'"), (dict(sise=3), "unknown option")]
    for kwargs, words in cases:
        with pytest.raises(MerDataError, match=words):
            load_samples(manifest, shards, "pair", **kwargs)
    with pytest.raises(MerDataError, match="no finished shard"):
        load_samples(manifest, tmp_path, "pair")


def test_the_manifest_apex_policy_wins_over_the_shards(tmp_path, face_model):
    """SMIC has no apex: a manifest built with max_diff over shards ingested with the default (middle)."""
    root = generate("smic", tmp_path / "smic", subjects=2, clips_per_subject=2, seed=3)
    manifest = build_manifest(SplitConfig(dataset="smic", protocol="loso", root=root, smic_apex="max_diff"))
    path = write_manifest(manifest.rows, manifest.metadata(), tmp_path / "m.parquet", manifest.columns)
    by_id = {r["sample_id"]: r for r in manifest.rows if r["status"] == "ok"}
    for frames in (0, 3):  # every frame stored; only onset, apex (middle) and offset stored
        out = tmp_path / f"shards{frames}"
        run_ingest(IngestConfig(dataset="smic", root=str(root), out=str(out), labeled=True, workers=0, size=SIDE,
                                frames=frames, views=("flow",), face_model=str(face_model)))
        stored = read_stored(out)
        moved = {s for s, r in by_id.items() if r["apex"] != stored[s].apex}
        assert moved and all(stored[s].meta["apex_policy"] == "middle" for s in moved)
        ds = load_samples(path, out, "pair")
        for item in ds:
            row = by_id[item["meta"]["sample_id"]]
            assert item["meta"]["frames"] == [row["onset"], row["apex"]]
        kept = {it["meta"]["sample_id"] for it in ds}
        assert all(ds.samples[s].flow is None for s in kept & moved)  # the stored flow ends at the other apex
        if frames == 0:
            assert not ds.missing and kept == set(by_id)
        else:
            assert set(ds.missing) == moved and all("is not a stored frame" in w for w in ds.missing.values())
