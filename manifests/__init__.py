"""Split manifests: annotated samples → labelled rows → LOSO / LODO folds → a validated parquet file with metadata.

The parquet files that `mer-data splits` writes by default also land in this folder (`manifests/*.parquet`); they are
data, git-ignored, and never imported.
"""

from manifests.build import SplitConfig, build_manifest
from manifests.io import read_manifest, write_manifest

__all__ = ["SplitConfig", "build_manifest", "read_manifest", "write_manifest"]
