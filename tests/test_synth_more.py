"""The synthetic layouts of CASME, MMEW, 4DME, CAS(ME)^3 Part C, CAS(ME)^2 and SAMM Long Videos: their sheets' formats
and quirks, determinism, refused options, and `ingest` (pairs of whole long videos; one pair per labelled ME)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli import data_app
from mer_data import MerDataError
from mer_data.datasets import ADAPTERS
from mer_data.records import STATUS_OK
from mer_data.synth import TRUTH_FILE, generate
from pipelines.ingest import IngestConfig, run_ingest

NEW = ("casme", "casme_sq", "samm_lv", "mmew", "4dme", "casme3c")


def truth(root: Path) -> dict:
    return json.loads((root / TRUTH_FILE).read_text())


def test_casme_sheet_columns_and_padded_later_subjects(synth_root):
    root = synth_root("casme")
    ws = openpyxl.load_workbook(root / "casme.xlsx").active
    assert [c.value for c in ws[1]] == ["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "AU",
                                        "Emotion"]
    assert all(isinstance(ws.cell(r, 1).value, int) for r in range(2, ws.max_row + 1))
    names = {sub.name: sorted(os.listdir(next(sub.iterdir()))) for sub in (root / "CASME_raw_selected").iterdir()}
    assert re.fullmatch(r"EP\d\d_\d-\d+\.jpg", names["sub01"][0]) and not re.search(r"-0\d", "".join(names["sub01"]))
    assert re.fullmatch(r"EP\d\d_\d-\d{3}\.jpg", names["sub03"][0])


def test_casme_sq_sheet_has_no_header_and_naming_rules(synth_root):
    root = synth_root("casme_sq")
    wb = openpyxl.load_workbook(root / "CAS(ME)^2code_final.xlsx")
    assert wb.sheetnames == ["CASMEcode_final", "naming rule1", "naming rule2"]
    rows = [[c.value for c in row] for row in wb["CASMEcode_final"].iter_rows()]
    assert isinstance(rows[0][0], int) and re.fullmatch(r"[a-z]+\d_\d", rows[0][1])  # data from the first row on
    assert {r[7] for r in rows} == {"micro-expression", "macro-expression"}
    assert any(r[4] == 0 and r[7] == "macro-expression" for r in rows)  # offset 0, as in 44 real macro rows
    assert wb["naming rule1"].max_row == len(rows) and wb["naming rule2"]["A1"].data_type == "s"
    micro = sum(r[7] == "micro-expression" for r in rows)
    assert micro == truth(root)["samples"] == 12 and truth(root)["clips"] == 6  # two MEs and a macro in each video


def test_samm_lv_sheet_quirks_and_shifted_clip_sheet(synth_root):
    root = synth_root("samm_lv")
    path = root / "SAMM_LongVideos_V2_Release.xlsx"
    ws, cached = openpyxl.load_workbook(path).active, openpyxl.load_workbook(path, data_only=True).active
    assert ws.title == "FACS_Movement_Only" and ws["A10"].value == "Subject" and "-1" in ws["F7"].value
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=11)]
    assert {r[7] for r in rows} == {"Macro", "Micro - 1/2"} and ws["G11"].data_type == "f"
    assert cached["G11"].value == pytest.approx(rows[0][5] - rows[0][3] + 1)
    assert any(isinstance(r[3], float) for r in rows if r[7] == "Macro")
    assert [r[1] for r in rows if r[4] == -1] == [next(r[1] for r in rows if r[7] != "Macro")]
    clips = {r[1]: r for r in openpyxl.load_workbook(root / "SAMM_Micro_FACS_Codes_v2.xlsx").active.iter_rows(
        min_row=15, values_only=True)}
    shifts = {(r[1].rsplit("_", 1)[0], clips[r[1]][3] - r[3]) for r in rows if r[1] in clips}
    assert len(shifts) == len({video for video, _ in shifts}) > 1  # one shift per video, not all the same


def test_4dme_and_casme3c_sheet_quirks(synth_root):
    ws = openpyxl.load_workbook(synth_root("4dme") / "4DME_Labelling_Micro_release v1.xlsx").active
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert ws["A1"].value == "sub_ID" and sum("+" in r[7] for r in rows) == 1 and rows[0][6].startswith("AU4(k)+")
    ws = openpyxl.load_workbook(synth_root("casme3c") / "CAS(ME)3_part_C_ME.xlsx").active
    assert [c.value for c in ws[1]] == ["sub", "count", "onset", "offset", "au", "emotion"]
    assert "，" in "".join(str(c.value) for c in ws["E"])


@pytest.mark.parametrize("dataset", ["casme_sq", "4dme"])
def test_same_seed_same_bytes(tmp_path, dataset):
    trees = [generate(dataset, tmp_path / name, subjects=1, clips_per_subject=2, seed=seed)
             for name, seed in (("a", 3), ("b", 3), ("c", 4))]
    files = [{p.relative_to(t).as_posix(): p.read_bytes() for p in sorted(t.rglob("*")) if p.is_file()} for t in trees]
    assert files[0] == files[1] and files[0] != files[2]


@pytest.mark.parametrize("dataset", NEW)
def test_video_is_refused(tmp_path, dataset):
    with pytest.raises(MerDataError, match="--video: .* frame folders only"):
        generate(dataset, tmp_path / dataset, subjects=1, clips_per_subject=1, video=True)
    assert not list(tmp_path.glob(".*partial"))


def test_cli_synth_composite_and_too_many_casme_sq_clips(tmp_path):
    runner = CliRunner()
    result = runner.invoke(data_app, ["synth", "cd5me", "--out", str(tmp_path / "data"), "--subjects", "1",
                                      "--clips-per-subject", "3"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["casme2", "casme3", "mmew", "samm", "smic"]
    result = runner.invoke(data_app, ["synth", "casme_sq", "--out", str(tmp_path / "sq"), "--clips-per-subject", "9"])
    assert result.exit_code == 2 and "at most 8" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("dataset", NEW)
def test_ingest_pairs_whole_videos_and_one_pair_per_labelled_me(dataset, synth_root, tmp_path):
    root = synth_root(dataset)
    kw = dict(dataset=dataset, root=str(root), workers=0, face_detector="none", size=32, shard_size=5000)
    summary = run_ingest(IngestConfig(out=str(tmp_path / "all"), **kw))
    rows = pq.read_table(tmp_path / "all" / "000000.parquet").to_pylist()
    assert summary["ok"] and summary["failures"] == 0
    clips = {c.key: c for c in ADAPTERS[dataset].iter_clips(root)}
    assert {f"{r['subject']}/{r['clip']}" for r in rows} == set(clips)  # every video, labelled parts or not
    labelled = run_ingest(IngestConfig(out=str(tmp_path / "labelled"), labeled=True, **kw))
    metas = pq.read_table(tmp_path / "labelled" / "000000.parquet").to_pylist()
    samples = {s.sample_id: s for s in ADAPTERS[dataset].iter_samples(root) if s.status == STATUS_OK}
    assert labelled["written"] == len(samples) == truth(root)["samples"]
    assert {(m["sample_id"], m["t0"], m["t1"]) for m in metas} == {(k, s.onset, s.apex) for k, s in samples.items()}
