"""A split manifest with its labels permuted: the control task on which any protocol that selects on the test side
shows its optimism (nothing real can be learnt, so honest scores sit at chance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from manifests.io import read_manifest, schema, write_manifest


def shuffle_labels(manifest: Path, out: Path, seed: int = 0) -> Path:
    """Write `out`: `manifest` with the labels of its ok rows permuted (a seeded permutation over all ok rows, so class
    counts are kept and every label is independent of its sample); the metadata says so."""
    table, meta = read_manifest(Path(manifest))
    rows = table.to_pylist()
    ok = [i for i, r in enumerate(rows) if r["status"] == "ok" and r["label_id"] is not None]
    perm = np.random.default_rng(seed).permutation(len(ok))
    labels = [(rows[i]["label"], rows[i]["label_id"]) for i in ok]
    for i, j in zip(ok, perm):
        rows[i]["label"], rows[i]["label_id"] = labels[j]
    extra = tuple(n for n in table.schema.names if n not in set(schema().names))
    return write_manifest(rows, {**meta, "labels_shuffled": {"seed": seed, "source": str(manifest)}}, Path(out), extra)

