"""The model-agnostic LOSO harness: every registered model through `pipelines.loso.run`, the selection protocols and
their labels, the random-label control (honest ≈ chance, test-best above it), and `mer-eval compare`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import eval_app
from manifests.io import read_manifest
from manifests.shuffle import shuffle_labels
from mer_data import MerDataError
from mer_data.evaluation.compare import compare_rows, markdown, table_png, text
from mer_data.evaluation.fold import OPTIMISTIC, FoldConfig
from pipelines.loso import LosoConfig, run
from conftest import labeled_casme2


@pytest.fixture(scope="module")
def data(tmp_path_factory, face_model) -> tuple[Path, Path]:
    """(manifest, labeled shards) of an 8-subject synthetic CASME II, 8 frames a sample at 64 px."""
    return labeled_casme2(tmp_path_factory.mktemp("harness"), face_model, subjects=8, clips=3, seed=5)


def _run(data, out: Path, manifest: Path | None = None, **fold) -> dict:
    m, shards = data
    cfg = LosoConfig(manifest=str(manifest or m), shards=str(shards), out=str(out), model=fold["model"],
                     fold=FoldConfig(**fold))
    return run(cfg, progress=False)


@pytest.mark.parametrize("name", ["fdp", "cva-fpf"])
def test_each_model_runs_every_fold(data, tmp_path, name):
    results = _run(data, tmp_path / name, model=name, epochs=1)
    assert results["model"] == name and results["n"] == 24 and len(results["folds"]) == 8
    assert results["optimistic"] == [] and results["params"] > 0
    assert set(results["epochs_kept"].values()) == {1}
    saved = json.loads((tmp_path / name / "results.json").read_text())
    assert saved["config"]["fold"]["select"] == "fixed"
    assert (tmp_path / name / "confusion.png").stat().st_size > 0


def test_optimistic_protocols_are_labelled(data, tmp_path):
    results = _run(data, tmp_path / "cva", model="cva-fpf", epochs=2, select="test-best", au_input="annotation")
    assert results["optimistic"] == [OPTIMISTIC["test-best"], OPTIMISTIC["annotation"]]
    assert "optimistic: selects the epoch on the test subject" in (tmp_path / "cva" / "results.txt").read_text()
    assert FoldConfig(model="cva-fpf", preset="authors").labels() == [OPTIMISTIC["annotation"]]  # the preset's AUs
    with pytest.raises(MerDataError, match="takes no AU input"):
        FoldConfig(model="fdp", au_input="annotation")
    with pytest.raises(MerDataError, match="--select"):
        FoldConfig(model="fdp", select="best")


def test_inner_val_never_reads_the_test_side(data, tmp_path):
    """Inner validation picks an epoch from held-out training subjects; the pick is recorded per fold."""
    results = _run(data, tmp_path / "iv", model="cva-fpf", epochs=3, select="inner-val")
    assert results["optimistic"] == [] and set(results["epochs_kept"].values()) <= {1, 2, 3}
    record = json.loads(next((tmp_path / "iv" / "folds").glob("*.json")).read_text())
    assert all(h["score"] is not None for h in record["history"])


def test_random_labels_honest_at_chance_test_best_above(data, tmp_path):
    """On permuted labels nothing can be learnt: the fixed budget scores within a binomial band around chance (5
    classes, 24 samples: 0.2, 95 % band up to 0.37), while picking each fold's epoch on its test subject scores clearly
    higher — the optimism of that protocol, measured."""
    random = shuffle_labels(data[0], tmp_path / "random.parquet", seed=1)
    honest = _run(data, tmp_path / "fixed", random, model="cva-fpf", epochs=12, select="fixed")
    chosen = _run(data, tmp_path / "best", random, model="cva-fpf", epochs=12, select="test-best")
    assert honest["accuracy"] <= 0.40
    assert chosen["accuracy"] >= honest["accuracy"] + 0.10


def test_shuffle_keeps_samples_folds_and_class_counts(data, tmp_path):
    out = shuffle_labels(data[0], tmp_path / "r.parquet", seed=3)
    before, _ = read_manifest(data[0])
    after, meta = read_manifest(out)
    a, b = before.to_pylist(), after.to_pylist()
    assert [r["sample_id"] for r in a] == [r["sample_id"] for r in b] and [r["fold"] for r in a] == [r["fold"] for r in b]
    assert sorted(r["label_id"] for r in a) == sorted(r["label_id"] for r in b)
    assert any(x["label_id"] != y["label_id"] for x, y in zip(a, b)) and meta["labels_shuffled"]["seed"] == 3


def test_compare_side_by_side(data, tmp_path):
    _run(data, tmp_path / "fdp", model="fdp", epochs=1)
    _run(data, tmp_path / "cva", model="cva-fpf", epochs=1, select="test-best")
    rows = compare_rows([tmp_path / "fdp", tmp_path / "cva"])
    assert [r["model"] for r in rows] == ["fdp", "cva-fpf"]
    assert rows[0]["protocol"] == "honest (fixed)" and rows[1]["protocol"] == OPTIMISTIC["test-best"]
    assert "| fdp |" in markdown(rows) and text(rows).splitlines()[0].startswith("run")
    assert table_png(rows, tmp_path / "t.png").stat().st_size > 0
    res = CliRunner().invoke(eval_app, ["compare", str(tmp_path / "fdp"), str(tmp_path / "nothing")])
    assert res.exit_code != 0 and "nothing: no results.json" in res.output and "Traceback" not in res.output


def test_cli_refuses_protocol_flags_for_mubert(data, tmp_path):
    m, shards = data
    res = CliRunner().invoke(eval_app, ["loso", "--manifest", str(m), "--shards", str(shards), "--baseline",
                                        "--select", "test-best", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "registered models" in res.output and "Traceback" not in res.output
