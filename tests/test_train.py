"""The training engine: the loss falls, exact resume, identical DDP replicas under torchrun, checkpoints, `mer-train`."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli import train_app
from mer_data import MerDataError
from mubert import checkpoint
from mubert.model import MuBERT, MuBERTConfig
from mubert.train import NonFiniteLossError, TrainConfig, lr_at, parse_model_settings, train
from test_data import write_shards

# A very small μ-BERT (32 px, 4 px patches: an 8×8 grid) so that each test trains in seconds on a shared CPU.
SMALL = (("image_size", 32), ("patch_size", 4), ("dim", 32), ("heads", 2), ("decoder_dim", 32),
         ("decoder_heads", 2), ("depth", 1), ("decoder_depth", 1), ("swap_min_block", 4))
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a small shared CPU, spinning thread pools make these tiny steps many times slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("train_shards"), shards=3, per_shard=16, size=32)


def config(shards: Path, out: Path, **kw) -> TrainConfig:
    base = TrainConfig(shards=str(shards), out=str(out), model=SMALL, steps=6, batch_size=4, lr=3e-3, workers=0,
                       shuffle_buffer=8, log_every=1, save_every=3)
    return replace(base, **kw)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses(run: Path) -> list[tuple]:
    """Everything in metrics.jsonl that does not depend on timing."""
    timing = {"samples_per_s", "data_wait_frac"}
    return [tuple((k, v) for k, v in sorted(m.items()) if k not in timing) for m in metrics(run)]


def digest(state: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode() + state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def test_lr_warms_up_then_decays_to_zero():
    lrs = [lr_at(s, 100, 1e-3, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3) and max(lrs) == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and 0 < lrs[-1] < 1e-6
    assert lr_at(0, 10, 1e-3, 0.0) == pytest.approx(1e-3)


def test_loss_falls_and_the_run_writes_its_outputs(shards, tmp_path):
    run = tmp_path / "run"
    result = train(config(shards, run, steps=30, log_every=5, save_every=15, export_safetensors=True))
    rows = metrics(run)
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30] and result.step == 30
    assert set(rows[0]) >= {"step", "loss", "loss_r", "loss_agg", "lr", "samples_per_s", "data_wait_frac", "skipped"}
    assert all(math.isfinite(r["loss"]) and r["samples_per_s"] > 0 and 0 <= r["data_wait_frac"] <= 1 for r in rows)
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]  # reconstruction is learned
    assert rows[-1]["lr"] < rows[0]["lr"]
    assert {p.name for p in run.glob("checkpoint-*.pt")} == {"checkpoint-15.pt", "checkpoint-30.pt", "checkpoint-last.pt"}
    state = checkpoint.load(run / "checkpoint-last.pt")
    assert state["step"] == 30 and state["config"]["model"]["dim"] == 32 and "optimizer" in state
    assert json.loads((run / "config.json").read_text())["plan"]["steps_per_epoch"] == 12  # 48 pairs / 4
    weights, cfg = checkpoint.load_weights(run / "model.safetensors")
    assert digest(weights) == digest(result.model.state_dict()) == digest(state["model"])
    model = MuBERT(MuBERTConfig.from_dict(cfg["model"]))
    model.load_state_dict(weights)  # the export rebuilds the model


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_gives_the_same_losses_as_an_uninterrupted_run(shards, tmp_path, workers):
    straight = train(config(shards, tmp_path / "a", workers=workers))
    first = train(config(shards, tmp_path / "b", workers=workers, stop_at=4))  # mid-epoch, between checkpoints
    assert first.step == 4 and first.checkpoint.name == "checkpoint-4.pt"
    resumed = train(config(shards, tmp_path / "b", workers=workers, resume=True))
    assert resumed.step == 6
    assert losses(tmp_path / "b") == losses(tmp_path / "a") and len(losses(tmp_path / "a")) == 6
    assert digest(resumed.model.state_dict()) == digest(straight.model.state_dict())


def test_resume_after_a_crash_redoes_the_lost_steps(shards, tmp_path, monkeypatch):
    train(config(shards, tmp_path / "a", steps=5))
    import mubert.train as engine
    real = engine.train_step

    def crash_at_step_5(model, opt, f0, f1, cfg, step):
        if step == 4:
            raise KeyboardInterrupt
        return real(model, opt, f0, f1, cfg, step)

    monkeypatch.setattr(engine, "train_step", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(config(shards, tmp_path / "b", steps=5))
    assert [m["step"] for m in metrics(tmp_path / "b")] == [1, 2, 3, 4]  # the checkpoint is at 3
    monkeypatch.setattr(engine, "train_step", real)
    train(config(shards, tmp_path / "b", steps=5, resume=True))
    assert losses(tmp_path / "b") == losses(tmp_path / "a")


def test_resume_refuses_a_different_stream_and_fresh_runs_refuse_an_old_folder(shards, tmp_path):
    train(config(shards, tmp_path / "r", steps=2))
    with pytest.raises(MerDataError, match="--batch-size differs"):
        train(config(shards, tmp_path / "r", steps=4, batch_size=2, resume=True))
    with pytest.raises(MerDataError, match="already holds a run"):
        train(config(shards, tmp_path / "r", steps=2))
    with pytest.raises(MerDataError, match="no such checkpoint"):
        train(config(shards, tmp_path / "empty", resume=True))


def test_non_finite_loss_stops_with_a_clear_error(shards, tmp_path, monkeypatch):
    real = MuBERT.forward

    def poisoned(self, f0, f1):
        out = real(self, f0, f1)
        return {**out, "loss": out["loss"] * float("nan")}

    monkeypatch.setattr(MuBERT, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match="non-finite loss or gradient at step 1"):
        train(config(shards, tmp_path / "nan"))
    assert not list((tmp_path / "nan").glob("checkpoint-*.pt"))


def test_config_checks_name_the_flag():
    with pytest.raises(MerDataError, match="--preset"):
        TrainConfig(preset="huge")
    with pytest.raises(MerDataError, match=r"unknown model setting\(s\) \['dimm'\]"):
        TrainConfig(model=(("dimm", 3),))
    assert parse_model_settings(["dim=64", "poi=dino", "swap_aspect=[0.5, 2]", "dma=false"]) == (
        ("dim", 64), ("poi", "dino"), ("swap_aspect", (0.5, 2)), ("dma", False))
    with pytest.raises(MerDataError, match="KEY=VALUE"):
        parse_model_settings(["dim"])


@pytest.mark.parametrize("preset", ["mb1-tiny", "mae-tiny", "authors-tiny"])
def test_every_objective_trains_through_the_engine(shards, tmp_path, preset):
    """The Table 6 objectives and the released code's run the same loop; DINO's teacher follows its momentum schedule."""
    small = SMALL + (("dino_local_size", 16), ("dino_local_crops", 2), ("dino_hidden", 32), ("dino_out_dim", 16))
    result = train(config(shards, tmp_path / preset, preset=preset, model=small, steps=3, save_every=3))
    rows = metrics(tmp_path / preset)
    assert len(rows) == 3 and all(math.isfinite(r["loss"]) for r in rows)
    assert (rows[-1]["loss_agg"] > 0) == (preset == "authors-tiny")
    state = checkpoint.load(tmp_path / preset / "checkpoint-last.pt")
    assert state["config"]["model"]["objective"] == ("mae" if preset == "mae-tiny" else "mubert")
    if preset == "authors-tiny":
        student, teacher = result.model.encoder.norm.weight, result.model.dino.teacher.norm.weight
        assert not torch.equal(student, teacher) and result.model.progress == pytest.approx(2 / 3)


# The model settings of a format-1 checkpoint (before DMA followed Eq. 8), as that version wrote them.
FORMAT1_MODEL = dict(image_size=32, patch_size=4, in_chans=3, dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1,
                     decoder_heads=2, mlp_ratio=4.0, ln_eps=1e-6, dma=False, dma_gate_scale=True, dma_chunk=256,
                     poi="mse", gamma=1.0, beta=1.0, swap_mode="block", swap_ratio=0.5, swap_min_block=4,
                     swap_aspect=[0.3, 1 / 0.3], crop_scale=[0.4, 1.0], crop_ratio=[0.75, 4 / 3], norm_pix_loss=False,
                     dino_out_dim=256, dino_hidden=256, dino_bottleneck=64, dino_teacher_temp=0.04,
                     dino_student_temp=0.1, dino_center_momentum=0.9, ema_momentum=0.996)


def test_format1_checkpoints_load_without_dma_and_are_refused_with_it(tmp_path):
    """Without DMA and DINO a format-1 model computes what it did; with DMA its Â was normalised over I_{t/s}."""
    torch.manual_seed(0)
    today = MuBERTConfig.from_dict({**FORMAT1_MODEL, "dma": "off"})
    model = MuBERT(today)
    for name, dma, poi in (("old.pt", False, "mse"), ("old_dma.pt", True, "mse"), ("old_dino.pt", False, "dino")):
        checkpoint.save(tmp_path / name, {"format": 1, "step": 5, "data": {"epoch": 0, "batch": 5},
                                          "model": model.state_dict(), "optimizer": {},
                                          "config": {"model": {**FORMAT1_MODEL, "dma": dma, "poi": poi}}})
    weights, config = checkpoint.load_weights(tmp_path / "old.pt")
    assert MuBERTConfig.from_dict(config["model"]) == today
    rebuilt = MuBERT(today)
    rebuilt.load_state_dict(weights)
    assert digest(rebuilt.state_dict()) == digest(model.state_dict())
    with pytest.raises(MerDataError, match=r"format 1\) whose DMA normalised"):
        checkpoint.load(tmp_path / "old_dma.pt")
    with pytest.raises(MerDataError, match="another DINO head"):
        checkpoint.load(tmp_path / "old_dino.pt")
    (tmp_path / "hello.pt").write_text("hello\n")
    with pytest.raises(MerDataError, match="not a readable checkpoint"):
        checkpoint.load(tmp_path / "hello.pt")


def test_two_processes_under_torchrun_keep_identical_replicas(shards, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(f"""
        import hashlib, json, os, sys
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from test_train import SMALL, digest
        from mubert.train import TrainConfig, train
        cfg = TrainConfig(shards={str(shards)!r}, out={str(tmp_path / 'run')!r}, model=SMALL, steps=4, batch_size=4,
                          lr=3e-3, workers=1, shuffle_buffer=8, log_every=2, save_every=4)
        result = train(cfg)
        out = {str(tmp_path)!r} + f"/rank{{os.environ['RANK']}}.json"
        json.dump({{"digest": digest(result.model.state_dict()), "step": result.step}}, open(out, "w"))
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] and ranks[0]["step"] == 4
    saved = checkpoint.load(tmp_path / "run" / "checkpoint-last.pt")
    assert digest(saved["model"]) == ranks[0]["digest"] and saved["config"]["world_size"] == 2
    assert saved["config"]["plan"]["steps_per_epoch"] == 6  # 48 pairs / (4 per rank · 2 ranks)
    assert [m["step"] for m in metrics(tmp_path / "run")] == [2, 4]  # rank 0 alone writes


