"""LOSO fine-tuning and evaluation on the synthetic CASME II: the leakage guard, fold planning, scores, outputs, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import cli
import mubert.finetune as finetune
from manifests.build import SplitConfig, build_manifest
from manifests.io import write_manifest
from mer_data import MerDataError
from mer_data.synth import generate
from pipelines.ingest import IngestConfig, run_ingest
from pipelines.loso import LosoConfig, load_frames, load_rows, plan, run

STEPS = 60  # fine-tuning steps per fold: the synthetic movement is learnt well within this


@pytest.fixture(scope="module")
def labeled(tmp_path_factory, face_model) -> tuple[Path, Path]:
    """(manifest, labeled shard dir) of a synthetic CASME II with 4 subjects × 6 micro-expressions."""
    base = tmp_path_factory.mktemp("loso")
    root = generate("casme2", base / "casme2", subjects=4, clips_per_subject=6, seed=3)
    manifest = build_manifest(SplitConfig(dataset="casme2", protocol="loso", root=root))
    path = write_manifest(manifest.rows, manifest.metadata(), base / "m.parquet", manifest.columns)
    summary = run_ingest(IngestConfig(dataset="casme2", root=str(root), out=str(base / "shards"), labeled=True,
                                      workers=0, face_model=str(face_model)))
    assert summary["ok"]
    return path, base / "shards"


def test_leak_guard_names_the_shared_subjects():
    with pytest.raises(MerDataError, match="casme2/sub01"):
        finetune.check_no_leak({"casme2/sub01", "casme2/sub02"}, {"casme2/sub01"}, "casme2/sub01")
    finetune.check_no_leak({"casme2/sub02"}, {"casme2/sub01"}, "casme2/sub01")


def test_folds_test_every_sample_once_and_never_train_on_it(labeled):
    manifest, shards = labeled
    rows, _ = load_rows(str(manifest))
    frames = load_frames(str(shards), {r["sample_id"] for r in rows})
    folds, missing = plan(rows, frames)
    assert not missing and len(folds) == 4
    tested = [r["sample_id"] for _, test in folds.values() for r in test]
    assert sorted(tested) == sorted(r["sample_id"] for r in rows)
    for fold, (train, test) in folds.items():
        assert {r["subject"] for r in test} == {fold}
        assert fold not in {r["subject"] for r in train}


def test_no_held_out_sample_reaches_training(labeled, monkeypatch):
    """Spy on every batch the fold's training loop stacks: the held-out samples appear only inside `predict`."""
    manifest, shards = labeled
    rows, _ = load_rows(str(manifest))
    frames = load_frames(str(shards), {r["sample_id"] for r in rows})
    folds, _ = plan(rows, frames)
    fold = sorted(folds)[0]
    train, test = folds[fold]
    seen_training: set[str] = set()
    predicting = []
    real_stack, real_predict = finetune.stack, finetune.predict

    def spy_stack(batch, frames_):
        if not predicting:
            seen_training.update(r["sample_id"] for r in batch)
        return real_stack(batch, frames_)

    def spy_predict(*args, **kwargs):
        predicting.append(True)
        try:
            return real_predict(*args, **kwargs)
        finally:
            predicting.pop()

    monkeypatch.setattr(finetune, "stack", spy_stack)
    monkeypatch.setattr(finetune, "predict", spy_predict)
    cfg = finetune.FinetuneConfig(steps=5, batch_size=4, inner_val_subjects=1, eval_every=2)
    record = finetune.train_fold(fold, train, test, frames, 5, cfg, None, "tiny", torch.device("cpu"))
    assert seen_training and not seen_training & {r["sample_id"] for r in test}
    assert sorted(p["sample_id"] for p in record["predictions"]) == sorted(r["sample_id"] for r in test)


