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


if __name__ == "__main__":
    sys.exit(data_app())