def test_cli_trains_and_reports_bad_input_in_one_line(shards, tmp_path):
    runner = CliRunner()
    args = ["--shards", str(shards), "--out", str(tmp_path / "cli"), "--steps", "2", "--batch-size", "4",
            "--workers", "0", "--log-every", "1", "--dma", "off", "--poi", "off", "--set", "image_size=32",
            "--set", "patch_size=4", "--set", "dim=32", "--set", "decoder_dim=32", "--set", "depth=1",
            "--set", "decoder_depth=1", "--export-safetensors", "--tensorboard"]
    result = runner.invoke(train_app, args)
    assert result.exit_code == 0, result.output
    assert "checkpoint-2.pt" in result.output and (tmp_path / "cli" / "model.safetensors").exists()
    assert list((tmp_path / "cli" / "tensorboard").glob("events.out.tfevents.*"))
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())["model"]
    assert saved["dma"] == "off" and saved["poi"] == "off" and saved["dim"] == 32
    again = runner.invoke(train_app, args + ["--resume"])
    assert again.exit_code == 0 and "step 2: nothing left to train" in again.output
    for bad, message in ((["--shards", str(tmp_path / "nope")], "no such folder"),
                         (["--shards", str(shards), "--steps", "2", "--epochs", "1"], "not both"),
                         (["--shards", str(shards), "--poi", "maybe"], "poi must be"),
                         (["--shards", str(shards), "--dma", "true"], "dma must be"),
                         (["--shards", str(shards), "--preset", "mb9-tiny"], "--preset must be one of")):
        result = runner.invoke(train_app, bad)
        assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
