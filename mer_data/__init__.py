"""mer-data: facial micro-expression datasets as exact splits and aligned frame-pair shards."""

import functools
import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("mer-data")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"


class MerDataError(Exception):
    """Bad user input (a file, row or flag): the CLI prints it as one line, without a traceback."""


def one_line_errors(fn):
    """Decorate a typer command: a MerDataError (bad user input) becomes a one-line message on stderr and exit status
    2. typer is imported only when that happens, so importing the package stays free of it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MerDataError as exc:
            import typer

            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
