"""Known errors of the official sheets, kept as versioned data in tables/quirks.csv, and applying them to a row's cells.

A quirk matches a row by (dataset, key, field) *and* the sheet's value: a corrected re-release of a sheet no longer
matches, so it is left alone. The key `*` matches every row of the dataset (a convention of the whole sheet, such as
SAMM Long Videos writing an apex that was not annotated as -1). `action` is `fix` (replace the cell by `corrected`,
or by the middle frame when `corrected` is `middle`) or `flag` (keep the cell, name the quirk in the manifest).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from mer_data.sheets import to_text

MIDDLE = "middle"  # `corrected` value meaning: onset + (offset - onset) // 2
FIELDS = ("onset", "apex", "offset")


@dataclass(frozen=True)
class Quirk:
    """One row of tables/quirks.csv."""

    id: str  # stable name recorded in the manifest's fixes/flags columns
    dataset: str  # registry name
    key: str  # the sample's id without the dataset prefix, from raw sheet values (e.g. "sub04/EP12_01f"); * for all
    field: str  # "onset", "apex" or "offset"
    official: str  # the sheet's cell as text; the quirk applies only when the cell still holds it
    corrected: str  # integer text, "middle", or "" for a flag
    action: str  # "fix" or "flag"
    why: str  # the justification


@dataclass(frozen=True)
class Applied:
    """The outcome of applying the quirks to one row's frame cells."""

    cells: dict[str, object]  # field → cell after fixes (an int, or MIDDLE still to be resolved)
    fixes: tuple[str, ...]  # ids of the applied fixes
    flags: tuple[str, ...]  # ids of the matching flag-only quirks


@lru_cache(maxsize=1)
def load_quirks() -> tuple[Quirk, ...]:
    """Every quirk of the packaged table, validated."""
    text = resources.files("mer_data").joinpath("tables/quirks.csv").read_text(encoding="utf-8")
    quirks = tuple(Quirk(**row) for row in csv.DictReader(text.splitlines()))
    for q in quirks:
        if q.field not in FIELDS or q.action not in ("fix", "flag"):
            raise ValueError(f"tables/quirks.csv row {q.id}: bad field {q.field!r} or action {q.action!r}")
        if q.action == "fix" and q.corrected != MIDDLE and not q.corrected.isdigit():
            raise ValueError(f"tables/quirks.csv row {q.id}: a fix needs an integer or 'middle', got {q.corrected!r}")
    return quirks


def apply_quirks(dataset: str, key: str, cells: dict[str, object], apply_fixes: bool = True) -> Applied:
    """Apply the matching quirks to the raw frame cells of one row (fixes only when `apply_fixes`)."""
    out = dict(cells)
    fixes: list[str] = []
    flags: list[str] = []
    for q in load_quirks():
        if q.dataset != dataset or q.key not in (key, "*") or to_text(cells.get(q.field)) != q.official:
            continue
        if q.action == "flag" or not apply_fixes:
            flags.append(q.id)
            continue
        out[q.field] = q.corrected if q.corrected == MIDDLE else int(q.corrected)
        fixes.append(q.id)
    return Applied(out, tuple(fixes), tuple(flags))


def flags_of(dataset: str, key: str) -> tuple[str, ...]:
    """Ids of the flag-only quirks naming this sample (whatever its cells hold)."""
    return tuple(q.id for q in load_quirks() if q.dataset == dataset and q.key == key and q.action == "flag")