def test_loso_scores_well_above_chance_and_resumes(labeled, tmp_path):
    manifest, shards = labeled
    torch.set_num_threads(2)
    cfg = LosoConfig(manifest=str(manifest), shards=str(shards), out=str(tmp_path / "run"), preset="tiny",
                     finetune=finetune.FinetuneConfig(steps=STEPS, batch_size=8))
    results = run(cfg)
    assert results["n"] == 24 and len(results["folds"]) == 4
    assert results["uf1"] > 0.6 and results["uar"] > 0.6, results  # chance is 0.2 for 5 balanced classes
    assert np.array(results["confusion"]).sum() == 24
    for name in ("results.json", "results.txt", "confusion.png", "predictions.csv"):
        assert (tmp_path / "run" / name).is_file()
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {"uf1", "uar", "per_class", "confusion", "folds"} <= set(saved)
    # a finished fold is not redone: a rerun reads the fold files and returns the same pooled numbers
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run" / "folds").iterdir()}
    again = run(cfg)
    assert again["uf1"] == results["uf1"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run" / "folds").iterdir()}


def test_cli_asks_for_init_or_baseline(labeled, tmp_path):
    manifest, shards = labeled
    out = CliRunner().invoke(cli.eval_app, ["loso", "--manifest", str(manifest), "--shards", str(shards),
                                            "--out", str(tmp_path / "r")])
    assert out.exit_code == 2 and "--init" in out.output and "Traceback" not in out.output
    out = CliRunner().invoke(cli.eval_app, ["loso", "--manifest", str(tmp_path / "nope.parquet"), "--shards",
                                            str(shards), "--baseline", "--out", str(tmp_path / "r")])
    assert out.exit_code == 2 and "nope.parquet" in out.output


def test_folds_run_as_ray_tasks(labeled, tmp_path, capsys):
    manifest, shards = labeled
    cfg = LosoConfig(manifest=str(manifest), shards=str(shards), out=str(tmp_path / "run"), preset="tiny", workers=2,
                     finetune=finetune.FinetuneConfig(steps=2, batch_size=4))
    results = run(cfg)
    assert len(results["folds"]) == 4 and results["n"] == 24
    err = capsys.readouterr().err
    assert "8/8" in err and err.count(" done") == 4  # the tasks' steps reach the bar through the queue
    assert len(list((tmp_path / "run" / "folds").glob("*.json"))) == 4


def test_maps_of_two_raw_frames(labeled, tmp_path, face_model):
    """`mer-eval maps` on two raw frames of a clip: aligned with one transform, seven tiles per row."""
    from mer_data.synth import generate as synth
    from mubert import checkpoint
    from mubert.config import tiny
    from mubert.model import MuBERT

    root = synth("casme2", tmp_path / "c2", subjects=1, clips_per_subject=1, seed=5)
    truth = json.loads((root / "mer-data-synth.json").read_text())["truth"][0]
    folder = root / truth["source"]
    model = MuBERT(tiny())
    ckpt = checkpoint.save(tmp_path / "m.pt", {"format": checkpoint.FORMAT, "step": 0, "data": {"epoch": 0, "batch": 0},
                                               "model": model.state_dict(), "optimizer": {},
                                               "config": {"model": tiny().to_dict()}})
    out = CliRunner().invoke(cli.eval_app, ["maps", "--init", str(ckpt), "--onset", str(folder / f"img{truth['onset']}.jpg"),
                                            "--apex", str(folder / f"img{truth['apex']}.jpg"), "--out", str(tmp_path / "map.png"),
                                            "--face-model", str(face_model)])
    assert out.exit_code == 0, out.output
    import cv2

    image = cv2.imread(str(tmp_path / "map.png"))
    assert image.shape[1] == 7 * image.shape[0]  # one row of seven square 224 px tiles
    bad = CliRunner().invoke(cli.eval_app, ["maps", "--init", str(ckpt), "--onset", str(tmp_path / "none.jpg"),
                                            "--apex", str(tmp_path / "none.jpg"), "--out", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and "none.jpg" in bad.output


def test_paper_display_of_diag_is_one_minus_diag_over_max():
    """--display paper: the diag(Â) tile is 1 − diag/max on a fixed colour scale (the authors' get_attmap), not min-max."""
    from mubert.maps import figure_row, overlay, paper_display

    diag = np.array([[0.2, 0.4], [0.1, 0.8]])
    np.testing.assert_allclose(paper_display(diag), [[0.75, 0.5], [0.875, 0.0]])
    frame = np.full((64, 64, 3), 128, np.uint8)
    maps = {"diag": diag, "s": diag, "w": diag, "change": diag}
    paper, minmax = figure_row(frame, frame, maps, display="paper"), figure_row(frame, frame, maps)
    tile = slice(3 * 64, 4 * 64)  # the fourth tile: diag(Â); rows below its title
    assert np.array_equal(paper[24:, tile], overlay(frame, paper_display(diag), minmax=False)[24:])
    assert not np.array_equal(paper[24:, tile], minmax[24:, tile])
    assert np.array_equal(paper[:, 4 * 64:], minmax[:, 4 * 64:])  # the other maps are drawn as before


def test_imported_authors_checkpoint_serves_loso_and_maps(labeled, tmp_path):
    """`mer-eval import-checkpoint` output works as --init for `loso` and `maps` (a small file in the released layout)."""
    from test_authors import write_released

    manifest, shards = labeled
    src = write_released(tmp_path / "theirs.pth")
    runner = CliRunner()
    result = runner.invoke(cli.eval_app, ["import-checkpoint", str(src), "--out", str(tmp_path / "ours.pt")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.eval_app, ["loso", "--manifest", str(manifest), "--shards", str(shards), "--init",
                                          str(tmp_path / "ours.pt"), "--steps", "2", "--batch-size", "4",
                                          "--out", str(tmp_path / "loso")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "loso" / "results.json").read_text())["n"] == 24
    result = runner.invoke(cli.eval_app, ["maps", "--init", str(tmp_path / "ours.pt"), "--shards", str(shards),
                                          "--count", "2", "--display", "paper", "--out", str(tmp_path / "maps.png")])
    assert result.exit_code == 0, result.output
    import cv2

    assert cv2.imread(str(tmp_path / "maps.png")).shape[:2] == (2 * 224, 7 * 224)


def test_progress_bar_counts_the_steps_of_every_fold(labeled, tmp_path, capsys):
    manifest, shards = labeled
    cfg = LosoConfig(manifest=str(manifest), shards=str(shards), out=str(tmp_path / "run"), preset="tiny",
                     finetune=finetune.FinetuneConfig(steps=3, batch_size=4))
    run(cfg)
    err = capsys.readouterr().err
    assert "12/12" in err and "fold 4/4" in err  # 4 folds × 3 steps
    assert sum(f"fold {f} done" in err for f in json.loads((tmp_path / "run" / "results.json").read_text())["folds"]) == 4
    run(cfg)  # nothing left to do: no bar
    assert "step" not in capsys.readouterr().err


def test_aggregate_pools_folds_and_reports_per_dataset():
    """Pooled metrics come from all folds' predictions at once; a composite also gets per-dataset scores."""
    from pipelines.loso import aggregate

    rows = [{"sample_id": f"{d}/{s}/c{i}", "subject": f"{d}/{s}", "dataset": d, "fold": f"{d}/{s}", "label_id": i % 3}
            for d, s in (("casme2", "sub01"), ("samm", "006")) for i in range(3)]
    preds = {"casme2/sub01": [0, 1, 2], "samm/006": [0, 0, 0]}  # casme2 all right; samm always "negative"
    records = [{"fold": f, "predictions": [{"sample_id": r["sample_id"], "label_id": r["label_id"], "pred": p}
                                           for r, p in zip([r for r in rows if r["fold"] == f], preds[f])]}
               for f in preds]
    cfg = LosoConfig(manifest="m.parquet", shards="s", out="o")
    res = aggregate(records, rows, ["negative", "positive", "surprise"], {"protocol": "loso", "dataset": "megc2019"},
                    cfg, [])
    assert res["per_dataset"]["casme2"]["uf1"] == 1.0
    assert res["per_dataset"]["samm"]["uar"] == pytest.approx(1 / 3)
    # pooled: one confusion matrix over the 6 predictions of both folds, not an average of per-fold scores
    assert res["confusion"] == [[2, 0, 0], [1, 1, 0], [1, 0, 1]]
    assert res["uar"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert res["fold_mean"]["uar_mean"] == pytest.approx((1 + 1 / 3) / 2)
