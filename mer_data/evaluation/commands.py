"""The `mer-eval` commands: LOSO fine-tuning and evaluation, run comparison, the label-shuffle control, the authors'
checkpoint import, micro-movement maps and spotting scores. `cli.py` exposes `eval_app` as the `mer-eval` script.

Thin by design, like `cli.py`: each command builds a config, calls one library function and prints its summary; bad
user input (a MerDataError) is one line on stderr with exit status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mer_data import MerDataError, one_line_errors

eval_app = typer.Typer(help="LOSO fine-tuning, evaluation (UF1/UAR) and micro-movement maps.",
                       no_args_is_help=True, pretty_exceptions_enable=False)


@eval_app.command("loso")
@one_line_errors
def eval_loso(
    manifest: Path = typer.Option(..., help="split manifest from `mer-data splits` (its folds are used as they are)"),
    shards: Path = typer.Option(..., help="labeled shards from `mer-data ingest --labeled` of the same dataset"),
    out: Path = typer.Option(Path("runs/loso"), help="run folder: folds/, results.json, results.txt, confusion.png"),
    init: Optional[Path] = typer.Option(None, help="pretrained checkpoint (.pt or .safetensors) from mer-train or "
                                                   "import-checkpoint"),
    baseline: bool = typer.Option(False, "--baseline", help="no pretraining: a randomly initialised backbone"),
    preset: str = typer.Option("tiny", help="backbone for --baseline: a mer-train preset (tiny, base, mb1-base, …)"),
    steps: int = typer.Option(300, help="optimizer steps per fold (fixed budget)"),
    batch_size: int = typer.Option(16, help="pairs per step"),
    lr: float = typer.Option(1e-4, help="peak learning rate of the backbone (head ×10)"),
    inner_val_subjects: int = typer.Option(0, help="training subjects held out to pick the step (0: last step)"),
    features: str = typer.Option("dma_delta", help="dma_delta | dma (P_dma as in the paper) | delta (no DMA)"),
    workers: int = typer.Option(0, help="folds in parallel as Ray tasks (0: one after another in this process)"),
    ray_address: Optional[str] = typer.Option(None, help="existing Ray cluster"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    seed: int = typer.Option(0, help="seed of batches, head initialisation and augmentation"),
    model: str = typer.Option("mubert", help="mubert | fdp | cva-fpf (any registered model; --preset is its preset)"),
    select: str = typer.Option("fixed", help="registered models: fixed | inner-val | test-best (optimistic: selects "
                                             "the epoch on the test subject, to reproduce published numbers only)"),
    au_input: str = typer.Option("preset", help="registered models: preset | none | annotation (optimistic: "
                                                "ground-truth AUs at test time, as FaceSleuth's code does)"),
    epochs: int = typer.Option(0, help="registered models: epochs per fold (0: the preset's)"),
) -> None:
    """Train and evaluate every fold of a manifest; report pooled UF1/UAR (MEGC2019) and per class / fold / dataset."""
    from mubert.finetune import FinetuneConfig
    from mer_data.evaluation.fold import FoldConfig
    from mer_data.evaluation.report import results_table
    from pipelines.loso import LosoConfig, run

    fold = None
    if model == "mubert":
        if (init is None) == (not baseline):
            raise MerDataError("give --init CKPT (pretrained) or --baseline (no pretraining), not both and not neither")
        if (select, au_input, epochs) != ("fixed", "preset", 0):
            raise MerDataError("--select, --au-input and --epochs are for registered models (--model fdp | cva-fpf)")
    else:
        fold = FoldConfig(model=model, preset=preset, select=select, inner_val_subjects=max(1, inner_val_subjects),
                          au_input=au_input, epochs=epochs, seed=seed)
    ft = FinetuneConfig(steps=steps, batch_size=batch_size, lr=lr, inner_val_subjects=inner_val_subjects, seed=seed,
                        features=features)
    cfg = LosoConfig(manifest=str(manifest), shards=str(shards), out=str(out), init=str(init) if init else None,
                     preset=preset, workers=workers, ray_address=ray_address, device=device, finetune=ft,
                     model=model, fold=fold)
    results = run(cfg)
    typer.echo(results_table(results))
    typer.echo(f"wrote {out}/results.json, {out}/results.txt, {out}/confusion.png, {out}/predictions.csv")


@eval_app.command("compare")
@one_line_errors
def eval_compare(
    runs: list[Path] = typer.Argument(..., help="run folders of `mer-eval loso` (each with results.json)"),
    out: Optional[Path] = typer.Option(None, help="also write OUT.md (markdown) and OUT.png (the table as a picture)"),
) -> None:
    """Runs side by side: UF1, UAR, accuracy, per dataset, protocol flags (optimistic ones named), parameters."""
    from mer_data.evaluation.compare import compare_rows, markdown, table_png, text

    rows = compare_rows(runs)
    typer.echo(text(rows))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(markdown(rows) + "\n")
        table_png(rows, out.with_suffix(".png"))
        typer.echo(f"wrote {out.with_suffix('.md')}, {out.with_suffix('.png')}")


@eval_app.command("shuffle-labels")
@one_line_errors
def eval_shuffle_labels(
    manifest: Path = typer.Argument(..., help="split manifest from `mer-data splits`"),
    out: Path = typer.Option(..., help="manifest to write, its labels permuted"),
    seed: int = typer.Option(0, help="seed of the permutation"),
) -> None:
    """The control task: the same samples and folds with permuted labels (honest protocols should score chance)."""
    from manifests.shuffle import shuffle_labels

    typer.echo(f"wrote {shuffle_labels(manifest, out, seed)} (labels permuted, seed {seed})")


@eval_app.command("import-checkpoint")
@one_line_errors
def eval_import_checkpoint(
    src: Path = typer.Argument(..., help="the authors' released checkpoint, e.g. CASME2-is224-p8-b16-ep200.pth"),
    out: Path = typer.Option(..., help="mer-train checkpoint (.pt) to write, for --init of `loso` and `maps`"),
) -> None:
    """Convert the authors' μ-BERT checkpoint (github uark-cviu/Micron-BERT) into ours, read without unpickling code."""
    from mubert.authors import import_checkpoint

    summary = import_checkpoint(src, out)
    cfg = summary["config"]
    typer.echo(f"{summary['tensors']} tensors of epoch {summary['epoch']} → {summary['path']}: authors objective, "
               f"dma={cfg.dma}, poi={cfg.poi}, {cfg.image_size} px, d={cfg.dim}, {cfg.depth}+{cfg.decoder_depth} blocks")
    for note in summary["notes"]:
        typer.echo(f"note: {note}")


