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
from mer_data.aus import OR_RULES
from mer_data.classes import ClassMapping, load_mapping, normalize_objective
from mer_data.datasets import ADAPTERS, COMPOSITES
from mer_data.quirks import flags_of
from mer_data.records import STATUS_OK, Sample
from mer_data.sheets import sha256_file
from manifests.columns import au_columns, objective_class, span_warnings
from manifests.protocols import PROTOCOLS, assign_folds, check_invariants


@dataclass(frozen=True)
class SplitConfig:
    """What `mer-data splits` builds; written into the manifest's metadata."""

    dataset: str = "casme2"  # an adapter (casme2 | samm | smic | casme3 | mmew | ...) or a composite (megc2019 | cd5me)
    protocol: str = "loso"  # loso (leave one subject out) | lodo (leave one dataset out; composites only)
    classes: int | str | None = None  # class count of the mapping, or "objective"; None = the dataset's default
    root: Path | None = None  # the unpacked dataset; None = data/<dataset> (data/ for megc2019) under the cwd
    annotations: Path | None = None  # the coding sheet; None = found under the root by its known names
    camera: str = "HS"  # smic: HS | VIS | NIR (the megc2019 composite always uses HS)
    smic_apex: str = "middle"  # smic apex policy: middle | max_diff
    apply_fixes: bool = True  # apply the `fix` rows of tables/quirks.csv (False: such rows keep their bad status)
    au_or: str = "union"  # how an "or" of AUs marks the AU columns: union (every alternative) | first | none
    frame_tolerance: int = 0  # frames the clip on disk may start/end away from onset/offset before a warning

    def __post_init__(self) -> None:
        if self.dataset not in ADAPTERS and self.dataset not in COMPOSITES:
            raise MerDataError(f"unknown dataset {self.dataset!r} (choose from {', '.join([*ADAPTERS, *COMPOSITES])})")
        if self.protocol not in PROTOCOLS:
            raise MerDataError(f"--protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.protocol == "lodo" and self.dataset not in COMPOSITES:
            raise MerDataError(f"--protocol lodo leaves one dataset out: it needs a composite ({', '.join(COMPOSITES)}), "
                               f"not {self.dataset}")
        if self.au_or not in OR_RULES:
            raise MerDataError(f"--au-or {self.au_or!r} is not one of {', '.join(OR_RULES)}")
        if self.frame_tolerance < 0:
            raise MerDataError(f"--frame-tolerance {self.frame_tolerance}: must be >= 0")

    def resolved_root(self) -> Path:
        """The root to read, defaulting to data/<dataset> (data/ for a composite)."""
        if self.root is not None:
            return Path(self.root)
        return Path("data") if self.dataset in COMPOSITES else Path("data") / self.dataset


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


def sample_row(sample: Sample, mapping: ClassMapping, cfg: SplitConfig) -> dict:
    """One manifest row: the sample's fields plus label, label_id, AUs, objective class, warnings and the final status
    (fold set later)."""
    if mapping.field == "objective_class":
        value = normalize_objective(sample.objective) or sample.objective  # I..VII, or the raw cell for the reason
    else:
        value = sample.emotion
    label, label_id, status, reason = mapping.assign(sample.dataset, value)
    if sample.status != STATUS_OK:  # a frame/sheet problem outranks a label problem
        status, reason = sample.status, sample.reason
    key = sample.sample_id.split("/", 1)[1]
    return {"sample_id": sample.sample_id, "dataset": sample.dataset, "subject": sample.subject, "clip": sample.clip,
            "onset": sample.onset, "apex": sample.apex, "offset": sample.offset, "emotion": sample.emotion,
            "label": label, "label_id": label_id, "fold": None, "status": status, "reason": reason,
            "source": sample.source, "fixes": ",".join(sample.fixes), "flags": ",".join(flags_of(sample.dataset, key)),
            "apex_policy": sample.apex_policy, "row": sample.row, "objective_class": objective_class(sample),
            "warnings": "; ".join(span_warnings(sample, cfg.frame_tolerance))} | au_columns(sample.au, cfg.au_or)


def sheet_record(module, root: Path, annotations: Path | None) -> dict:
    """{"path", "sha256"} of the sheet an adapter read, plus the rows it holds that are not micro-expressions (long-video
    sheets: `other_rows`, counted by type); empty for SMIC, which has no sheet."""
    sheet = module.annotation_file(root, annotations)
    if sheet is None:
        return {}
    record = {"path": str(sheet), "sha256": sha256_file(sheet)}
    if hasattr(module, "other_rows"):
        record["other_rows"] = module.other_rows(root, annotations)
    return record


def single_dataset_rows(cfg: SplitConfig, mapping: ClassMapping) -> tuple[list[dict], dict[str, dict]]:
    """Rows and the sheet record of one dataset's adapter."""
    module = ADAPTERS[cfg.dataset]
    root = cfg.resolved_root()
    options = {"apply_fixes": cfg.apply_fixes, "camera": cfg.camera, "smic_apex": cfg.smic_apex}
    rows = [sample_row(s, mapping, cfg) for s in module.iter_samples(root, cfg.annotations, **options)]
    record = sheet_record(module, root, cfg.annotations)
    return rows, ({cfg.dataset: record} if record else {})


def build_manifest(cfg: SplitConfig) -> Manifest:
    """Read the dataset(s), label every sample, assign folds and check the split invariants."""
    mapping = load_mapping(cfg.dataset, cfg.classes)
    extra: tuple[str, ...] = ()
    if cfg.dataset in COMPOSITES:
        from manifests.composite import composite_rows  # here, not on top: composite builds on this module

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
