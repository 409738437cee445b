"""Command-line entry points: `mer-data` (synth, splits, ingest, models, inspect, preview, demo), `mer-train`, `mer-eval`.

Thin by design: each command builds a config, calls one library function and prints its summary. Bad user input
(a MerDataError) is printed as one line naming the file, row or flag, with exit status 2 — never a traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer

from mer_data import MerDataError

data_app = typer.Typer(help="Micro-expression datasets: synthetic data, LOSO splits, aligned frame-pair shards.",
                       no_args_is_help=True, pretty_exceptions_enable=False)
train_app = typer.Typer(help="Pretrain μ-BERT on frame-pair shards.", pretty_exceptions_enable=False)
eval_app = typer.Typer(help="LOSO fine-tuning, evaluation (UF1/UAR) and micro-movement maps.",
                       no_args_is_help=True, pretty_exceptions_enable=False)


def one_line_errors(fn):
    """Turn MerDataError (bad user input) into a one-line message on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MerDataError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


@data_app.command()
@one_line_errors
def splits(
    dataset: str = typer.Argument(..., help="casme2 | samm | smic | casme3 | megc2019"),
    protocol: str = typer.Option("loso", help="loso (leave one subject out) | lodo (leave one dataset out, megc2019)"),
    classes: Optional[int] = typer.Option(None, help="class count (casme2 5|3, samm 5|3, smic 3, casme3 7|4|3, megc2019 3)"),
    root: Optional[Path] = typer.Option(None, help="the unpacked dataset (default data/<dataset>, data/ for megc2019)"),
    annotations: Optional[Path] = typer.Option(None, help="the coding sheet (default: found under --root)"),
    out: Optional[Path] = typer.Option(None, help="manifest file (default manifests/<dataset>_<protocol>_<N>cls.parquet)"),
    camera: str = typer.Option("HS", help="smic camera: HS | VIS | NIR"),
    smic_apex: str = typer.Option("middle", help="smic apex policy: middle | max_diff"),
    fixes: bool = typer.Option(True, help="apply the known corrections of mer_data/tables/quirks.csv"),
) -> None:
    """Write a validated split manifest (parquet) of every annotated micro-expression, with folds and statuses."""
    from manifests.build import SplitConfig, build_manifest, default_out, summarize
    from manifests.io import write_manifest

    cfg = SplitConfig(dataset=dataset, protocol=protocol, classes=classes, root=root, annotations=annotations,
                      camera=camera, smic_apex=smic_apex, apply_fixes=fixes)
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
    dataset: str = typer.Argument(..., help="casme2 | samm | smic | casme3"),
    out: Path = typer.Option(..., help="shard directory"),
    root: Optional[Path] = typer.Option(None, help="the unpacked dataset (default data/<dataset>)"),
    labeled: bool = typer.Option(False, help="one sample per annotated ME (f0 = onset, f1 = apex) for fine-tuning"),
    annotations: Optional[Path] = typer.Option(None, help="labeled mode: the coding sheet (default: found under --root)"),
    delta: str = typer.Option("5:11", help="δ range LO:HI in frames (inclusive)"),
    pairs_per_frame: int = typer.Option(1, help="δ draws per anchor frame"),
    stride: int = typer.Option(1, help="anchor every N-th frame"),
    seed: int = typer.Option(0, help="seed of the per-clip δ draws"),
    size: int = typer.Option(224, help="output side in pixels"),
    face_detector: str = typer.Option("mediapipe", help="mediapipe (align on the eyes) | none (resize pre-cropped frames)"),
    face_model: Optional[Path] = typer.Option(None, help="BlazeFace .tflite (default $MER_DATA_FACE_MODEL, else the cache)"),
    min_confidence: float = typer.Option(0.5, help="face score accepted at once (0.3 is tried when none reaches it)"),
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
                       labeled=labeled, delta=delta_range, pairs_per_frame=pairs_per_frame, stride=stride, seed=seed,
                       size=size, face_detector=face_detector, face_model=str(face_model or ""),
                       min_confidence=min_confidence, image_format=image_format, quality=quality,
                       shard_size=shard_size, exclude_subjects=resolve_excluded(exclude_subjects, fold),
                       workers=(os.cpu_count() or 1) if workers is None else workers, ray_address=ray_address, max_retries=max_retries,
                       max_failure_rate=max_failure_rate, overwrite=overwrite)
    summary = run_ingest(cfg)
    typer.echo(format_summary(summary))
    if not summary["ok"]:
        raise typer.Exit(1)


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
) -> None:
    """Draw a contact sheet of random pairs: I_t, I_{t+δ} and their amplified difference."""
    from mer_data.preview import write_preview

    if not directory.is_dir():
        raise MerDataError(f"{directory}: no such directory")
    typer.echo(write_preview(directory, out, count=count, seed=seed, gain=gain))


if __name__ == "__main__":
    sys.exit(data_app())