@eval_app.command("maps")
@one_line_errors
def eval_maps(
    init: Path = typer.Option(..., help="pretrained checkpoint from mer-train or import-checkpoint"),
    out: Path = typer.Option(Path("map.png"), help="PNG to write"),
    onset: Optional[Path] = typer.Option(None, help="onset frame image (with --apex)"),
    apex: Optional[Path] = typer.Option(None, help="apex frame image (with --onset)"),
    align: bool = typer.Option(True, help="align the two frames with one face transform (off for aligned frames)"),
    face_model: Optional[Path] = typer.Option(None, help="BlazeFace model (default: MER_DATA_FACE_MODEL or the cache)"),
    shards: Optional[Path] = typer.Option(None, help="labeled shards instead of --onset/--apex: one row per sample"),
    count: int = typer.Option(4, help="samples drawn from --shards"),
    display: str = typer.Option("minmax", help="minmax (each map min-max normalised) | paper (diag(Â) shown as "
                                                "1 − diag/max, the paper's convention)"),
) -> None:
    """Draw diag(Â), the POI map S and their product over (onset, apex) pairs, as in the paper's Figure 7."""
    from mubert.maps import map_figure

    path = map_figure(init, out, onset=onset, apex=apex, align=align, face_model=face_model, shards=shards, count=count,
                      display=display)
    typer.echo(f"wrote {path}")


@eval_app.command("spot")
@one_line_errors
def eval_spot(
    manifest: Path = typer.Option(..., help="spotting manifest from `mer-data splits DATASET --task spot`"),
    predictions: Path = typer.Option(..., help="predictions .csv/.parquet: video, onset, offset[, type, score, emotion]"),
    convention: str = typer.Option("megc2020", help="megc2020 (MEGC baseline result_helper) | strs (STRS-Metric) | "
                                                    "lgsnet (LGSNet's scorer)"),
    threshold: float = typer.Option(0.5, help="IoU at or above which a prediction hits a ground truth"),
    details: Optional[Path] = typer.Option(None, help="CSV of every match: prediction row, ground truth, TP/FP/FN"),
) -> None:
    """Score spotted intervals: TP/FP/FN, precision, recall, F1 for macro, micro, overall, per dataset and pooled."""
    import csv

    from mer_data.spot.metric import SpotMetric, evaluate_files, format_report, matches_rows

    report = evaluate_files(manifest, predictions, SpotMetric(convention, threshold))
    typer.echo(format_report(report))
    if details is not None:
        rows = matches_rows(report)
        with open(details, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, ["video", "type", "outcome", "prediction", "truth", "iou"])
            writer.writeheader()
            writer.writerows(rows)
        typer.echo(f"wrote {details} ({len(rows)} matches)")

