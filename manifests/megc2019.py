"""The MEGC2019 composite (CASME II + SAMM + SMIC-HS, negative/positive/surprise), as in the official combined_3class_gt.csv.

The root holds casme2/, samm/ and smic/, each laid out as its adapter expects; composite.py reads them. Each source is
labelled through its own 3-class table; the clips the official list leaves out are kept with status
`not_in_composite`. The official ids (`megc_subject` sub01 / 6 / s01, `megc_clip` s01_ne_01) are kept so a manifest
can be compared with the official file.
"""

from __future__ import annotations

import re
from pathlib import Path

from mer_data import MerDataError
from mer_data.records import STATUS_OK

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


def add_official_ids(rows: list[dict]) -> None:
    """Set `megc_subject` and `megc_clip` of every row in place, as the official file writes them."""
    for row in rows:
        row["megc_subject"], row["megc_clip"] = official_ids(row["dataset"], row["subject"], row["clip"])


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


__all__ = ["COLUMNS", "add_official_ids", "compare_official", "official_ids", "read_official"]
