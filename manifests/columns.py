"""A manifest row's columns beyond label and fold: Action Units, objective class, and sheet-versus-folder warnings."""

from __future__ import annotations

from mer_data.aus import AU_COLUMNS, multi_hot, parse_aus
from mer_data.classes import normalize_objective
from mer_data.records import Sample


def au_columns(au: str | None, rule: str) -> dict:
    """`au` (the cell as text), `aus` (normalised list), `au_or` (the rule, where the cell has an "or") and one 0/1
    column per AU of AU_SET; all null where the dataset codes no AUs (SMIC)."""
    if au is None:
        return {"au": None, "aus": None, "au_or": None} | dict.fromkeys(AU_COLUMNS)
    parsed = parse_aus(au)
    return {"au": au, "aus": list(parsed.aus), "au_or": rule if parsed.has_or else None} | multi_hot(parsed, rule)


def objective_class(sample: Sample) -> str | None:
    """The sample's objective class as a Roman numeral I-VII; None where the sheet gives none (or not one of those)."""
    return normalize_objective(sample.objective) or None


def span_warnings(sample: Sample, tolerance: int) -> list[str]:
    """Where the sample's own clip on disk starts or ends more than `tolerance` frames from the sheet's onset/offset.

    Only for clips holding one expression (`Sample.span`); the status is not changed: the frames the sheet names
    may all be there, and a user decides which of release and sheet to trust.
    """
    if sample.span is None or sample.onset is None or sample.offset is None:
        return []
    out = []
    for what, have, want, name in (("first", sample.span[0], sample.onset, "onset"),
                                   ("last", sample.span[1], sample.offset, "offset")):
        if abs(have - want) > tolerance:
            side = "before" if have < want else "after"
            out.append(f"{what} frame on disk {have} is {abs(have - want)} {side} the sheet's {name} {want} "
                       f"(tolerance {tolerance})")
    return out
