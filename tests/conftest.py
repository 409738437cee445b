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
