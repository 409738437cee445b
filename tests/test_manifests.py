"""Split manifests: labels and statuses, LOSO/LODO invariants, the megc2019 composite, parquet metadata, the CLI."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from cli import data_app
from manifests.build import SplitConfig, build_manifest
from manifests.io import read_manifest, write_manifest
from manifests.megc2019 import official_ids
from manifests.protocols import InvariantError, assign_folds, check_invariants
from mer_data import MerDataError
from mer_data.classes import load_mapping, normalize_emotion, normalize_objective
from mer_data.sheets import sha256_file


@pytest.fixture
def synth(synth_root):
    """The session's synthetic trees (tests/conftest.py): `synth(dataset, video=False) -> root`."""
    return synth_root


def test_mapping_statuses():
    casme2 = load_mapping("casme2")
    assert casme2.classes == ("happiness", "disgust", "repression", "surprise", "others")
    assert casme2.assign("casme2", "surprise") == ("surprise", 3, "ok", "")
    assert casme2.assign("casme2", "sadness")[2] == "excluded_class"
    assert casme2.assign("casme2", "joy")[2] == "unknown_label"
    assert load_mapping("samm").assign("samm", "Other")[:2] == ("others", 4)
    assert load_mapping("casme3", 4).assign("casme3", "Others")[:2] == ("others", 3)
    megc = load_mapping("megc2019")
    assert megc.classes == ("negative", "positive", "surprise")
    assert [megc.assign(d, e)[1] for d, e in [("samm", "Contempt"), ("casme2", "happiness"), ("smic", "surprise")]] == [0, 1, 2]
    assert megc.assign("casme2", "others")[2] == "excluded_class"
    assert normalize_emotion("  Other ") == "others"
    with pytest.raises(MerDataError, match=r"--classes 6 is not defined for casme2 \(choose from 3, 5, objective\)"):
        load_mapping("casme2", 6)


@pytest.mark.parametrize("kwargs, message", [
    ({"dataset": "casme2", "protocol": "lodo"}, "needs a composite"), ({"protocol": "kfold"}, "--protocol 'kfold'"),
    ({"dataset": "casme4"}, "unknown dataset 'casme4'"), ({"au_or": "any"}, "--au-or 'any'"),
    ({"frame_tolerance": -1}, "--frame-tolerance -1"),
])
def test_config_rejects_bad_flags(kwargs, message):
    with pytest.raises(MerDataError, match=message):
        SplitConfig(**kwargs)


def _rows(spec):
    return [{"sample_id": f"x/{i}", "dataset": d, "subject": s, "status": st, "fold": None} for i, (d, s, st) in enumerate(spec)]


def test_invariants_catch_leaks_and_unassigned_samples():
    rows = _rows([("a", "a/1", "ok"), ("a", "a/1", "ok"), ("a", "a/2", "ok"), ("a", "a/3", "bad_apex")])
    assign_folds(rows, "loso")
    check_invariants(rows, "loso")
    assert [r["fold"] for r in rows] == ["a/1", "a/1", "a/2", None]
    leaked = [dict(r) for r in rows]
    leaked[1]["fold"] = "a/2"  # subject a/1 tested in fold a/2 too → also trained on there
    with pytest.raises(InvariantError):
        check_invariants(leaked, "loso")
    unassigned = [dict(r) for r in rows]
    unassigned[0]["fold"] = None
    with pytest.raises(InvariantError, match="status ok with fold None"):
        check_invariants(unassigned, "loso")
    lodo = _rows([("a", "a/1", "ok"), ("b", "b/1", "ok")])
    assign_folds(lodo, "lodo")
    check_invariants(lodo, "lodo")
    assert [r["fold"] for r in lodo] == ["a", "b"]


@pytest.mark.parametrize("name", ["casme2", "samm", "smic", "casme3"])
def test_synth_to_loso_manifest(synth, name, tmp_path):
    root = synth(name)
    manifest = build_manifest(SplitConfig(name, root=root))
    ok = [r for r in manifest.rows if r["status"] == "ok"]
    assert ok and len(ok) == len(manifest.rows)
    assert all(r["fold"] == r["subject"] and r["subject"].startswith(f"{name}/") for r in ok)
    assert all(manifest.mapping.classes[r["label_id"]] == r["label"] for r in ok)
    folds = {r["fold"] for r in ok}
    for fold in folds:  # every ok sample is tested in exactly one fold, and its subject is never trained on there
        test = {r["sample_id"] for r in ok if r["fold"] == fold}
        train_subjects = {r["subject"] for r in ok if r["fold"] != fold}
        assert test and fold not in train_subjects
    assert sum(sum(r["fold"] == f for r in ok) for f in folds) == len(ok)
    path = write_manifest(manifest.rows, manifest.metadata(), tmp_path / "m.parquet", manifest.columns)
    table, meta = read_manifest(path)
    assert table.num_rows == len(manifest.rows) and table.column("sample_id").to_pylist() == [r["sample_id"] for r in manifest.rows]
    assert meta["protocol"] == "loso" and meta["classes"] == list(manifest.mapping.classes)
    assert meta["toolkit_version"] and meta["mapping"]["n"] == manifest.mapping.n
    if name != "smic":
        assert meta["sheets"][name]["sha256"] == sha256_file(Path(meta["sheets"][name]["path"]))


