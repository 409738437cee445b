"""Cross-dataset composites: every source dataset read from ROOT/<name>/ by its own adapter and labelled through its
own 3-class table into one negative / positive / surprise manifest, for LOSO over all subjects or LODO.

`megc2019` is the official MEGC2019 composite (CASME II + SAMM + SMIC-HS, see megc2019.py). `cd5me` widens it with
CAS(ME)^3 Part A and MMEW; it has no official list, so every clip whose emotion maps to one of the three classes is
kept (CASME II: disgust and repression are negative, as in MEGC2019; CAS(ME)^3: disgust, fear, anger and sad; MMEW:
disgust, fear, sadness and anger). Its counts on the official sheets are in the README and tests/test_real_composite.py.
"""

from __future__ import annotations

from pathlib import Path

from mer_data import MerDataError
from mer_data.classes import ClassMapping
from mer_data.datasets import ADAPTERS, COMPOSITES
from mer_data.records import STATUS_OK
from manifests.megc2019 import COLUMNS, add_official_ids
from manifests.rows import SplitConfig, sample_row, sheet_record


def composite_rows(cfg: SplitConfig, mapping: ClassMapping) -> tuple[list[dict], dict[str, dict], tuple[str, ...]]:
    """(rows of every source with composite labels, sheet records, extra columns); the clips the mapping excludes
    (megc2019: those the official list leaves out) get status `not_in_composite`."""
    sources = COMPOSITES[cfg.dataset]
    if cfg.annotations is not None:
        raise MerDataError(f"--annotations is not used for {cfg.dataset}: put each dataset (and its sheet) under "
                           f"ROOT/{'/, ROOT/'.join(sources)}/")
    root = Path(cfg.resolved_root())
    missing = [d for d in sources if not (root / d).is_dir()]
    if missing:
        raise MerDataError(f"--root {root} has no {'/, '.join(missing)}/ folder "
                           f"({cfg.dataset} needs {'/, '.join(sources)}/)")
    rows: list[dict] = []
    sheets: dict[str, dict] = {}
    for dataset in sources:
        module = ADAPTERS[dataset]
        samples = module.iter_samples(root / dataset, None, apply_fixes=cfg.apply_fixes, camera="HS",
                                      smic_apex=cfg.smic_apex)
        for sample in samples:
            row = sample_row(sample, mapping, cfg)
            if row["status"] == STATUS_OK and sample.sample_id in mapping.exclude:
                row["status"], row["reason"] = "not_in_composite", mapping.exclude[sample.sample_id]
            rows.append(row)
        record = sheet_record(module, root / dataset, None)
        if record:
            sheets[dataset] = record
    if cfg.dataset != "megc2019":
        return rows, sheets, ()
    add_official_ids(rows)
    return rows, sheets, COLUMNS
