"""The README's main command, `mer-data demo`, end to end at a toy size (every stage runs, every picture is written)."""

import json

import cv2
from typer.testing import CliRunner

import cli


def test_demo_runs_end_to_end(tmp_path, face_model, monkeypatch):
    monkeypatch.setenv("MER_DATA_FACE_MODEL", str(face_model))
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--subjects", "3", "--pretrain-steps", "4", "--finetune-steps", "3",
            "--no-baseline", "--workers", "0", "--clips-per-subject", "5"]
    result = CliRunner().invoke(cli.data_app, args)
    assert result.exit_code == 0, result.output
    assert "pretrained" in result.output and "UF1" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pretrained"]["n"] == 15 and summary["pretrained"]["folds"] == 3
    for picture in summary["pictures"]:
        image = cv2.imread(picture)
        assert image is not None and image.shape[0] > 100, picture
    assert (out / "runs" / "pretrain" / "checkpoint-last.pt").is_file()
    # a second run resumes: every stage finds its output and nothing is retrained
    again = CliRunner().invoke(cli.data_app, args)
    assert again.exit_code == 0, again.output
    assert "exists" in again.output
