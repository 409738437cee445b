"""Command-line entry points: `mer-data` (synth, splits, ingest, spot, models, inspect, preview, demo), `mer-train`, and
`mer-eval` (its commands live in `mer_data/evaluation/commands.py`).

Thin by design: each command builds a config, calls one library function and prints its summary. Bad user input
(a MerDataError) is printed as one line naming the file, row or flag, with exit status 2 — never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from mer_data import MerDataError, one_line_errors
from mer_data.evaluation.commands import eval_app

__all__ = ["data_app", "train_app", "eval_app"]  # the three scripts of pyproject.toml

data_app = typer.Typer(help="Micro-expression datasets: synthetic data, LOSO splits, aligned frame-pair shards.",
                       no_args_is_help=True, pretty_exceptions_enable=False)
train_app = typer.Typer(help="Pretrain μ-BERT on frame-pair shards.", pretty_exceptions_enable=False)


@data_app.command()
@one_line_errors
def synth(
    dataset: str = typer.Argument(..., help="casme2 | samm | smic | casme3 | casme | casme_sq | samm_lv | mmew | 4dme | "
                                            "casme3c | megc2019 | cd5me"),
    out: Optional[Path] = typer.Option(None, help="dataset root to write (default data/<dataset>, data/ for composites)"),
    subjects: int = typer.Option(3, help="subjects per dataset"),
    clips_per_subject: int = typer.Option(4, help="micro-expressions per subject (casme3: two or three per video)"),
    video: bool = typer.Option(False, "--video", help="write clips as video files instead of frame folders"),
    seed: int = typer.Option(0, help="master seed: the same seed writes the same bytes"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing non-empty dataset root"),
    motion: str = typer.Option("none", help="head motion: none | drift (smooth pose drift) | hard (drift, covered "
                                            "and faceless spans, a cut, a fast lean)"),
    video_frames: int = typer.Option(0, help="casme3: pad every video with neutral frames to at least N frames"),
    difficulty: float = typer.Option(0.0, help="0: every subject one face; up to 1: each subject its own identity "
                                               "(shape, tone, features), weaker movements, more noise"),
) -> None:
    """Write a format-faithful synthetic miniature of a dataset (layout, names, sheet quirks, moving face frames)."""
    from mer_data.synth import SynthConfig, synthesize

    cfg = SynthConfig(dataset, out, subjects, clips_per_subject, video, seed, overwrite, motion, video_frames,
                      difficulty)
    for tree in synthesize(cfg):
        sheet = tree.sheet if tree.sheet else "none (labels in folder names)"
        typer.echo(f"{tree.dataset}: {tree.root}  subjects {tree.subjects}, clips {tree.clips}, "
                   f"samples {tree.samples}, frames {tree.frames}, sheet {sheet}")


@data_app.command()
@one_line_errors
def splits(
    dataset: str = typer.Argument(..., help="casme2 | samm | smic | casme3 | casme | casme_sq | samm_lv | mmew | 4dme | "
                                            "casme3c | megc2019 | cd5me"),
    protocol: str = typer.Option("loso", help="loso (leave one subject out) | lodo (leave one dataset out, composites)"),
    classes: Optional[str] = typer.Option(None, help="class count (casme2 5|3, samm 5|3, smic 3, casme3 7|4|3, casme 4|3, "
                                                     "casme_sq 4|3, samm_lv 5|3, mmew 6|7|3, 4dme 5|3, casme3c 7|4|3, "
                                                     "megc2019 3, cd5me 3) or objective (casme2, samm, samm_lv, casme3)"),
    root: Optional[Path] = typer.Option(None, help="the unpacked dataset (default data/<dataset>, data/ for composites)"),
    annotations: Optional[Path] = typer.Option(None, help="the coding sheet (default: found under --root)"),
    out: Optional[Path] = typer.Option(None, help="manifest file (default manifests/<dataset>_<protocol>_<N>cls.parquet)"),
    camera: str = typer.Option("HS", help="smic camera: HS | VIS | NIR"),
    smic_apex: str = typer.Option("middle", help="smic apex policy: middle | max_diff"),
    fixes: bool = typer.Option(True, help="apply the known corrections of mer_data/tables/quirks.csv"),
    au_or: str = typer.Option("union", help="AU columns for an 'or' of AUs: union (every alternative) | first | none"),
    frame_tolerance: int = typer.Option(0, help="frames a clip on disk may start/end away from onset/offset "
                                                "before the row gets a warning"),
    task: str = typer.Option("mer", help="mer (micro-expression samples) | spot (every macro/micro interval and every "
                                         "long video: casme_sq, samm_lv, casme3)"),
) -> None:
    """Write a validated split manifest (parquet) of every annotated micro-expression, with folds and statuses."""
    from manifests.build import SplitConfig, build_manifest, default_out, summarize
    from manifests.io import write_manifest

    if task == "spot":
        from manifests.spot import SpotConfig, build_spot_manifest, default_spot_out, summarize_spot, write_spot_manifest

        spot_cfg = SpotConfig(dataset=dataset, root=root, annotations=annotations, apply_fixes=fixes)
        spotting = build_spot_manifest(spot_cfg)
        typer.echo(summarize_spot(spotting, write_spot_manifest(spotting, out or default_spot_out(spot_cfg))))
        return
    if task != "mer":
        raise MerDataError(f"--task {task!r} is not mer or spot")

    cfg = SplitConfig(dataset=dataset, protocol=protocol, classes=classes, root=root, annotations=annotations,
                      camera=camera, smic_apex=smic_apex, apply_fixes=fixes, au_or=au_or, frame_tolerance=frame_tolerance)
    manifest = build_manifest(cfg)
    path = write_manifest(manifest.rows, manifest.metadata(), out or default_out(cfg, manifest.mapping), manifest.columns)
    typer.echo(summarize(manifest, path))


models_app = typer.Typer(help="The BlazeFace face detector model used by `ingest`.", no_args_is_help=True)
data_app.add_typer(models_app, name="models")


@models_app.command("fetch")
@one_line_errors
def models_fetch(
    dest: Optional[Path] = typer.Option(None, help="folder to store the model in (default: the user cache dir)"),
    force: bool = typer.Option(False, help="fetch again even when a copy exists"),
) -> None:
    """Fetch the MediaPipe BlazeFace short-range model (official URL, else the mediapipe 0.10.21 wheel) and print its sha256."""
    from mer_data.facemodel import fetch_model

    result = fetch_model(dest, force=force)
    typer.echo(f"{result.path}\nsha256 {result.sha256} (from {result.source})")


@data_app.command()
@one_line_errors
def ingest(
    dataset: str = typer.Argument(..., help="casme2 | samm | smic | casme3 | casme | casme_sq | samm_lv | mmew | 4dme | "
                                            "casme3c"),
    out: Path = typer.Option(..., help="shard directory"),
    root: Optional[Path] = typer.Option(None, help="the unpacked dataset (default data/<dataset>)"),
    labeled: bool = typer.Option(False, help="one sample per annotated ME (its frames onset..offset) for fine-tuning"),
    frames: int = typer.Option(0, help="labeled: frames stored per sample, uniform over onset..offset (0 = all)"),
    views: str = typer.Option("", help="labeled: views computed at ingest and stored with each sample (flow)"),
    annotations: Optional[Path] = typer.Option(None, help="labeled mode: the coding sheet (default: found under --root)"),
    delta: str = typer.Option("5:11", help="δ range LO:HI in frames (inclusive)"),
    pairs_per_frame: int = typer.Option(1, help="δ draws per anchor frame"),
    stride: int = typer.Option(1, help="anchor every N-th frame"),
    seed: int = typer.Option(0, help="seed of the per-clip δ draws"),
    size: int = typer.Option(224, help="output side in pixels"),
    face_detector: str = typer.Option("mediapipe", help="mediapipe (align on the eyes) | none (resize pre-cropped frames)"),
    face_model: Optional[Path] = typer.Option(None, help="BlazeFace .tflite (default $MER_DATA_FACE_MODEL, else the cache)"),
    face_runtime: str = typer.Option("auto", help="auto (LiteRT where installed, else MediaPipe Tasks) | litert | "
                                                  "mediapipe: the same detections, LiteRT at about half the cost"),
    min_confidence: float = typer.Option(0.5, help="face score accepted on its own (0.3 next to a confident one)"),
    detect_hz: float = typer.Option(3.0, help="scheduled face detections per second of video (more where it moves)"),
    smooth_s: float = typer.Option(0.5, help="radius of the eye-track smoothing window, seconds"),
    tolerance_px: float = typer.Option(1.0, help="frames share a matrix while their eyes stay this close (224-px units)"),
    decode_scale: str = typer.Option("auto", help="auto: JPEG frames decode at 1/2..1/8 where the face keeps the output's "
                                                  "resolution | full"),
    decode_regions: bool = typer.Option(True, "--decode-regions/--whole-frames",
                                        help="JPEG frames no face is detected on decode only the box the warp reads "
                                             "(the same bytes; needs the built libjpeg-turbo extension)"),
    image_format: str = typer.Option("jpg", "--format", help="jpg | png (lossless)"),
    quality: int = typer.Option(95, help="JPEG quality"),
    shard_size: int = typer.Option(1000, help="pairs per shard"),
    workers: Optional[int] = typer.Option(None, help="Ray workers (default: CPU count); 0 runs serially without Ray"),
    ray_address: str = typer.Option("", help="address of an existing Ray cluster (e.g. auto or ray://host:10001)"),
    max_retries: int = typer.Option(3, help="Ray retries of a failed shard task"),
    exclude_subjects: str = typer.Option("", help="qualified subjects to leave out: a,b list, a text file, or a manifest"
                                                  " .parquet (its subjects; with --fold only that fold's)"),
    fold: str = typer.Option("", help="with a manifest in --exclude-subjects: exclude only rows of this fold"),
    max_failure_rate: float = typer.Option(0.5, help="exit 1 when failed rows / rows exceed this"),
    overwrite: bool = typer.Option(False, help="delete the shards already in --out and start over"),
) -> None:
    """Ingest every clip into face-aligned frame-pair WebDataset shards (resumable, identical bytes for any --workers)."""
    import os

    from mer_data.pairs import parse_delta
    from pipelines.ingest import IngestConfig, format_summary, run_ingest
    from pipelines.plan import resolve_excluded

    try:
        delta_range = parse_delta(delta)
    except ValueError as exc:
        raise MerDataError(f"--delta: {exc}") from None
    cfg = IngestConfig(dataset=dataset, root=str(root or ""), out=str(out), annotations=str(annotations or ""),
                       labeled=labeled, frames=frames, views=tuple(v for v in views.split(",") if v),
                       delta=delta_range, pairs_per_frame=pairs_per_frame, stride=stride, seed=seed,
                       size=size, face_detector=face_detector, face_model=str(face_model or ""),
                       face_runtime=face_runtime, min_confidence=min_confidence, detect_hz=detect_hz, smooth_s=smooth_s, tolerance_px=tolerance_px,
                       decode_scale=decode_scale, decode_regions=decode_regions,
                       image_format=image_format, quality=quality,
                       shard_size=shard_size, exclude_subjects=resolve_excluded(exclude_subjects, fold),
                       workers=(os.cpu_count() or 1) if workers is None else workers, ray_address=ray_address, max_retries=max_retries,
                       max_failure_rate=max_failure_rate, overwrite=overwrite)
    summary = run_ingest(cfg)
    typer.echo(format_summary(summary))
    if not summary["ok"]:
        raise typer.Exit(1)


@data_app.command()
@one_line_errors
def spot(
    dataset: str = typer.Argument(..., help="long-video dataset: casme_sq | samm_lv"),
    root: Path = typer.Option(..., help="dataset root"),
    out: Path = typer.Option(Path("preds.csv"), help="prediction file to write (.csv or .parquet: video, onset, "
                                                     "offset, type, score, emotion)"),
    method: str = typer.Option("mdmd", help="spotter: mdmd (training-free, MEGC2020 baseline) | softnet (learned, "
                                            "LOSO by subject on the sheet's micro-expressions) | mubert (diag(A) "
                                            "change of a mer-train checkpoint)"),
    checkpoint: Optional[Path] = typer.Option(None, help="--method mubert: the mer-train checkpoint (with DMA)"),
    k: int = typer.Option(0, help="frames: MDMD head/tail distance, SOFTNet flow distance (0: 0.4 s / 0.2 s)"),
    p: Optional[float] = typer.Option(None, help="threshold = mean + p*(max - mean) per video (default: MDMD 0.35, "
                                                 "SOFTNet 0.55)"),
    epochs: int = typer.Option(10, help="SOFTNet training epochs per fold"),
    intervals: str = typer.Option("peaks", help="peaks (each peak +- k) | runs (the reference's runs above it)"),
    flow: str = typer.Option("tvl1", help="optical flow: tvl1 | farneback"),
    face_detector: str = typer.Option("mediapipe", help="mediapipe (tracked) | none (pre-cropped faces)"),
    workers: int = typer.Option(0, help="Ray workers, one video per task (0: serial, in this process)"),
) -> None:
    """Spot expression intervals in every long video of a dataset and write a prediction file."""
    from mer_data.spot.features import FeatureConfig
    from mer_data.spot.mdmd import MDMDConfig
    from mer_data.spot.mubert_signal import MuBertSignalConfig
    from mer_data.spot.softnet import SoftNetConfig
    from pipelines.spot import SpotConfig, run_spot

    try:
        mdmd = MDMDConfig(k=k, p=0.35 if p is None else p, flow=flow, intervals=intervals)
        softnet = SoftNetConfig(k=k, p=0.55 if p is None else p, flow=flow, epochs=epochs)
        mubert = MuBertSignalConfig(str(checkpoint or ""), k=k, p=0.55 if p is None else p)
        features = FeatureConfig(flow=flow, face_detector=face_detector)
    except ValueError as exc:
        raise MerDataError(str(exc)) from None
    summary = run_spot(SpotConfig(dataset, root, out, method, mdmd, softnet, mubert, features, workers))
    typer.echo(f"{summary['videos']} videos, {summary['intervals']} intervals, {summary['frames_decoded']} frames "
               f"decoded, {summary['gap_windows']} windows off the face, {summary['seconds']} s -> {summary['out']}")
    for line in summary["failed"]:
        typer.echo(f"  not spotted: {line}")


@data_app.command()
@one_line_errors
def inspect(directory: Path = typer.Argument(..., help="shard directory written by `mer-data ingest`")) -> None:
    """Verify every shard (tar members vs parquet rows vs stats, read back with webdataset) and print totals."""
    from mer_data.shards import inspect_dir

    if not directory.is_dir():
        raise MerDataError(f"{directory}: no such directory")
    totals = inspect_dir(directory)
    typer.echo(f"{totals['shards']} shards, {totals['rows']} rows, {totals['written']} pairs written, "
               f"{sum(totals['failures'].values())} failures {totals['failures'] or ''}".rstrip())
    for problem in totals["problems"]:
        typer.echo(f"MISMATCH {problem}", err=True)
    if totals["bad_shards"]:
        typer.echo(f"{len(totals['bad_shards'])} of {totals['shards']} shards have problems: "
                   f"{', '.join(f'{i:06d}' for i in totals['bad_shards'])}", err=True)
    if totals["problems"]:
        raise typer.Exit(1)


@data_app.command()
@one_line_errors
def preview(
    directory: Path = typer.Argument(..., help="shard directory written by `mer-data ingest`"),
    out: Path = typer.Option(Path("preview.png"), help="contact sheet PNG to write"),
    count: int = typer.Option(8, help="number of random pairs (rows)"),
    seed: int = typer.Option(0, help="seed of the random pick"),
    gain: float = typer.Option(8.0, help="amplification of |f1 - f0| in the third column"),
    eyes: bool = typer.Option(True, help="mark the tracked eyes (green) and the template's (white) on each frame"),
) -> None:
    """Draw a contact sheet of random pairs: I_t, I_{t+δ} and their amplified difference."""
    from mer_data.preview import write_preview

    if not directory.is_dir():
        raise MerDataError(f"{directory}: no such directory")
    typer.echo(write_preview(directory, out, count=count, seed=seed, gain=gain, eyes=eyes))



@train_app.command()
@one_line_errors
def train(
    shards: Path = typer.Option(..., help="shard folder written by `mer-data ingest`"),
    preset: str = typer.Option("tiny", help="OBJECTIVE-SIZE: mb1 | mb2 | mb3 | mae | authors × tiny (CPU, demo) | base "
                                            "(the paper's); a bare tiny | base is mb3 (README: Table 6)"),
    steps: Optional[int] = typer.Option(None, help="optimizer steps (or give --epochs)"),
    epochs: Optional[float] = typer.Option(None, help="nominal passes over the shards' pairs (default 1)"),
    batch_size: int = typer.Option(64, help="frame pairs per process (GPU) and step"),
    lr: float = typer.Option(1e-4, help="peak learning rate; linear warmup, then cosine decay to 0"),
    out: Path = typer.Option(Path("runs/mubert"), help="run folder: config, metrics.jsonl, checkpoints"),
    resume: bool = typer.Option(False, help="continue exactly from OUT/checkpoint-last.pt"),
    workers: int = typer.Option(4, help="DataLoader worker processes per process decoding the jpgs"),
    seed: int = typer.Option(0, help="seeds weights, data order and every step's swapping/cropping"),
    save_every: int = typer.Option(1000, help="steps between checkpoints"),
    log_every: int = typer.Option(10, help="steps between metrics.jsonl lines"),
    stop_at: int = typer.Option(0, help="end this invocation after this step (then --resume); 0 = run to the end"),
    export_safetensors: bool = typer.Option(False, help="also write OUT/model.safetensors at the end"),
    tensorboard: bool = typer.Option(False, help="also write TensorBoard scalars to OUT/tensorboard"),
    warmup: float = typer.Option(0.05, help="fraction of the steps with linear warmup"),
    weight_decay: float = typer.Option(0.05, help="AdamW weight decay (on matrices)"),
    clip_grad: float = typer.Option(1.0, help="max gradient L2 norm; 0 = off"),
    precision: str = typer.Option("auto", help="auto (bf16 autocast on CUDA, fp32 on CPU) or fp32"),
    device: str = typer.Option("auto", help="auto, cuda or cpu"),
    dma: Optional[str] = typer.Option(None, help="diag (Eq. 8-9), full (the released code's diag_att=False: full "
                                                 "cross-attention) or off (no DMA, Table 6 MB1)"),
    poi: Optional[str] = typer.Option(None, help="patch of interest loss: mse (paper), dino (the released code's DINO) "
                                                 "or off"),
    swap_mode: Optional[str] = typer.Option(None, help="block (Algorithm 1) or token (authors' code)"),
    swap_ratio: Optional[float] = typer.Option(None, help="fraction of patches swapped in (preset: 0.5)"),
    image_size: Optional[int] = typer.Option(None, help="model input side in px (frames are resized on the device)"),
    norm_pix_loss: Optional[bool] = typer.Option(None, "--norm-pix-loss/--raw-pix-loss",
                                                 help="per-patch normalized reconstruction target"),
    set_: list[str] = typer.Option([], "--set", help="any other model setting, KEY=VALUE (repeatable)"),
) -> None:
    """Pretrain μ-BERT on frame-pair shards; the same command runs under torchrun for many GPUs or nodes."""
    from mubert.train import TrainConfig, parse_model_settings, train as run_training

    if steps is not None and epochs is not None:
        raise MerDataError("give --steps or --epochs, not both")
    switches = {"dma": dma, "poi": poi, "swap_mode": swap_mode, "swap_ratio": swap_ratio,
                "image_size": image_size, "norm_pix_loss": norm_pix_loss}
    model = {k: v for k, v in switches.items() if v is not None} | dict(parse_model_settings(set_))
    cfg = TrainConfig(shards=str(shards), out=str(out), preset=preset, model=tuple(sorted(model.items())),
                      steps=steps or 0, epochs=epochs or 1.0, batch_size=batch_size, lr=lr, warmup=warmup,
                      weight_decay=weight_decay, clip_grad=clip_grad, precision=precision, workers=workers,
                      seed=seed, save_every=save_every, log_every=log_every, resume=resume, stop_at=stop_at,
                      export_safetensors=export_safetensors, tensorboard=tensorboard, device=device)
    result = run_training(cfg)
    if result.rank != 0:
        return
    if result.step == result.start:
        typer.echo(f"step {result.step}: nothing left to train in {result.run_dir} (raise --steps to go on)")
    else:
        loss = "n/a" if result.loss is None else f"{result.loss:.4f}"
        typer.echo(f"step {result.step}, loss {loss}: {result.checkpoint} (metrics: {result.run_dir}/metrics.jsonl)")


@data_app.command()
@one_line_errors
def demo(
    out: Path = typer.Option(Path("demo"), help="folder for everything the demo writes (an existing one is resumed)"),
    subjects: int = typer.Option(5, help="synthetic CASME II subjects (= LOSO folds)"),
    clips_per_subject: int = typer.Option(10, help="labelled micro-expressions per synthetic CASME II subject"),
    pretrain_steps: int = typer.Option(150, help="μ-BERT pretraining steps"),
    finetune_steps: int = typer.Option(50, help="fine-tuning steps per fold"),
    baseline: bool = typer.Option(True, help="also evaluate without pretraining"),
    workers: int = typer.Option(2, help="Ray workers of the ingest (0: serial)"),
) -> None:
    """Synthetic data → splits → ingest → μ-BERT pretraining → LOSO UF1/UAR → movement maps, on a laptop CPU."""
    from pipelines.demo import DemoConfig, run_demo

    cfg = DemoConfig(out=str(out), subjects=subjects, clips_per_subject=clips_per_subject,
                     pretrain_steps=pretrain_steps, finetune_steps=finetune_steps,
                     baseline=baseline, workers=workers)
    summary = run_demo(cfg, say=typer.echo)
    typer.echo("\n== summary (synthetic CASME II, LOSO, pooled over folds)")
    typer.echo(f"{'run':<12}{'UF1':>8}{'UAR':>8}{'samples':>9}{'folds':>7}")
    for name in ("pretrained", "baseline"):
        if name in summary:
            r = summary[name]
            typer.echo(f"{name:<12}{100 * (r['uf1'] or 0):8.2f}{100 * (r['uar'] or 0):8.2f}{r['n']:>9}{r['folds']:>7}")
    typer.echo("stage seconds: " + ", ".join(f"{k} {v}" for k, v in summary["timings"].items()))
    typer.echo("pictures: " + ", ".join(summary["pictures"]))


if __name__ == "__main__":
    sys.exit(data_app())
