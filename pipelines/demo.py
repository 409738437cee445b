"""`mer-data demo`: the whole toolkit end to end on the built-in synthetic data, on a laptop CPU.

synthetic CAS(ME)^3 (unlabelled videos) → pair shards → μ-BERT pretraining; synthetic CASME II → LOSO manifest → labeled
shards → LOSO fine-tuning from the pretrained weights and from scratch → pooled UF1/UAR → movement maps. Pretraining sees
no CASME II subject, so no test subject of the LOSO folds is ever in the pretraining data. Every stage writes under OUT
and is skipped when its output is already there, so an interrupted demo resumes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from manifests.build import SplitConfig, build_manifest, summarize
from manifests.io import write_manifest
from mer_data import MerDataError
from mer_data.facemodel import fetch_model, resolve_model
from mer_data.synth import SynthConfig, synthesize
from mubert.finetune import FinetuneConfig
from mubert.maps import map_figure
from mer_data.evaluation.report import results_table
from mubert.train import TrainConfig, train
from pipelines.ingest import IngestConfig, format_summary, run_ingest
from pipelines.loso import LosoConfig, run as run_loso


@dataclass(frozen=True)
class DemoConfig:
    """Sizes chosen so the whole demo runs in minutes on two CPU cores."""

    out: str = "demo"  # everything is written under this folder
    subjects: int = 5  # synthetic CASME II subjects = LOSO folds
    clips_per_subject: int = 10  # labelled micro-expressions per CASME II subject
    pretrain_subjects: int = 4  # synthetic CAS(ME)^3 subjects whose unlabelled videos are pretrained on
    pretrain_steps: int = 150  # μ-BERT pretraining steps (tiny preset)
    pretrain_lr: float = 5e-4  # peak lr of the short pretraining (higher than the paper's 1e-4 for 100 epochs)
    finetune_steps: int = 50  # fine-tuning steps per LOSO fold
    batch_size: int = 16  # pairs per step, pretraining and fine-tuning
    baseline: bool = True  # also run LOSO from scratch, to show what pretraining adds
    workers: int = 2  # Ray workers of the ingest (0 = serial)
    seed: int = 0  # seeds every stage
    timings: dict = field(default_factory=dict, compare=False)  # filled in as stages finish (seconds)


def run_demo(cfg: DemoConfig, say=print) -> dict:
    """Run every stage not yet done; returns the summary (also written to OUT/summary.json)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"casme2": out / "data" / "casme2", "casme3": out / "data" / "casme3",
             "manifest": out / "manifests" / "casme2_loso_5cls.parquet", "pairs": out / "shards" / "casme3_pairs",
             "labeled": out / "shards" / "casme2_labeled", "pretrain": out / "runs" / "pretrain",
             "loso": out / "runs" / "loso_pretrained", "baseline": out / "runs" / "loso_baseline",
             "maps": out / "maps.png"}
    _stage(cfg, say, "face model", lambda: _face_model(say))
    _stage(cfg, say, "synthetic data", lambda: _synth(cfg, paths, say))
    _stage(cfg, say, "LOSO split", lambda: _splits(paths, say))
    _stage(cfg, say, "ingest", lambda: _ingest(cfg, paths, say))
    _stage(cfg, say, "pretraining", lambda: _pretrain(cfg, paths, say))
    results = {}
    runs = [("pretrained", paths["loso"], paths["pretrain"] / "checkpoint-last.pt")]
    if cfg.baseline:
        runs.append(("baseline", paths["baseline"], None))
    for name, run_dir, init in runs:
        results[name] = _stage(cfg, say, f"LOSO {name}", lambda: _loso(cfg, paths, run_dir, init, say))
    _stage(cfg, say, "maps", lambda: map_figure(paths["pretrain"] / "checkpoint-last.pt", paths["maps"],
                                                 shards=paths["labeled"], count=5))
    summary = {name: {"uf1": r["uf1"], "uar": r["uar"], "n": r["n"], "folds": len(r["folds"])} for name, r in results.items()}
    summary.update(timings=cfg.timings, pictures=[str(paths["maps"]), str(paths["loso"] / "confusion.png")],
                   results=[str(p / "results.json") for _, p, _ in runs])
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _stage(cfg: DemoConfig, say, name: str, fn):
    say(f"== {name}")
    t0 = time.perf_counter()
    result = fn()
    cfg.timings[name] = round(time.perf_counter() - t0, 1)
    return result


def _face_model(say) -> None:
    try:
        say(f"face model: {resolve_model()}")
    except MerDataError:
        fetched = fetch_model()
        say(f"face model fetched from {fetched.source}: {fetched.path}")


def _synth(cfg: DemoConfig, paths: dict, say) -> None:
    for name, subjects, clips, seed in (("casme2", cfg.subjects, cfg.clips_per_subject, cfg.seed),
                                        ("casme3", cfg.pretrain_subjects, 4, cfg.seed + 1)):
        if (paths[name] / "mer-data-synth.json").exists():
            say(f"{name}: {paths[name]} exists")
            continue
        for tree in synthesize(SynthConfig(name, paths[name], subjects, clips, False, seed, False)):
            say(f"{name}: {tree.root}  subjects {tree.subjects}, clips {tree.clips}, frames {tree.frames}")


def _splits(paths: dict, say) -> None:
    manifest = build_manifest(SplitConfig(dataset="casme2", protocol="loso", root=paths["casme2"]))
    write_manifest(manifest.rows, manifest.metadata(), paths["manifest"], manifest.columns)
    say(summarize(manifest, paths["manifest"]))


def _ingest(cfg: DemoConfig, paths: dict, say) -> None:
    jobs = ((paths["casme3"], paths["pairs"], "casme3", False), (paths["casme2"], paths["labeled"], "casme2", True))
    for root, shard_dir, dataset, labeled in jobs:
        summary = run_ingest(IngestConfig(dataset=dataset, root=str(root), out=str(shard_dir), labeled=labeled,
                                          shard_size=500, workers=cfg.workers, seed=cfg.seed))
        say(format_summary(summary))
        if not summary["ok"]:
            raise MerDataError(f"ingest of {root} failed; see {shard_dir}/ingest.json")


def _pretrain(cfg: DemoConfig, paths: dict, say) -> None:
    resume = (paths["pretrain"] / "checkpoint-last.pt").exists()
    result = train(TrainConfig(shards=str(paths["pairs"]), out=str(paths["pretrain"]), preset="tiny",
                               steps=cfg.pretrain_steps, batch_size=cfg.batch_size, lr=cfg.pretrain_lr, workers=1,
                               seed=cfg.seed, save_every=100, log_every=25, resume=resume))
    say(f"pretraining: step {result.step}, loss {result.loss}, checkpoint {result.checkpoint}")


def _loso(cfg: DemoConfig, paths: dict, run_dir: Path, init: Path | None, say) -> dict:
    ft = FinetuneConfig(steps=cfg.finetune_steps, batch_size=cfg.batch_size, seed=cfg.seed)
    results = run_loso(LosoConfig(manifest=str(paths["manifest"]), shards=str(paths["labeled"]), out=str(run_dir),
                                  init=str(init) if init else None, preset="tiny", finetune=ft))
    say(results_table(results))
    return results
