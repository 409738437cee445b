"""Shared fixtures: synthetic dataset trees, generated once per test session.

Use the factory: `root = synth_root("samm")` (frame folders) or `synth_root("casme3", video=True)`. Each tree is the
default miniature (3 subjects × 4 micro-expressions, seed 0) written by `mer_data.synth.generate`; for "megc2019" the
root holds casme2/, samm/ and smic/. Trees are shared by every test of the session: treat them as read-only (copy one
with shutil.copytree before damaging it). `mer-data-synth.json` in each root lists the ground truth.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mer_data.synth import generate

SYNTH_SUBJECTS = 3  # enough for LOSO folds with several subjects on the training side
SYNTH_CLIPS = 4  # micro-expressions per subject: several classes per subject, every class for most subjects


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory):
    """Factory `synth_root(dataset, video=False) -> Path`: the synthetic tree's root, generated on first use."""
    cache: dict[tuple[str, bool], Path] = {}

    def make(dataset: str, video: bool = False) -> Path:
        key = (dataset, video)
        if key not in cache:
            base = tmp_path_factory.mktemp(f"synth-{dataset}-{'video' if video else 'frames'}")
            cache[key] = generate(dataset, base / dataset, subjects=SYNTH_SUBJECTS, clips_per_subject=SYNTH_CLIPS,
                                  video=video, seed=0)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def face_model() -> Path:
    """The BlazeFace model file: $MER_DATA_FACE_MODEL, else the user cache, fetched there on first use (official URL,
    else the mediapipe==0.10.21 wheel from the package index)."""
    from mer_data.facemodel import model_path

    return model_path()


def labeled_casme2(base: Path, face_model: Path, subjects: int, clips: int, seed: int) -> tuple[Path, Path]:
    """(LOSO manifest, labeled shards of 8 frames a sample at 64 px) of a synthetic CASME II written under `base`."""
    from manifests.build import SplitConfig, build_manifest
    from manifests.io import write_manifest
    from pipelines.ingest import IngestConfig, run_ingest

    root = generate("casme2", base / "casme2", subjects=subjects, clips_per_subject=clips, seed=seed)
    manifest = build_manifest(SplitConfig(dataset="casme2", protocol="loso", root=root))
    path = write_manifest(manifest.rows, manifest.metadata(), base / "m.parquet", manifest.columns)
    summary = run_ingest(IngestConfig(dataset="casme2", root=str(root), out=str(base / "shards"), labeled=True,
                                      workers=0, size=64, image_format="png", frames=8, face_model=str(face_model)))
    assert summary["ok"]
    return path, base / "shards"
