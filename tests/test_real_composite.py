"""The cd5me composite (CASME II + SAMM + SMIC-HS + CAS(ME)^3 + MMEW, negative / positive / surprise) on the real sheets
in ../shared/me-annotations (skipped without them): the counts the README documents, under LOSO and LODO."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from manifests.build import SplitConfig, build_manifest, summarize
from real_trees import build_trees, composite, needs_shared

pytestmark = needs_shared
PER_DATASET = {  # dataset → (samples, subjects, negative, positive, surprise), CASME II from 20140508
    "casme2": (147, 24, 90, 32, 25), "samm": (133, 28, 92, 26, 15), "smic": (164, 16, 70, 51, 43),
    "casme3": (699, 88, 457, 55, 187), "mmew": (234, 30, 109, 36, 89),
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("real-cd5me")
    trees = build_trees(base, ["casme2", "casme2_20190701", "samm", "smic", "casme3", "mmew"])
    parts = {d: trees[d] for d in ("casme2", "samm", "smic", "casme3", "mmew")}
    return {"20140508": composite(base, "cd5me", parts),
            "20190701": composite(base, "cd5me_20190701", parts | {"casme2": trees["casme2_20190701"]})}


def _per_dataset(rows: list[dict]) -> dict[str, tuple]:
    out = {}
    for dataset in PER_DATASET:
        ok = [r for r in rows if r["status"] == "ok" and r["dataset"] == dataset]
        labels = Counter(r["label"] for r in ok)
        out[dataset] = (len(ok), len({r["subject"] for r in ok}), labels["negative"], labels["positive"], labels["surprise"])
    return out


def test_cd5me_loso_counts(roots):
    manifest = build_manifest(SplitConfig("cd5me", root=roots["20140508"]))
    assert _per_dataset(manifest.rows) == PER_DATASET
    ok = [r for r in manifest.rows if r["status"] == "ok"]
    assert len(ok) == 1377 and len({r["fold"] for r in ok}) == 186  # one fold per subject of the five datasets
    assert Counter(r["label"] for r in ok) == {"negative": 818, "positive": 200, "surprise": 359}
    assert Counter(r["status"] for r in manifest.rows if r["status"] != "ok") == {"excluded_class": 295}
    assert "cd5me loso 3-class: 1377 samples" in summarize(manifest, Path("m.parquet"))


def test_cd5me_lodo_and_the_newer_casme2_sheet(roots):
    lodo = build_manifest(SplitConfig("cd5me", protocol="lodo", root=roots["20140508"])).rows
    assert Counter(r["fold"] for r in lodo if r["fold"]) == {d: v[0] for d, v in PER_DATASET.items()}
    newer = _per_dataset(build_manifest(SplitConfig("cd5me", root=roots["20190701"])).rows)
    assert newer == PER_DATASET | {"casme2": (150, 24, 90, 32, 28)}  # sub24's three clips: sadness → surprise