def test_synth_megc2019_composite_loso_and_lodo(synth):
    root = synth("megc2019")
    rows = build_manifest(SplitConfig("megc2019", root=root)).rows
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["dataset"] for r in ok} == {"casme2", "samm", "smic"}
    assert {r["label"] for r in ok for _ in [0]} == {"negative", "positive", "surprise"}
    assert all(r["fold"] == r["subject"] for r in ok)
    assert all(r["status"] == "excluded_class" for r in rows if r["emotion"].casefold() in ("others", "other"))
    lodo = build_manifest(SplitConfig("megc2019", protocol="lodo", root=root)).rows
    assert {r["fold"] for r in lodo if r["status"] == "ok"} == {"casme2", "samm", "smic"}
    assert all(r["fold"] == r["dataset"] for r in lodo if r["status"] == "ok")


def test_new_mappings_objective_same_as_and_unlabelled_rows():
    assert load_mapping("samm_lv").maps == {"samm_lv": load_mapping("samm").maps["samm"]}  # labels from the SAMM sheet
    objective = load_mapping("casme3", "objective")
    assert objective.classes == ("I", "II", "III", "IV", "V", "VI", "VII") and objective.field == "objective_class"
    assert objective.assign("casme3", "III")[:3] == ("III", 2, "ok") and objective.assign("casme3", "IX")[2] == "unknown_label"
    assert normalize_objective(3) == normalize_objective("iii") == "III" and normalize_objective("8") == ""
    assert load_mapping("4dme").assign("4dme", "Surprise+Positive")[2] == "excluded_class"
    assert load_mapping("4dme").assign("4dme", "Surprise+Joy")[2] == "unknown_label"
    assert load_mapping("samm_lv").assign("samm_lv", "")[2:] == ("no_label", "the sheet gives this row no emotion")
    with pytest.raises(MerDataError, match="--classes objective is not defined for smic"):
        load_mapping("smic", "objective")


def test_synth_cd5me_composite_loso_and_lodo(tmp_path):
    from mer_data.synth import generate

    root = generate("cd5me", tmp_path / "data", subjects=2, clips_per_subject=3)
    for protocol, fold in (("loso", "subject"), ("lodo", "dataset")):
        rows = build_manifest(SplitConfig("cd5me", protocol=protocol, root=root)).rows
        ok = [r for r in rows if r["status"] == "ok"]
        assert {r["dataset"] for r in ok} == {"casme2", "samm", "smic", "casme3", "mmew"}
        assert all(r["fold"] == r[fold] for r in ok) and {r["label"] for r in ok} == {"negative", "positive", "surprise"}
        assert "megc_subject" not in rows[0]  # the official MEGC2019 ids belong to that composite only


def test_cli_objective_classes_and_au_rule(synth, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(data_app, ["splits", "samm", "--root", str(synth("samm")), "--classes", "objective",
                                           "--au-or", "first", "--frame-tolerance", "1"])
    assert result.exit_code == 0, result.output
    assert "objective-class:" in result.output
    table, meta = read_manifest(tmp_path / "manifests" / "samm_loso_objective.parquet")
    assert meta["mapping"]["field"] == "objective_class" and meta["config"]["au_or"] == "first"
    rows = table.to_pylist()
    assert all(r["label"] == r["objective_class"] for r in rows) and all(r["aus"] for r in rows)
    assert {"AU1", "AU43", "au", "au_or", "warnings"} <= set(table.column_names)


def test_official_ids():
    assert official_ids("samm", "samm/006", "006_1_2") == ("6", "006_1_2")
    assert official_ids("smic", "smic/s1", "s1_ne_01") == ("s01", "s01_ne_01")
    assert official_ids("casme2", "casme2/sub01", "EP02_01f") == ("sub01", "EP02_01f")


def test_megc2019_needs_its_three_folders(tmp_path):
    (tmp_path / "casme2").mkdir()
    with pytest.raises(MerDataError, match="has no samm/, smic/ folder"):
        build_manifest(SplitConfig("megc2019", root=tmp_path))


def test_sheet_without_frames_is_no_usable_samples(tmp_path):
    wb = Workbook()
    wb.active.title = "Sheet1"
    wb.active.append(["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
                      "Estimated Emotion"])
    wb.active.append(["01", "EP02_01f", None, 46, 59, 86, None, 12, "happiness"])
    wb.save(tmp_path / "CASME2-coding-20140508.xlsx")
    with pytest.raises(MerDataError, match="no usable casme2 samples .*missing_frames 1"):
        build_manifest(SplitConfig("casme2", root=tmp_path))


def test_cli_writes_default_manifest_and_prints_summary(synth, tmp_path, monkeypatch):
    root = synth("casme2")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(data_app, ["splits", "casme2", "--root", str(root), "--classes", "3"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "manifests" / "casme2_loso_3cls.parquet"
    assert out.is_file() and "per class: 0 negative" in result.output and "excluded rows" in result.output
    rows = pq.read_table(out).to_pylist()
    assert {r["status"] for r in rows} <= {"ok", "excluded_class"} and any(r["status"] == "excluded_class" for r in rows)


@pytest.mark.parametrize("args, message", [
    (["splits", "casme2", "--protocol", "lodo"], "needs a composite"),
    (["splits", "casme2", "--classes", "7"], "--classes 7 is not defined for casme2"),
])
def test_cli_bad_input_is_one_line(args, message, tmp_path):
    result = CliRunner().invoke(data_app, args + ["--root", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
