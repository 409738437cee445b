"""mer-data: facial micro-expression datasets as exact splits and aligned frame-pair shards."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mer-data")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"


class MerDataError(Exception):
    """Bad user input (a file, row or flag): the CLI prints it as one line, without a traceback."""
