"""The rows of one dataset's manifest, before folds: the split config, one row per sample, and the sheet's record.

`manifests/build.py` (one dataset or a composite) and `manifests/composite.py` (several under one mapping) both build
on this module, which imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mer_data import MerDataError
from mer_data.aus import OR_RULES
from mer_data.classes import ClassMapping, normalize_objective
from mer_data.datasets import ADAPTERS, COMPOSITES
from mer_data.quirks import flags_of
from mer_data.records import STATUS_OK, Sample
from mer_data.sheets import sha256_file
from manifests.columns import au_columns, objective_class, span_warnings
from manifests.protocols import PROTOCOLS


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
