"""Samples → manifest rows: class label and id from the mapping tables, status and reason, quirk ids, folds."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import mer_data
from mer_data import MerDataError
from mer_data.classes import ClassMapping, load_mapping
from mer_data.datasets import COMPOSITES
from mer_data.records import STATUS_OK
from manifests.composite import composite_rows
from manifests.protocols import assign_folds, check_invariants
from manifests.rows import SplitConfig, sample_row, sheet_record, single_dataset_rows

__all__ = ["Manifest", "SplitConfig", "build_manifest", "default_out", "sample_row", "sheet_record",
           "single_dataset_rows", "summarize"]


@dataclass
class Manifest:
    """The rows of a split manifest and its metadata, before writing."""

    rows: list[dict]
    mapping: ClassMapping
    config: SplitConfig
    sheets: dict[str, dict] = field(default_factory=dict)  # dataset → {"path", "sha256"} of the sheet read
    columns: tuple[str, ...] = ()  # extra columns beyond the base schema (the composite's official ids)

    def metadata(self) -> dict:
        """JSON-ready metadata stored in the parquet footer."""
        cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self.config).items()}
        return {"dataset": self.config.dataset, "protocol": self.config.protocol, "classes": list(self.mapping.classes),
                "n_classes": self.mapping.n, "mapping": self.mapping.as_metadata(), "sheets": self.sheets,
                "config": cfg, "toolkit_version": mer_data.__version__,
                "counts": dict(Counter(r["status"] for r in self.rows))}


def build_manifest(cfg: SplitConfig) -> Manifest:
    """Read the dataset(s), label every sample, assign folds and check the split invariants."""
    mapping = load_mapping(cfg.dataset, cfg.classes)
    extra: tuple[str, ...] = ()
    if cfg.dataset in COMPOSITES:
        rows, sheets, extra = composite_rows(cfg, mapping)
    else:
        rows, sheets = single_dataset_rows(cfg, mapping)
    if not any(r["status"] == STATUS_OK for r in rows):
        raise MerDataError(f"no usable {cfg.dataset} samples under --root {cfg.resolved_root()}: "
                           f"{len(rows)} rows, {describe_counts(r['status'] for r in rows)}")
    assign_folds(rows, cfg.protocol)
    check_invariants(rows, cfg.protocol)
    return Manifest(rows, mapping, cfg, sheets, extra)


def describe_counts(statuses: Iterable[str]) -> str:
    """'missing_frames 3, excluded_class 9' (or 'none')."""
    counts = Counter(statuses)
    return ", ".join(f"{k} {v}" for k, v in counts.most_common()) or "none"


def default_out(cfg: SplitConfig, mapping: ClassMapping) -> Path:
    """manifests/<dataset>_<protocol>_<N>cls.parquet (…_objective.parquet for objective classes) under the cwd."""
    return Path("manifests") / f"{cfg.dataset}_{cfg.protocol}_{_classes_word(mapping)}.parquet"


def _classes_word(mapping: ClassMapping) -> str:
    """'5cls' for a 5-class emotion mapping, 'objective' for the objective classes."""
    return f"{mapping.n}cls" if mapping.field == "emotion" else mapping.name


def summarize(manifest: Manifest, path: Path) -> str:
    """A readable summary: totals, samples per class and per fold, excluded rows by reason, quirks used."""
    rows, classes = manifest.rows, manifest.mapping.classes
    ok = [r for r in rows if r["status"] == STATUS_OK]
    folds = Counter(r["fold"] for r in ok)
    cfg = manifest.config
    kind = f"{manifest.mapping.n}-class" if manifest.mapping.field == "emotion" else "objective-class"
    lines = [f"{cfg.dataset} {cfg.protocol} {kind}: {len(ok)} samples of {len(rows)} rows, "
             f"{len({r['subject'] for r in ok})} subjects, {len(folds)} folds -> {path}"]
    for d, s in manifest.sheets.items():
        other = ", ".join(f"{n} {row_type}" for row_type, n in s.get("other_rows", {}).items())
        lines.append(f"  sheet {d}: {s['path']} (sha256 {s['sha256'][:16]})"
                     + (f"; not micro-expressions, left out: {other}" if other else ""))
    per_class = Counter(r["label"] for r in ok)
    lines.append("  per class: " + ", ".join(f"{i} {c} {per_class[c]}" for i, c in enumerate(classes)))
    if len({r["dataset"] for r in ok}) > 1:
        for dataset in sorted({r["dataset"] for r in ok}):
            counts = Counter(r["label"] for r in ok if r["dataset"] == dataset)
            lines.append(f"    {dataset}: " + ", ".join(f"{c} {counts[c]}" for c in classes))
    per_fold = ", ".join(f"{f}={n}" for f, n in sorted(folds.items(), key=_natural))  # one unbreakable word each
    lines.append(textwrap.fill(per_fold, 118, initial_indent="  per fold (test samples): ", subsequent_indent="    "))
    excluded = Counter(r["status"] for r in rows if r["status"] != STATUS_OK)
    lines.append(f"  excluded rows: {sum(excluded.values())}" + ("" if excluded else " (none)"))
    for status, n in excluded.most_common():
        examples = [f"{r['sample_id']} ({r['reason']})" for r in rows if r["status"] == status][:2]
        lines.append(f"    {status} {n}: e.g. " + "; ".join(examples))
    warned = [r for r in rows if r["warnings"]]
    if warned:
        first = warned[0]
        lines.append(f"  warnings {len(warned)} (sheet vs frames on disk): e.g. {first['sample_id']} ({first['warnings']})")
    used = Counter(q for r in rows for q in filter(None, (r["fixes"] + "," + r["flags"]).split(",")))
    if used:
        lines.append("  quirks: " + ", ".join(f"{q} x{n}" for q, n in sorted(used.items())))
    return "\n".join(lines)


def _natural(item: tuple[str, int]) -> tuple:
    """Fold names with numbers in numeric order (sub2 before sub10)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", item[0]))
