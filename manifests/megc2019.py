"""The MEGC2019 composite (CASME II + SAMM + SMIC-HS, negative/positive/surprise), as in the official combined_3class_gt.csv.

The root holds casme2/, samm/ and smic/, each laid out as its adapter expects. Each source is labelled through its
own 3-class table; the clips the official list leaves out are kept with status `not_in_composite`. The official ids
(`megc_subject` sub01 / 6 / s01, `megc_clip` s01_ne_01) are kept so a manifest can be compared with the official file.
"""

from __future__ import annotations

import re
from pathlib import Path

from mer_data import MerDataError
from mer_data.classes import ClassMapping
from mer_data.datasets import ADAPTERS
from mer_data.records import STATUS_OK
from mer_data.sheets import sha256_file
from manifests.build import SplitConfig, sample_row

SOURCES = ("casme2", "samm", "smic")  # the official file's datasets
COLUMNS = ("megc_subject", "megc_clip")  # extra manifest columns


def official_ids(dataset: str, subject: str, clip: str) -> tuple[str, str]:
    """(subject, clip) as the official file writes them.

    casme2 (sub01, EP02_01f), samm (6, 006_1_2), smic (s01, s01_ne_01).
    """
    local = subject.split("/", 1)[1]
    if dataset == "samm":
        return (str(int(local)) if local.isdigit() else local), clip
    if dataset == "smic":
        pad = lambda m: f"s{int(m.group(1)):02d}"  # noqa: E731 — s1 → s01, as the official file writes SMIC ids
        return re.sub(r"^s(\d+)", pad, local), re.sub(r"^s(\d+)", pad, clip)
    return local, clip


def composite_rows(cfg: SplitConfig, mapping: ClassMapping) -> tuple[list[dict], dict[str, dict]]:
    """Rows of all three sources with composite labels, official ids and `not_in_composite` for the left-out clips."""
    if cfg.annotations is not None:
        raise MerDataError("--annotations is not used for megc2019: put each sheet under ROOT/casme2 and ROOT/samm")
    root = cfg.resolved_root()
    rows: list[dict] = []
    sheets: dict[str, dict] = {}
    missing = [d for d in SOURCES if not (Path(root) / d).is_dir()]
    if missing:
        raise MerDataError(f"--root {root} has no {'/, '.join(missing)}/ folder (megc2019 needs casme2/, samm/ and smic/)")
    for dataset in SOURCES:
        sub = Path(root) / dataset
        module = ADAPTERS[dataset]
        samples = module.iter_samples(sub, None, apply_fixes=cfg.apply_fixes, camera="HS", smic_apex=cfg.smic_apex)
        for sample in samples:
            row = sample_row(sample, mapping)
            if row["status"] == STATUS_OK and sample.sample_id in mapping.exclude:
                row["status"], row["reason"] = "not_in_composite", mapping.exclude[sample.sample_id]
            row["megc_subject"], row["megc_clip"] = official_ids(dataset, sample.subject, sample.clip)
            rows.append(row)
        sheet = module.annotation_file(sub)
        if sheet is not None:
            sheets[dataset] = {"path": str(sheet), "sha256": sha256_file(sheet)}
    return rows, sheets


def read_official(path: Path) -> list[tuple[str, str, str, int]]:
    """(dataset, subject, filename, label_id) rows of combined_3class_gt.csv (no header, CRLF)."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or not parts[3].isdigit():
            raise MerDataError(f"{path} line {n}: expected dataset,subject,filename,label, got {line!r}")
        out.append((parts[0], parts[1], parts[2], int(parts[3])))
    return out


def compare_official(rows: list[dict], official: list[tuple[str, str, str, int]]) -> dict[str, list]:
    """Differences between a composite manifest's ok rows and the official list: missing, extra, relabelled."""
    ours = {(r["dataset"], r["megc_subject"], r["megc_clip"]): r["label_id"] for r in rows if r["status"] == STATUS_OK}
    theirs = {(d, s, f): label for d, s, f, label in official}
    return {"missing": sorted(set(theirs) - set(ours)), "extra": sorted(set(ours) - set(theirs)),
            "relabelled": sorted(k for k in set(ours) & set(theirs) if ours[k] != theirs[k])}


__all__ = ["COLUMNS", "SOURCES", "compare_official", "composite_rows", "official_ids", "read_official"]
